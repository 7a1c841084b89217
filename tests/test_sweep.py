"""Sweeps: the grid from the preset's ``sweep:`` and ``seeds:``, GPU slots (fake device lists),
per-run timeout, resume after a kill, warnings in the sweep's log, ``--print`` lines and the
submitit job array."""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from bench import config, records
from bench.cli import _parser, main
from bench.errors import BenchError
from bench.registry import get_task
from bench.sweep import Options, axes, expand, launchers, pool, slots, sweep, visible_gpus

EMO = config.preset_methods("emo", "smoke")


def test_expand_is_the_preset_grid_narrowed_by_the_cli() -> None:
    runs = expand("emo", ["preset=smoke"])
    seeds = config.preset_seeds("emo", "smoke")
    assert len(runs) == len(EMO) * len(seeds)
    assert ["preset=smoke", "method=emo_1m", f"seed={seeds[0]}"] in runs
    assert expand("emo", ["preset=smoke", "optim.lr=0.1"], methods="emo_5m", seeds="7,8") == [
        ["preset=smoke", "method=emo_5m", "seed=7", "optim.lr=0.1"],
        ["preset=smoke", "method=emo_5m", "seed=8", "optim.lr=0.1"],
    ]
    assert axes("emo", ["method=emo_2m", "seed=5"])["method"] == ["emo_2m"]
    assert axes("emo", ["seed=5"], seeds="1,2")["seed"] == [5]
    # the W&B agents log to W&B; a local sweep keeps the preset's logger unless told
    assert "logger" not in axes("emo", ["preset=smoke"])
    assert axes("emo", ["preset=smoke", "logger=wandb"])["logger"] == ["wandb"]


def test_the_preset_sweep_section_picks_the_methods_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    # emo's cpu preset sweeps EMO-1M and both MobileNetV2s and smoke inherits that; the paper
    # preset's own sweep runs every method (the "every method of the preset")
    everything = [m.name for m in get_task("emo").methods]
    assert EMO == config.preset_methods("emo", "cpu") == ["emo_1m", "mobilenetv2", "mobilenetv2_flops"]
    assert config.preset_methods("emo", "paper") == everything
    # cmt's single-modality runs come first: the fusion methods warm-start from them
    assert config.preset_methods("cmt", "cpu")[:2] == ["cmt_lidar", "cmt_camera"]
    # a preset without one sweeps every method; a bad one is refused in one line
    preset: dict = {}
    monkeypatch.setattr(config, "read_preset", lambda task, name: preset)
    assert config.preset_methods("emo", "cpu") == everything
    for bad, match in [({"methods": ["emo_1m", "nope"]}, "unknown method"), (["emo_1m"], "sweep takes only")]:
        preset["sweep"] = bad
        with pytest.raises(BenchError, match=match):
            config.preset_methods("emo", "cpu")


def test_the_sweep_section_leaves_the_run_config_alone() -> None:
    cfg = config.resolve("emo", ["preset=cpu"])
    assert "sweep" not in cfg and "seeds" not in cfg and "claims" not in cfg


def test_wandb_spec_is_generated_from_the_task(capsys) -> None:
    assert main(["sweep", "asyncfl", "--wandb-spec", "--seeds", "0,1"]) == 0
    spec = yaml.safe_load(capsys.readouterr().out)
    assert spec["command"] == ["bench", "run", "asyncfl", "${args_no_hyphens}"]
    assert spec["metric"] == {"name": "test/time_to_target_hi", "goal": "minimize"}
    assert spec["parameters"]["method"] == {"values": config.preset_methods("asyncfl", "cpu")}
    assert spec["parameters"]["seed"] == {"values": [0, 1]}
    assert spec["parameters"]["logger"] == {"value": "wandb"}
    assert launchers.wandb_spec("emo", axes("emo", []))["metric"] == {"name": "test/acc", "goal": "maximize"}


def test_bad_sweep_is_refused_before_any_run() -> None:
    with pytest.raises(BenchError, match="unknown method"):
        expand("emo", [], methods="emo_1m,nope")
    with pytest.raises(BenchError, match="did you mean optim.lr"):
        expand("emo", ["optim.lrr=1"])
    with pytest.raises(BenchError, match="comma-separated integers"):
        expand("emo", [], seeds="a,b")


def test_visible_gpus_follow_cuda_visible_devices() -> None:
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "3,5, 7"}) == ["3", "5", "7"]
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []
    assert visible_gpus({"CUDA_VISIBLE_DEVICES": "GPU-1a2b,GPU-3c4d"}) == ["GPU-1a2b", "GPU-3c4d"]


