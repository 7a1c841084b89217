from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from bench import records
from bench.leaderboard import publish
from tests.test_records import GOOD


def put(root: Path, method: str, seed: int, acc: float, finished: str = "2026-01-01T00:00:01") -> None:
    rec = copy.deepcopy(GOOD)
    rec.update(
        method=method,
        seed=seed,
        preset="cpu",
        config_hash=hashlib.sha256(method.encode()).hexdigest(),
        finished=finished,
        metrics={"test/acc": acc},
        primary={"name": "test/acc", "value": acc, "higher_is_better": True},
        claims={},
        cost={"wall_s": 1.0, "params": 1000 + len(method)},
    )
    rec["provenance"]["task_version"] = 1
    records.write(rec, root / method / f"s{seed}-{finished}" / "record.json")


def test_publish_aggregates_dedupes_and_judges(runs_dir: Path, tmp_path: Path) -> None:
    for seed, acc in enumerate((0.8, 0.9)):
        put(runs_dir / "emo", "emo_1m", seed, acc)
        put(runs_dir / "emo", "emo_5m", seed, acc + 0.05)
    put(runs_dir / "emo", "mobilenetv2", 0, 0.9)
    other = tmp_path / "agent2"
    put(other / "emo", "emo_1m", 1, 0.7, finished="2026-01-01T00:00:00")  # older duplicate
    (other / "emo" / "junk").mkdir()
    (other / "emo" / "junk" / "record.json").write_text("{not json")

    _, skipped = publish("emo", [other], tmp_path / "boards")

    board = json.loads((tmp_path / "boards" / "emo.json").read_text())
    row = board["presets"]["cpu"]["emo_1m"]["metrics"]["test/acc"]
    assert (
        row["n"] == 2 and row["mean"] == pytest.approx(0.85) and row["std"] == pytest.approx(0.0707, abs=1e-4)
    )
    claims = board["claims"]["cpu"]
    assert claims["emo5m_ge_emo1m"]["holds"] is True
    assert claims["emo1m_ge_mobilenetv2"]["holds"] is False
    assert claims["emo1m_ge_mobilenetv2"]["bound"] == pytest.approx(0.9)
    md = (tmp_path / "boards" / "emo.md").read_text()
    assert "0.8500 ± 0.0707 (2)" in md and "does not hold" in md and "71.5" in md
    assert "emo" in (tmp_path / "boards" / "index.md").read_text()
    assert len(skipped) == 1 and "junk/record.json" in skipped[0]


def test_series_plots_a_line_per_method_relative_to_over(tmp_path: Path) -> None:
    from bench import plots

    def row(**metrics: float) -> dict:
        return {"metrics": {k: {"mean": v, "std": 0.0} for k, v in metrics.items()}}

    table = {"sync": row(t_1=8.0, t_10=40.0), "async": row(t_1=4.0, t_10=4.0), "none": row()}
    board = {"task": "t", "primary": "p", "presets": {"cpu": table}}
    series = {"name": "speedup", "xlabel": "C", "ylabel": "x", "xs": (1, 10), "metric": "t_{x}"}
    board["series"] = [series | {"over": "sync", "log_x": True}]
    assert plots.plot_board(board, tmp_path) == {"cpu": ["t-cpu-speedup.png"]}
    assert (tmp_path / "t-cpu-speedup.png").stat().st_size > 0

    import matplotlib.pyplot as plt

    assert plots._plot_series(plt, board["series"][0], table)
    lines = {
        ln.get_label(): ln.get_ydata().tolist() for ln in plt.gca().get_lines() if ln.get_label()[0] != "_"
    }
    assert lines == {"async": [2.0, 10.0]}  # sync / async; "none" has no points, sync is the reference
    board["series"] = [series | {"over": None, "log_x": False, "metric": "missing_{x}"}]
    assert plots.plot_board(board, tmp_path) == {"cpu": []}


def test_publish_shows_each_methods_lowest_seed_figures(runs_dir: Path, tmp_path: Path) -> None:
    import bench.leaderboard as lb
    from bench.registry import get_task

    task = get_task("emo")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lb, "get_task", lambda name: dataclasses.replace(task, figures=("grid.png",)))
        for seed in (1, 0):
            put(runs_dir / "emo", "emo_1m", seed, 0.8)
        put(runs_dir / "emo", "emo_5m", 0, 0.9)  # wrote no figure
        for seed, folder in enumerate(sorted((runs_dir / "emo" / "emo_1m").iterdir())):
            (folder / "grid.png").write_bytes(b"seed %d" % seed)
        publish("emo", [], tmp_path / "boards")

    site = tmp_path / "boards" / "site"
    assert (site / "emo-cpu-emo_1m-grid.png").read_bytes() == b"seed 0"
    assert not list(site.glob("emo-cpu-emo_5m-*"))
    assert "emo_1m (seed 0)" in (site / "emo.html").read_text()
    assert "![emo_1m (seed 0)](site/emo-cpu-emo_1m-grid.png)" in (tmp_path / "boards" / "emo.md").read_text()
