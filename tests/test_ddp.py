"""One run over two CPU processes (DDP, gloo): metrics sync across ranks, rank 0 writes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import bench


def test_two_process_ddp_matches_one_process(runs_dir: Path) -> None:
    # No training (max_epochs=0): both runs test the same seeded weights on the same 64 images,
    # so the 2-rank accuracy, synced by torchmetrics over the split test set, must equal 1-rank's.
    base = ["run", "emo", "preset=smoke", "method=mobilenetv2", "trainer.max_epochs=0"]
    one = bench(*base)
    two = bench(*base, "trainer.devices=2", "trainer.strategy=ddp")
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert len(two.stdout.strip().splitlines()) == 1, "only rank 0 reports"
    found = {
        json.loads(p.read_text())["config"]["trainer"]["devices"]: json.loads(p.read_text())
        for p in runs_dir.glob("**/record.json")
    }
    assert set(found) == {1, 2}
    assert abs(found[1]["metrics"]["test/acc"] - found[2]["metrics"]["test/acc"]) < 1e-6
