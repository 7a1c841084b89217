from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from bench import config, provenance, records, render
from bench.claims import LEVELS, parse
from bench.config import config_hash, resolve
from bench.errors import BenchError
from bench.leaderboard import check, publish
from bench.registry import get_task
from tests.test_records import GOOD

# Claims of every level on the emo cpu preset, independent of what configs/emo/cpu.yaml declares.
EMO_CLAIMS = {
    "emo2m_ge_emo1m": {"method": "emo_2m", "op": ">=", "than": "emo_1m", "level": "paper", "bound": 0.0},
    "emo5m_ge_emo2m": {"method": "emo_5m", "op": ">=", "than": "emo_2m", "level": "paper", "bound": 0.0},
    "emo1m_ge_mobilenetv2_params": {
        "method": "emo_1m",
        "op": ">=",
        "than": "mobilenetv2",
        "level": "proxy",
        "stands_for": "Table 3: EMO-1M 71.5 vs MobileNetV2 70.1 top-1 at matched params",
        "why": "Fashion-MNIST at 112 px for one epoch",
    },
    "emo1m_above_85": {
        "method": "emo_1m",
        "op": ">",
        "than": 0.85,
        "level": "proxy",
        "stands_for": "Table 3: EMO-1M 71.5 top-1",
        "why": "Fashion-MNIST at 112 px",
        "expect": 0.05,
        "expect_why": "a point of accuracy, as the paper's margins",
    },
    "emo1m_positive": {"method": "emo_1m", "op": ">", "than": 0.0, "level": "check"},
}


@pytest.fixture
def emo_claims(monkeypatch: pytest.MonkeyPatch) -> None:
    """The emo cpu preset judges EMO_CLAIMS."""
    section = {
        cid: {"text": cid, "metric": "test/acc", "source": f"source of {cid}", **spec}
        for cid, spec in EMO_CLAIMS.items()
    }
    declared = parse(section, "emo cpu", {m.name for m in get_task("emo").methods}, reduced=True)
    monkeypatch.setattr(config, "preset_claims", lambda task, preset: declared if preset == "cpu" else ())


def record(
    method: str, seed: int, acc: float, finished: str = "2026-01-01T00:00:01", overrides: tuple = (), **prov
) -> dict:
    """A record of the emo cpu preset's config (standard unless ``overrides``), as a run writes it."""
    cfg = resolve("emo", [f"method={method}", "preset=cpu", f"seed={seed}", *overrides])
    rec = copy.deepcopy(GOOD)
    rec.update(
        method=method,
        seed=seed,
        preset="cpu",
        config=cfg,
        config_hash=config_hash(cfg),
        finished=finished,
        metrics={"test/acc": acc},
        primary={"name": "test/acc", "value": acc, "higher_is_better": True},
        cost={"wall_s": 1.0, "params": 1000 + len(method)},
    )
    rec["provenance"].update({"fingerprint": provenance.fingerprint("emo"), "git_sha": "abc1234567", **prov})
    return rec


def put(root: Path, method: str, seed: int, acc: float, finished: str = "2026-01-01T00:00:01", **kw) -> Path:
    path = root / method / f"s{seed}-{finished}" / "record.json"
    records.write(record(method, seed, acc, finished, **kw), path)
    return path


