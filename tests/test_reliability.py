"""Nothing lost under faults, every bad input refused clearly (issue: reliability and security)."""

from __future__ import annotations

import errno
import json
import math
import multiprocessing
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench import records
from bench.cli import main
from bench.config import read_preset
from bench.leaderboard import publish
from bench.registry import configs, tasks
from tests.test_leaderboard import put, record
from tests.test_records import GOOD


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bench: error: "), err
    return err[0]


# --- bad input: generated, >= 200 cases, each one line and exit code 2 -------------------------
def _leaves(cfg: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in cfg.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


LEAVES = {k: v for k, v in _leaves(read_preset("emo", "smoke")).items() if v is not None}
NUMERIC = sorted(k for k, v in LEAVES.items() if isinstance(v, int | float) and not isinstance(v, bool))
names = st.text("abcdefghijklmnopqrstuvwxyz_./-<>", min_size=1, max_size=12)
bad_override = st.one_of(
    names.filter(lambda s: "=" not in s),  # no '='
    st.builds(lambda k: f"zz{k}=1", names.filter(lambda s: "." not in s and "=" not in s)),  # unknown key
    st.builds(
        lambda k, v: f"{k}={v}", st.sampled_from(NUMERIC), st.text("abcxyz[]{}", min_size=1, max_size=6)
    ),  # wrong kind
    st.builds(lambda v: f"seed={v}", st.sampled_from(["-1", "x", "1.5", "[1]", "true"])),
    st.builds(lambda v: f"resume={v}", st.sampled_from(["2", "yes please", "[]"])),
    st.builds(lambda v: f"optim.lr={v}", st.sampled_from([".nan", ".inf", "-.inf"])),
)
# every name the CLI knows (commands, tasks, emo's methods and presets) is a good name
KNOWN = {"list", "show", "run", "sweep", "publish", "export", "compare", *tasks()}
KNOWN |= {m.name for m in tasks()["emo"].methods} | {p.stem for p in configs("emo").glob("*.yaml")}
bad_name = names.filter(lambda s: s not in KNOWN)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arg=bad_override)
def test_fuzzed_overrides_are_refused_in_one_line(arg: str, capsys) -> None:
    assert main(["run", "emo", "preset=smoke", arg]) == 2
    one_error_line(capsys)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(task=bad_name, method=bad_name, preset=bad_name)
