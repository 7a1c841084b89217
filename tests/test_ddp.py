"""DDP over two CPU processes (gloo) for every method of every task that trains through
Lightning; single-process tasks refuse devices > 1 in one line.

Contract, per method: the smoke preset runs once on one process and once with
``trainer.accelerator=cpu trainer.devices=2 trainer.strategy=ddp``. Both really train (no
``max_epochs=0``); the DDP run writes one ``ok`` record (rank 0 only, one line out) with the same
metric keys, every value finite, and every metric within ``TOL`` of the one-process run.

Why not exactly equal: two ranks see the same training samples (the per-rank batch, the task's
``ddp_batch`` key, halved, so the global batch and step count are the one-process run's), but in
DistributedSampler's order rather than the single process's shuffle, with BatchNorm statistics
per rank, and dropout/augmentation drawn per rank. A few smoke steps from the same seeded weights
move the metrics by little, so ``TOL`` (absolute, or relative for metrics above 1) is the drift
those differences allow; a DDP run that did not sync its test metrics (half the test set per
rank), trained a different model or skipped training lands outside it. The untrained case is
exact: test metrics of the same weights must agree to 1e-6 (test_test_metrics_sync_exactly).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.registry import tasks
from tests.test_cli import bench

TOL = 0.1
DDP = ["trainer.accelerator=cpu", "trainer.devices=2", "trainer.strategy=ddp"]

# Tasks whose smoke-trained metrics are chaotic in the weights, so TOL cannot hold: the DDP run must
# still train and write the same finite metrics, and its untrained metrics match exactly (below).
CHAOTIC = {
    # measured: untrained, 2 ranks equal 1 rank to 1e-6 on all 45 metrics; after the smoke steps
    # (per-rank BatchNorm statistics over half batches) an unconverged DETR's metrics move by up to
    # 0.68 (cmt_lidar), as its near-tied box scores reorder
    "cmt",
    # measured in CI (2026-12-02): emo's narrow MobileNetV2 at its lr 4.5e-2 reaches smoke acc 0.25
    # in one process and 0.09 on 2 ranks (per-rank BatchNorm over half batches of a 16-image test)
    "emo/mobilenetv2_flops",
    # measured (2026-12-07): 2 ranks train at the one-process lr (it follows the global batch), and
    # the 4-step MobileNetV2 gives acc5 0.5625 on 2 ranks, 0.4375 in one process on the 16-image
    # test: the same per-rank BatchNorm effect
    "emo/mobilenetv2",
    # measured (2026-12-07): with the cpu preset's official drop path and tuned lrs, EMO-1M's
    # smoke val acc is 0.22 in one process and 0.09 on 2 ranks (32 val images; per-rank BatchNorm
    # and stochastic depth); EMO-6M the same
    "emo/emo_1m",
    "emo/emo_6m",
}
# measured speeds (emo's img/s at batch 1 and 32) are benchmarks of the moment, not results
SPEED = ("test/img_s_",)
CASES = [(t.name, m.name) for t in tasks().values() if t.distributed for m in t.methods]
SINGLE = [t.name for t in tasks().values() if not t.distributed]


def records(runs_dir: Path) -> dict[int, dict]:
    found = [json.loads(p.read_text()) for p in runs_dir.glob("**/record.json")]
    return {r["config"]["trainer"]["devices"]: r for r in found}


def close(a: float, b: float) -> bool:
    return abs(a - b) <= TOL * max(1.0, abs(b))


@pytest.mark.slow
@pytest.mark.parametrize(("task", "method"), CASES, ids=[f"{t}/{m}" for t, m in CASES])
def test_ddp_trains_and_matches_one_process(task: str, method: str, runs_dir: Path) -> None:
    base = ["run", task, f"method={method}", "preset=smoke", "trainer.accelerator=cpu"]
    one = bench(*base, "trainer.devices=1")
    assert one.returncode == 0, one.stderr[-2000:]
    extra = []
    batch = tasks()[task].ddp_batch  # halved, so the global batch is the one-process run's
    if batch:
        from bench.run import locate

        _, cfg, _, _ = locate(task, base[2:])
        value = cfg
        for part in batch.split("."):
            value = value[part]
        extra = [f"{batch}={max(1, value // 2)}"]
    two = bench(*base, *DDP[1:], *extra)
    assert two.returncode == 0, two.stderr[-3000:]
    assert len(two.stdout.strip().splitlines()) == 1, "only rank 0 reports"
    found = records(runs_dir)
    assert set(found) == {1, 2}
    a, b = found[2], found[1]
    assert a["status"] == "ok" and b["status"] == "ok"
    assert set(a["metrics"]) == set(b["metrics"])
    trained = "train_s" in b["cost"]
    assert ("train_s" in a["cost"]) == trained, "both train, or neither (a method that only tests)"
    results = [k for k in b["metrics"] if not k.startswith(SPEED)]
    gap = max((abs(a["metrics"][k] - b["metrics"][k]) for k in results), default=0.0)
    print(f"\n{task}/{method}: max |DDP - one process| over {len(results)} metrics = {gap:.4g}")
    far = {
        k: (a["metrics"][k], b["metrics"][k])
        for k in results
        if not (math.isfinite(a["metrics"][k]) and close(a["metrics"][k], b["metrics"][k]))
    }
    assert all(math.isfinite(v) for v in a["metrics"].values())
    assert {task, f"{task}/{method}"} & CHAOTIC or not far, f"DDP vs one process beyond {TOL}: {far}"


@pytest.mark.parametrize(("task", "method"), [("emo", "mobilenetv2"), ("cmt", "cmt_lidar")])
def test_test_metrics_sync_exactly(task: str, method: str, runs_dir: Path) -> None:
    # No training: both runs test the same seeded weights on the same test set, so the 2-rank
    # metrics, synced by torchmetrics over the split test set, must equal 1-rank's.
    base = ["run", task, "preset=smoke", f"method={method}", "trainer.accelerator=cpu"]
    base.append("trainer.max_epochs=0")
    one = bench(*base)
    two = bench(*base, "trainer.devices=2", "trainer.strategy=ddp")
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert len(two.stdout.strip().splitlines()) == 1, "only rank 0 reports"
    found = records(runs_dir)
    assert set(found) == {1, 2}
    a, b = found[2]["metrics"], found[1]["metrics"]
    results = [k for k in b if not k.startswith(SPEED)]
    assert set(a) == set(b) and all(abs(a[k] - b[k]) < 1e-6 for k in results), {k: (a[k], b[k]) for k in b}


@pytest.mark.parametrize("task", SINGLE)
def test_single_process_task_refuses_two_devices(task: str) -> None:
    out = bench("run", task, "preset=smoke", "trainer.devices=2")
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