@pytest.mark.parametrize(("n", "per_run", "per_gpu"), [(8, 1, 1), (8, 2, 1), (8, 4, 2), (8, 8, 1), (3, 1, 3)])
def test_slots_split_the_gpus_without_overlap(n: int, per_run: int, per_gpu: int) -> None:
    gpus = [str(i) for i in range(10, 10 + n)]
    envs = slots(gpus, per_run, per_gpu)
    assert len(envs) == n // per_run * per_gpu
    groups = [tuple(e["CUDA_VISIBLE_DEVICES"].split(",")) for e in envs]
    assert all(len(g) == per_run for g in groups)
    distinct = set(groups)
    assert len(distinct) == n // per_run and all(groups.count(g) == per_gpu for g in distinct)
    assert sorted(itertools.chain(*distinct)) == sorted(gpus), "every GPU used, none in two groups"


def test_slots_refuse_what_does_not_fit() -> None:
    with pytest.raises(BenchError, match="only 2 GPU"):
        slots(["0", "1"], 4)
    with pytest.raises(BenchError, match="do not split"):
        slots(["0", "1", "2"], 2)
    assert [e["CUDA_VISIBLE_DEVICES"] for e in slots([], jobs=3)] == ["", "", ""]


def test_a_preset_thread_count_caps_the_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_THREADS", "1")
    assert [e["BENCH_THREADS"] for e in slots([], jobs=1)] == ["1"]
    monkeypatch.delenv("BENCH_THREADS")
    assert slots([], jobs=1)[0]["BENCH_THREADS"] == str(os.cpu_count() or 1)
    monkeypatch.setenv("BENCH_THREADS", "")  # empty counts as unset
    assert slots([], jobs=1)[0]["BENCH_THREADS"] == str(os.cpu_count() or 1)
    monkeypatch.setenv("BENCH_THREADS", "two")
    with pytest.raises(BenchError, match="BENCH_THREADS='two'"):
        slots([], jobs=1)


class FakeRun:
    """Stands in for a `bench run` child: notes which devices it holds while it runs."""

    active: list[set[str]] = []
    seen: list[list[str]] = []
    lock = threading.Lock()
    overlap = False

    def __init__(self, cmd, env, **kw) -> None:
        self.cmd, self.devices, self.pid, self.returncode = cmd, env["CUDA_VISIBLE_DEVICES"], -1, None

    def communicate(self, timeout=None):
        mine = set(self.devices.split(","))
        with FakeRun.lock:
            FakeRun.overlap |= any(mine & other for other in FakeRun.active)
            FakeRun.active.append(mine)
            FakeRun.seen.append(self.cmd)
        time.sleep(0.05)
        with FakeRun.lock:
            FakeRun.active.remove(mine)
        self.returncode = 0
        return "ok: fake\n", "x.py:1: UserWarning: the same warning in every run\n"