def test_fuzzed_names_never_reach_a_path(task: str, method: str, preset: str, capsys, runs_dir) -> None:
    assert main(["run", task]) == 2
    assert main(["run", "emo", f"method={method}"]) == 2
    assert main(["run", "emo", f"preset={preset}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("bench: error: ") for line in err)
    assert "unknown method" in err[1] and "unknown preset" in err[2]
    assert not runs_dir.exists()


# --- bad records: each skipped with one line naming the file and the reason ---------------------
def test_publish_skips_bad_records_and_strict_fails(runs_dir: Path, tmp_path: Path, capsys) -> None:
    put(runs_dir / "emo", "emo_1m", 0, 0.8)
    bad = {
        "truncated": json.dumps(GOOD)[:40],
        "schema1": json.dumps({**GOOD, "schema": 1}),
        "foreign": json.dumps({**GOOD, "injected": "x"}),
        "nan": json.dumps(GOOD).replace('"test/acc": 0.5', '"test/acc": NaN'),
        "othertask": json.dumps({**GOOD, "task": "nngraph"}),
        "unknownmethod": json.dumps({**GOOD, "method": "emo_9m"}),
    }
    for name, text in bad.items():
        (runs_dir / "emo" / name).mkdir(parents=True)
        (runs_dir / "emo" / name / "record.json").write_text(text)
    out = tmp_path / "boards"
    assert main(["publish", "emo", "--out", str(out)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == len(bad)
    for name, line in zip(sorted(bad), sorted(err), strict=True):
        assert f"emo/{name}/record.json" in line
    assert "claims task 'nngraph'" in " ".join(err) and "non-finite" in " ".join(err)
    assert json.loads((out / "emo.json").read_text())["presets"]["cpu"]["emo_1m"]["seeds"] == [0]
    assert main(["publish", "emo", "--out", str(out), "--strict"]) == 1


# --- faults: disk full, concurrent writers, a killed run resumed --------------------------------
def test_disk_full_is_one_line_and_keeps_the_old_record(bench_run, runs_dir, monkeypatch, capsys) -> None:
    args = ("emo", "method=mobilenetv2", "preset=smoke")
    _, first = bench_run(*args)
    path = next(runs_dir.glob("**/record.json"))

    def full(*a):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(records.os, "replace", full)
    capsys.readouterr()
    assert main(["run", *args, "--force"]) == 2
    assert "No space left on device" in one_error_line(capsys)
    assert records.read(path) == first and [p.name for p in path.parent.glob(".record-*")] == []


def _writer(root: str, worker: int, count: int) -> None:
    for i in range(count):
        rec = record("emo_1m", worker * 100 + i, 0.5)
        records.write(rec, Path(root) / "emo" / "emo_1m" / "cpu" / f"w{worker}-{i}" / "record.json")


def test_eight_writers_and_a_publisher_lose_nothing(runs_dir: Path, tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_writer, args=(str(runs_dir), w, 25)) for w in range(8)]
    for p in writers:
        p.start()
    boards = []
    while any(p.is_alive() for p in writers):
        _, skipped = publish("emo", [], tmp_path / "boards")
        assert skipped == []
        if (tmp_path / "boards" / "emo.json").exists():
            boards.append(json.loads((tmp_path / "boards" / "emo.json").read_text()))
    for p in writers:
        p.join()
        assert p.exitcode == 0
    publish("emo", [], tmp_path / "boards")
    final = json.loads((tmp_path / "boards" / "emo.json").read_text())
    assert final["presets"]["cpu"]["emo_1m"]["metrics"]["test/acc"]["n"] == 200
    counts = [b["presets"]["cpu"]["emo_1m"]["metrics"]["test/acc"]["n"] for b in boards]
    assert counts == sorted(counts) and all(n <= 200 for n in counts), "a board lost records"
    assert len(list(runs_dir.glob("**/record.json"))) == 200 and not list(runs_dir.glob("**/.record-*"))


def test_killed_run_resumes_from_its_checkpoint(runs_dir: Path, bench_run) -> None:
    args = [
        "emo",
        "preset=smoke",
        "method=mobilenetv2",
        "trainer.max_epochs=4",
        "trainer.enable_checkpointing=true",
        "data.train_size=128",
    ]
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "run", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not list(runs_dir.glob("**/*.ckpt")) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the checkpoint file finish; the kill still lands mid-training
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert list(runs_dir.glob("**/*.ckpt")) and not list(runs_dir.glob("**/record.json"))
    code, record = bench_run(*args, "resume=true")
    assert code == 0 and record["status"] == "ok"
    assert "epoch=" in record["cost"]["resumed_from"]
    records.validate(record)


# One trained method per task whose paper preset checkpoints (TrainedMethods fitted by Lightning).
TRAINED = [("emo", "mobilenetv2"), ("cmt", "cmt_lidar"), ("drumlm", "chargpt"), ("reliant", "vanilla_kd_mlp")]


@pytest.mark.slow
@pytest.mark.parametrize(("task", "method"), TRAINED, ids=[t for t, _ in TRAINED])
def test_every_trained_task_resumes_a_killed_run(
    task: str, method: str, bench_run, runs_dir, monkeypatch
) -> None:
    """Killed after its first step checkpoint (a crash in the second step), rerun with resume=true:
    the run continues from that checkpoint and ends ok. The paper presets checkpoint the same way."""
    from bench.callbacks import Watch

    paper = read_preset(task, "paper")
    assert paper["trainer"]["enable_checkpointing"] and paper["checkpoint_every"] > 0
    args = [
        task,
        f"method={method}",
        "preset=smoke",
        "trainer.enable_checkpointing=true",
        "checkpoint_every=1",
    ]
    original = Watch.on_train_batch_end

    def crash(self, trainer, module, outputs, batch, batch_idx):
        original(self, trainer, module, outputs, batch, batch_idx)
        if list(runs_dir.glob("**/*.ckpt")):
            raise RuntimeError("killed")

    monkeypatch.setattr(Watch, "on_train_batch_end", crash)
    code, record = bench_run(*args)
    assert code == 1 and record["status"] == "failed" and "killed" in record["error"]
    monkeypatch.setattr(Watch, "on_train_batch_end", original)
    code, record = bench_run(*args, "resume=true")
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["cost"]["resumed_from"].endswith(".ckpt")
    assert all(math.isfinite(v) for v in record["metrics"].values())