def test_publish_aggregates_dedupes_and_judges_with_intervals(
    runs_dir: Path, tmp_path: Path, emo_claims
) -> None:
    for seed, acc in enumerate((0.8, 0.9)):
        put(runs_dir / "emo", "emo_1m", seed, acc)
        put(runs_dir / "emo", "emo_2m", seed, acc + 0.05)
        put(runs_dir / "emo", "mobilenetv2", seed, acc + 0.1)
    put(runs_dir / "emo", "emo_5m", 0, 0.7)
    other = tmp_path / "agent2"
    put(other / "emo", "emo_1m", 1, 0.7, finished="2026-01-01T00:00:00")  # older duplicate
    (other / "emo" / "junk").mkdir()
    (other / "emo" / "junk" / "record.json").write_text("{not json")

    _, skipped = publish("emo", [other], tmp_path / "boards")

    board = json.loads((tmp_path / "boards" / "emo.json").read_text())
    assert board["schema"] == 3
    row = board["presets"]["cpu"]["emo_1m"]["metrics"]["test/acc"]
    assert (
        row["n"] == 2 and row["mean"] == pytest.approx(0.85) and row["std"] == pytest.approx(0.0707, abs=1e-4)
    )
    claims = board["claims"]["cpu"]
    assert claims["emo2m_ge_emo1m"]["verdict"] == "holds"  # +0.05 on both seeds: a zero-width interval
    assert claims["emo2m_ge_emo1m"]["n"] == 2 and claims["emo2m_ge_emo1m"]["diff"] == pytest.approx(0.05)
    assert claims["emo1m_ge_mobilenetv2_params"]["verdict"] == "does not hold"
    assert claims["emo1m_ge_mobilenetv2_params"]["bound"] == pytest.approx(0.95)
    assert claims["emo5m_ge_emo2m"]["verdict"] == "inconclusive"  # one shared seed: no interval
    assert claims["emo1m_above_85"]["underpowered"] and claims["emo1m_above_85"]["level"] == "proxy"
    md = (tmp_path / "boards" / "emo.md").read_text()
    assert "0.8500 ± 0.0707 (2)" in md and "does not hold" in md and "71.5" in md
    assert md.index("### claims") < md.index("### results") < md.index("all metrics")
    paper, proxy, check_ = (md.index(f"#### {render.LEVEL_TITLES[level]}") for level in LEVELS)
    assert (
        paper
        < md.index("emo2m_ge_emo1m")
        < proxy
        < md.index("emo1m_above_85")
        < check_
        < md.index("emo1m_pos")
    )
    needed = claims["emo1m_above_85"]["seeds_needed"]
    assert f"inconclusive: underpowered (about {needed} seeds needed)" in md
    assert "stands for Table 3: EMO-1M 71.5 top-1; source of emo1m_above_85" in md
    assert "| source of emo2m_ge_emo1m |" in md, "the source beside each claim"
    index = (tmp_path / "boards" / "index.md").read_text()
    assert "| paper claims | proxy claims |" in index
    paper_tally = "1 hold, 1 inconclusive, 0 do not, 0 not judged"
    proxy_tally = "0 hold, 1 inconclusive (1 underpowered), 1 do not, 0 not judged"
    assert f"| {paper_tally} | {proxy_tally} |" in index, "paper and proxy verdicts counted apart"
    html = (tmp_path / "boards" / "site" / "emo.html").read_text()
    assert f'<span class="v inconclusive">inconclusive</span><br><small>underpowered (about {needed}' in html
    assert "<th>proxy claims</th>" in (tmp_path / "boards" / "site" / "index.html").read_text()
    assert any("junk/record.json" in line for line in skipped)
    assert any("a later run of the same config" in line for line in skipped)
    committed = sorted((tmp_path / "boards" / "records" / "emo").glob("**/*.json"))
    assert len(committed) == 7, "every published record is copied beside the boards"


def test_a_variant_run_leaves_the_standard_row_unchanged(runs_dir: Path, tmp_path: Path) -> None:
    for seed in range(3):
        put(runs_dir / "emo", "emo_1m", seed, 0.8 + seed / 100)
    publish("emo", [], tmp_path / "boards")
    before = json.loads((tmp_path / "boards" / "emo.json").read_text())["presets"]["cpu"]["emo_1m"]
    put(runs_dir / "emo", "emo_1m", 0, 0.99, finished="2026-02-01T00:00:00", overrides=("optim.lr=3e-3",))
    publish("emo", [], tmp_path / "boards")
    board = json.loads((tmp_path / "boards" / "emo.json").read_text())
    assert board["presets"]["cpu"]["emo_1m"] == before
    (variant,) = board["variants"]["cpu"]
    assert variant["overrides"] == {"optim.lr": 0.003} and variant["seeds"] == [0]
    assert "optim.lr=0.003" in (tmp_path / "boards" / "emo.md").read_text()


