"""A run's outcomes: ok, skipped when done, failed on a crash, diverged on a non-finite loss."""

from __future__ import annotations

from bench import records


def test_done_run_is_skipped_unless_forced(bench_run, runs_dir) -> None:
    args = ("emo", "method=mobilenetv2", "preset=smoke")
    code, first = bench_run(*args)
    assert code == 0 and first["status"] == "ok"
    _, again = bench_run(*args)
    assert again["finished"] == first["finished"]
    _, forced = bench_run(*args, "--force")
    assert forced["started"] >= first["finished"]
    assert len(list(runs_dir.glob("**/record.json"))) == 1


def test_crash_writes_a_failed_record_with_the_error(bench_run, runs_dir) -> None:
    code, record = bench_run("emo", "method=mobilenetv2", "preset=smoke", "data.batch_size=0")
    assert code == 1 and record["status"] == "failed"
    assert "batch_size" in record["error"]
    records.validate(record)
    assert list(runs_dir.glob("**/error.log"))


def test_huge_learning_rate_gives_diverged(bench_run) -> None:
    code, record = bench_run("emo", "method=mobilenetv2", "preset=smoke", "methods.mobilenetv2.lr=1e30")
    assert code == 1 and record["status"] == "diverged"
    assert "loss became nan" in record["error"]


def test_a_loop_method_resumes_from_its_saved_state(bench_run, monkeypatch) -> None:
    """The harness saves a loop method's state while it steps (here: after every step) and
    ``resume=true`` continues from it to the same figures."""
    from bench import run

    monkeypatch.setattr(run, "CHECKPOINT_S", -1.0)
    args = ("nngraph", "method=degree", "preset=smoke", "logger=none")
    code, first = bench_run(*args)
    assert code == 0 and first["status"] == "ok" and "resumed_from" not in first["cost"]
    code, again = bench_run(*args, "resume=true", "--force")
    assert code == 0 and again["cost"]["resumed_from"] == run.LOOP_CKPT
    assert again["metrics"] == first["metrics"]