def test_sweep_gives_each_run_its_own_gpus(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(pool.subprocess, "Popen", FakeRun)
    monkeypatch.setattr(pool, "_kill_group", lambda proc: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3,4,5")
    FakeRun.seen.clear()
    opts = Options(gpus_per_run=2, progress=True)
    assert sweep("emo", ["preset=smoke"], seeds="0,1", opts=opts) == 0
    out = capsys.readouterr().out
    n = len(EMO) * 2
    assert f"{n} runs on 6 GPU(s) (CUDA_VISIBLE_DEVICES: 0,1,2,3,4,5), 2 per run" in out
    assert not FakeRun.overlap and len(FakeRun.seen) == n
    assert all("trainer.devices=2" in cmd for cmd in FakeRun.seen)
    # a child's warning reaches the sweep's output once, not once per run
    assert out.count("UserWarning: the same warning in every run") == 1
    assert f"{n - 1} repeats" in out and f"{n} ok, 0 not ok" in out


def kill_when(pattern: str, ready, stop: threading.Event) -> None:
    """SIGKILL the process whose command line matches ``pattern`` once ``ready()`` holds."""
    while not stop.is_set():
        found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
        if found and ready():
            os.kill(int(found[0]), signal.SIGKILL)
            return
        time.sleep(0.1)


SMOKE = ["preset=smoke", "trainer.max_epochs=2", "trainer.enable_checkpointing=true"]


def test_sweep_writes_a_killed_run_failed_and_resumes_it(runs_dir: Path, capsys) -> None:
    stop = threading.Event()
    ckpt = lambda: list(runs_dir.glob("emo/mobilenetv2/smoke/*-s1/**/*.ckpt"))  # noqa: E731
    killer = threading.Thread(target=kill_when, args=("method=mobilenetv2 seed=1", ckpt, stop))
    killer.start()
    try:
        assert sweep("emo", SMOKE, "mobilenetv2", "0,1", Options(jobs=2)) == 1
    finally:
        stop.set()
        killer.join()
    first = {r["seed"]: r for _, r in records.find([runs_dir])}
    assert first[1]["status"] == "failed" and "signal 9" in first[1]["error"]
    assert first[0]["status"] == "ok"
    capsys.readouterr()

    assert sweep("emo", SMOKE, "mobilenetv2", "0,1", Options(jobs=2)) == 0
    out = capsys.readouterr().out
    second = {r["seed"]: r for _, r in records.find([runs_dir])}
    assert second[1]["status"] == "ok" and second[1]["cost"]["resumed_from"].endswith(".ckpt")
    assert "(resumed from its checkpoint)" in out and "ok (record exists)" in out
    assert second[0]["finished"] == first[0]["finished"], "a done run reran"
    assert (next(runs_dir.glob("emo/mobilenetv2/smoke/*-s1")) / "sweep.log").exists()


def test_a_run_past_its_timeout_is_killed_and_failed(runs_dir: Path, capsys) -> None:
    t0 = time.perf_counter()
    assert sweep("emo", ["preset=smoke"], "mobilenetv2", "0", Options(timeout=1)) == 1
    assert time.perf_counter() - t0 < 30
    ((_, record),) = records.find([runs_dir])
    assert record["status"] == "failed" and record["error"] == "timed out after 1 s (--timeout)"
    assert "failed: timed out after 1 s" in capsys.readouterr().out
    ours = ["pgrep", "-P", str(os.getpid()), "-f", "bench run emo preset=smoke"]  # runs of this test only
    assert not subprocess.run(ours, capture_output=True).stdout


def test_print_writes_one_bench_run_line_per_run(capsys) -> None:
    argv = ["sweep", "emo", "--print", "--preset", "smoke", "--seeds", "0,1", "--gpus-per-run", "2"]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(EMO) * 2
    for line, args in zip(lines, expand("emo", ["preset=smoke"], seeds="0,1"), strict=True):
        argv = shlex.split(line)
        assert argv[:3] == ["bench", "run", "emo"]
        ns, extra = _parser().parse_known_args(argv[1:])
        assert ns.overrides + extra == [*args, "trainer.devices=2", "resume=true"]


def test_submitit_runs_the_sweep_as_a_job_array(runs_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    runs = expand("emo", ["preset=smoke"], "mobilenetv2", "0,1")
    jobs = launchers.submit("emo", runs, {"cluster": "local", "timeout_min": 10}, tmp_path / "slurm")
    assert [job.result() for job in jobs] == [0, 0]
    found = {r["seed"]: r["status"] for _, r in records.find([runs_dir])}
    assert found == {0: "ok", 1: "ok"}
    with pytest.raises(BenchError, match="key=value"):
        launchers.parse_slurm(["partition"])


@pytest.mark.slow
def test_a_preempted_submitit_job_is_requeued_and_resumes(runs_dir: Path, tmp_path: Path) -> None:
    """submitit's local executor sends the job the preemption / time-limit signal mid-training: the
    job is requeued as the same run with resume=true, which continues from its step checkpoint."""
    pytest.importorskip("submitit")
    runs = expand("emo", ["preset=smoke"], "mobilenetv2", "0")
    runs = [[*runs[0], "trainer.enable_checkpointing=true", "checkpoint_every=1", "trainer.max_epochs=6"]]
    (job,) = launchers.submit("emo", runs, {"cluster": "local", "timeout_min": 10}, tmp_path / "slurm")
    deadline = time.time() + 300
    while not list(runs_dir.glob("**/*.ckpt")) and time.time() < deadline and not job.done():
        time.sleep(0.1)
    assert not job.done(), "the run ended before a checkpoint: it needs more steps to be interrupted"
    # what SLURM sends the job before its time limit or a preemption, to the process running it
    # (the local executor's controller forwards it only at its own time limit)
    (task_pid,) = subprocess.run(
        ["pgrep", "-P", str(job._process.pid)], capture_output=True, text=True
    ).stdout.split()
    os.kill(int(task_pid), signal.SIGUSR2)
    assert job.result() == 0
    (record,) = [r for _, r in records.find([runs_dir])]
    assert record["status"] == "ok" and record["cost"]["resumed_from"].endswith(".ckpt")
    assert record["config"]["resume"] is True