def test_publishing_keeps_committed_rows_and_check_guards_them(runs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    for seed in range(2):
        put(runs_dir / "emo", "emo_1m", seed, 0.8)
    publish("emo", [], out)
    for path in runs_dir.glob("**/record.json"):
        path.unlink()  # a fresh clone: only the committed records are left
    put(runs_dir / "emo", "emo_5m", 0, 0.9)
    publish("emo", [], out)
    board = json.loads((out / "emo.json").read_text())
    assert board["presets"]["cpu"]["emo_1m"]["seeds"] == [0, 1] and "emo_5m" in board["presets"]["cpu"]
    assert check(out) == []
    (out / "emo.md").write_text((out / "emo.md").read_text().replace("emo_5m", "emo_9m"))
    assert check(out) == [f"{out / 'emo.md'} differs from what {out}/records/emo/ produces"]


def test_publish_refuses_dirty_trees_and_mixed_code_unless_allowed(runs_dir: Path, tmp_path: Path) -> None:
    dirty = put(runs_dir / "emo", "emo_1m", 0, 0.8, git_dirty=True)
    with pytest.raises(BenchError, match="dirty tree"):
        publish("emo", [], tmp_path / "boards")
    assert not (tmp_path / "boards" / "emo.json").exists(), "a refused publish writes nothing"
    publish("emo", [], tmp_path / "boards", allow_dirty=True)
    assert "emo_1m (dirty)" in (tmp_path / "boards" / "emo.md").read_text()
    dirty.unlink()
    put(runs_dir / "emo", "emo_5m", 0, 0.8, fingerprint="f" * 16)
    put(runs_dir / "emo", "emo_5m", 1, 0.8)
    with pytest.raises(BenchError, match="2 code versions"):
        publish("emo", [], tmp_path / "boards2")


def test_smoke_runs_are_never_published(bench_run, tmp_path: Path) -> None:
    bench_run("emo", "method=mobilenetv2", "preset=smoke")
    written, skipped = publish("emo", [], tmp_path / "boards")
    assert not (tmp_path / "boards" / "emo.json").exists()
    assert skipped and "preset smoke is for tests" in skipped[0]


def test_two_machines_with_different_data_roots_merge_into_one_row(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    put(a / "emo", "emo_1m", 0, 0.8, overrides=("data.root=/mnt/a", "data.num_workers=4"))
    put(b / "emo", "emo_1m", 1, 0.9, overrides=("data.root=/scratch/b",))
    publish("emo", [a, b], tmp_path / "boards")
    board = json.loads((tmp_path / "boards" / "emo.json").read_text())
    assert board["presets"]["cpu"]["emo_1m"]["seeds"] == [0, 1] and not board["variants"]


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


def test_publish_wandb_sends_each_board_it_writes(
    runs_dir: Path, tmp_path: Path, emo_claims, monkeypatch, capsys
) -> None:
    from bench import tracking
    from bench.cli import main

    put(runs_dir / "emo", "emo_1m", 0, 0.8)
    sent = []
    monkeypatch.setattr(tracking, "log_claims", lambda board, folder: sent.append((board, folder)) or "run1")
    assert main(["publish", "emo", "--out", str(tmp_path / "boards"), "--wandb"]) == 0
    ((board, folder),) = sent
    assert board == json.loads((tmp_path / "boards" / "emo.json").read_text())
    assert folder == runs_dir / "wandb-claims" / "emo"
    assert "logged the claims of emo to W&B (run run1)" in capsys.readouterr().out
