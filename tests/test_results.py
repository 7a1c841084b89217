"""The results table (``bench.results``), ``bench export``, ``bench compare`` and ``bench publish
--from-wandb``: the table of the committed records gives the boards' means, the README's commands
run as written, a comparison is the claims' own arithmetic, and W&B's record artifacts merge like
``--from``."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import pytest

from bench import compare, config, records, results
from bench.cli import main
from bench.errors import BenchError
from bench.leaderboard import BOARDS, aggregate, publish, standard_hash
from bench.leaderboard import committed as committed_records
from bench.registry import get_task
from tests.test_leaderboard import record

ROOT = Path(__file__).resolve().parent.parent
SECTION = (ROOT / "README.md").read_text().split("## Results in Python", 1)[1].split("\n## ", 1)[0]
BOARD_TASKS = sorted(p.stem for p in BOARDS.glob("*.json"))


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    return results.load()


@pytest.mark.parametrize("task", BOARD_TASKS)
def test_the_committed_table_gives_each_board_rows_means(committed: pd.DataFrame, task: str) -> None:
    """Each row of leaderboards/<task>.json (standard or variant) has the seeds, metric means and
    cost means of the table's runs of its preset and config; the table labels a run's overrides
    as the board aggregated from the same records does."""
    board = json.loads((BOARDS / f"{task}.json").read_text())
    table = committed[committed["task"] == task]
    rows = [(p, m, row) for p, t in board["presets"].items() for m, row in t.items()]
    rows += [(p, v["method"], v) for p, vs in board["variants"].items() for v in vs]
    for preset, method, row in rows:
        runs = table[(table["preset"] == preset) & (table["config_hash"] == row["config_hash"])]
        if runs.empty and method not in {m.name for m in get_task(task).methods}:
            continue  # a method the task no longer has: the next publish drops its row
        assert set(runs["method"]) == {method}
        assert sorted(runs["seed"]) == row["seeds"]
        for metric, stats in row["metrics"].items():
            mean = runs[metric].mean()
            if stats["mean"] is None:
                assert pd.isna(mean)
            else:
                assert mean == pytest.approx(stats["mean"], rel=1e-12)
            assert runs[metric].count() == stats["n"]
        for key, stats in row["cost"].items():
            assert runs[f"cost/{key}"].mean() == pytest.approx(stats["mean"], rel=1e-12)
    now = aggregate(task, committed_records(task))
    labels = {(p, row["config_hash"]): "" for p, t in now["presets"].items() for row in t.values()}
    for preset, variants in now["variants"].items():
        for v in variants:
            labels[(preset, v["config_hash"])] = " ".join(
                f"{k}={results._scalar(x)}" for k, x in v["overrides"].items()
            )
    assert {(r.preset, r.config_hash): r.overrides for r in table.itertuples()} == labels


def test_the_readme_example_runs_as_written(tmp_path: Path, capsys) -> None:
    """The Python block and the shell block of the README's "Results in Python", their output
    files moved under tmp_path."""
    (code,) = re.findall(r"```python\n(.*?)```", SECTION, re.S)
    exec(code.replace('"emo.parquet"', repr(str(tmp_path / "emo.parquet"))), {})
    frame = pd.read_parquet(tmp_path / "emo.parquet")
    assert len(frame) == len(results.load("emo", "cpu")) > 0 and "test/acc" in frame
    assert "A - B:" in capsys.readouterr().out
    (block,) = re.findall(r"```sh\n(.*?)```", SECTION, re.S)
    for line in block.strip().splitlines():
        argv = shlex.split(line)[1:]
        if "--out" in argv:
            argv[argv.index("--out") + 1] = str(tmp_path / argv[argv.index("--out") + 1])
        assert main(argv) == 0, line
    assert len(pd.read_csv(tmp_path / "emo.csv")) == len(frame)
    out = capsys.readouterr().out
    assert "power: detects" in out and "n = " in out


def test_export_writes_every_format_and_refuses_bad_input(tmp_path: Path, capsys) -> None:
    frame = results.load("emo", "cpu")
    for fmt, read in (("csv", pd.read_csv), ("parquet", pd.read_parquet)):
        assert main(["export", "emo", "--preset", "cpu", "--format", fmt, "--out", str(tmp_path / "t")]) == 0
        assert list(read(tmp_path / "t")["seed"]) == list(frame["seed"])
    assert main(["export", "--out", str(tmp_path / "all.jsonl")]) == 0
    assert len((tmp_path / "all.jsonl").read_text().splitlines()) == len(results.load())
    (tmp_path / "file").write_text("")
    bad = [
        ["export", "nosuch", "--out", str(tmp_path / "x.csv")],
        ["export", "emo", "--format", "xls", "--out", str(tmp_path / "x.xls")],
        ["export", "emo", "--preset", "nosuch", "--out", str(tmp_path / "x.csv")],
        ["export", "emo", "--out", str(tmp_path / "file" / "x.csv")],
        ["export", "emo", "--out", str(tmp_path)],
    ]
    capsys.readouterr()
    for argv in bad:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("bench: error:") and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("task", BOARD_TASKS)
def test_compare_is_the_claims_arithmetic(task: str) -> None:
    """A claim "A op B" (scale 1, no margin) of a committed board reads as ``compare A B``."""
    board = json.loads((BOARDS / f"{task}.json").read_text())
    if not _current(task, board):
        pytest.skip(f"{task}'s board predates its presets or methods: republish it")
    judged = [
        (preset, c, board["claims"][preset][c.id])
        for preset in board["claims"]
        for c in config.preset_claims(task, preset)
        if isinstance(c.than, str) and c.scale == 1 and not c.margin and c.id in board["claims"][preset]
    ]
    judged = [j for j in judged if j[2]["verdict"] != "not judged"]
    if not judged:
        pytest.skip(f"{task}'s boards have no method-against-method claim")
    preset, claim, verdict = judged[0]
    c = compare.compare(task, claim.method, claim.than, claim.metric, preset)
    assert c["n"] == verdict["n"] and not c["unpaired"]
    for key in ("diff", "lo", "hi", "detectable"):
        assert c[key] == pytest.approx(verdict[key], rel=1e-12, abs=1e-15), key


def _current(task: str, board: dict) -> bool:
    """Whether each standard row of a committed board is its preset's standard config now."""
    try:
        return all(
            row["config_hash"] == standard_hash(task, preset, method)
            for preset, table in board["presets"].items()
            for method, row in table.items()
        )
    except BenchError:
        return False


def _put(rec: dict, root: Path, tag: str = "") -> None:
    """Write ``rec`` where a run writes it under ``root`` (``tag``: beside another run of its seed)."""
    folder = records.run_dir(root, rec, rec["config_hash"])
    records.write(rec, folder.with_name(folder.name + tag) / "record.json")


def test_compare_a_variant_a_commit_and_unpaired_seeds(tmp_path: Path, capsys) -> None:
    runs = tmp_path / "runs"
    for s in range(4):
        _put(record("emo_1m", s, 0.5 + s / 100), runs)
    for s in range(3):  # a variant on three seeds, a point better
        _put(record("emo_1m", s, 0.51 + s / 100, overrides=("optim.lr=0.03",)), runs)
    for s in range(4):  # the standard config rerun at another commit, later, two points worse
        again = record("emo_1m", s, 0.48 + s / 100, finished="2030-01-01T00:00:00", git_sha="deadbeef00")
        _put(again, runs, "-again")

    table = results.load("emo", "cpu", committed=False, runs=runs)
    assert sorted(set(table["overrides"])) == ["", "optim.lr=0.03"]

    c = compare.compare("emo", "emo_1m:optim.lr=0.03", "emo_1m@abc1234", preset="cpu", runs=runs)
    assert c["n"] == 3 and c["diff"] == pytest.approx(0.01) and c["unpaired"] == ["seed 3: only in B"]
    assert c["lo"] == pytest.approx(0.01) and c["detectable"] == pytest.approx(0.0, abs=1e-12)
    latest = compare.compare("emo", "emo_1m", "emo_1m@abc1234", preset="cpu", runs=runs)
    assert latest["diff"] == pytest.approx(-0.02) and latest["n"] == 4
    assert "the latest (2030-01-01T00:00:00) used" in " ".join(latest["notes"])
    pinned = compare.compare("emo", "emo_1m@deadbeef", "emo_1m@ABC12", preset="cpu", runs=runs)
    assert pinned["diff"] == pytest.approx(-0.02)

    assert main(["compare", "emo", "emo_1m:optim.lr=0.03", "emo_1m@abc1234", "--runs", str(runs)]) == 0
    out = capsys.readouterr().out
    assert "A - B: +0.01" in out and "unpaired: seed 3: only in B" in out and "reading: A is better" in out
    for a in ("emo_1m:optim.lr", "emo_1m@", "nosuch", "emo_1m:optim.lrr=1", "emo_1m@0000000"):
        assert main(["compare", "emo", a, "emo_1m", "--runs", str(runs)]) == 2, a
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["compare", "emo", "emo_1m", "emo_2m", "--metric", "test/nope", "--runs", str(runs)]) == 2


class _Artifact:
    """A W&B artifact of a run: ``download(root)`` puts its files under ``root`` by their names
    in the artifact and returns ``root``, as ``wandb.Artifact.download`` does."""

    def __init__(self, name: str, kind: str, record_file: Path) -> None:
        self.name, self.type, self.file = name, kind, record_file

    def download(self, root: str) -> str:
        Path(root).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.file, Path(root) / "record.json")
        return root


class _Run:
    def __init__(self, run_id: str, artifacts: list[_Artifact]) -> None:
        self.id, self.artifacts = run_id, artifacts

    def logged_artifacts(self) -> list[_Artifact]:
        return self.artifacts


class _Api:
    """``wandb.Api`` with one project ``team/bench-emo`` and its sweep ``sw1`` (one of its runs)."""

    asked: list[str] = []

    def __init__(self, runs: list[_Run]) -> None:
        self.all = runs

    def runs(self, path: str) -> list[_Run]:
        self.asked.append(path)
        if path != "team/bench-emo":
            import wandb

            raise wandb.errors.CommError(f"Could not find project {path}")
        return self.all

    def sweep(self, path: str):
        self.asked.append(path)
        return type("Sweep", (), {"runs": self.all[:1]})()


def test_publish_from_wandb_merges_the_record_artifacts_like_from(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    """What this cannot prove: that the W&B server returns these runs and artifacts (the fake
    ``Api`` answers with the attributes and the download layout of wandb's public API as read in
    its source: ``Run.id``, ``Run.logged_artifacts()``, ``Artifact.type``/``.name``/``.download``),
    nor authentication, paging or network failures; tests/test_wandb.py covers the upload."""
    import wandb

    files = tmp_path / "uploaded"
    files.mkdir()

    def uploaded(name: str, rec: dict) -> Path:
        path = files / f"{name}.json"
        records.write(rec, path)
        return path

    first = uploaded("a0", record("emo_1m", 0, 0.70))
    resumed = uploaded("a1", record("emo_1m", 0, 0.72, finished="2026-01-02T00:00:00"))
    other = uploaded("b", record("emo_2m", 1, 0.75))
    art = "record-emo-emo_1m-000000000000-s0"
    runs = [
        _Run("r1", [_Artifact(f"{art}:v0", "record", first), _Artifact(f"{art}:v1", "record", resumed)]),
        _Run("r2", [_Artifact("record-emo-emo_2m-000000000000-s1:v0", "record", other)]),
        _Run(
            "r3", [_Artifact("model-emo:v0", "model", other), _Artifact("record-cmt-x:v0", "record", other)]
        ),
    ]
    monkeypatch.setattr(wandb, "Api", lambda: _Api(runs))
    out = tmp_path / "boards"
    assert main(["publish", "emo", "--from-wandb", "team/bench-emo", "--out", str(out)]) == 0
    assert "downloaded 3 record artifacts" in capsys.readouterr().err
    pulled = {
        (r["method"], r["seed"]): r
        for r in (json.loads(p.read_text()) for p in out.glob("records/**/*.json"))
    }
    assert set(pulled) == {("emo_1m", 0), ("emo_2m", 1)}
    assert pulled[("emo_1m", 0)]["metrics"]["test/acc"] == 0.72  # the resumed run's later record

    expected = tmp_path / "expected"
    by_hand = tmp_path / "by_hand" / "emo"
    for i, path in enumerate((first, resumed, other)):
        (by_hand / str(i)).mkdir(parents=True)
        shutil.copyfile(path, by_hand / str(i) / "record.json")
    publish("emo", [by_hand.parent], expected)
    assert (out / "emo.json").read_text() == (expected / "emo.json").read_text()

    assert main(["publish", "emo", "--from-wandb", "team/bench-emo/sw1", "--out", str(tmp_path / "s")]) == 0
    assert _Api.asked[-1] == "team/bench-emo/sw1"
    capsys.readouterr()
    for bad in ("team", "team/nosuch", "a/b/c/d"):
        assert main(["publish", "emo", "--from-wandb", bad, "--out", str(tmp_path / "x")]) == 2, bad
        assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert main(["publish", "--from-wandb", "team/bench-emo", "--out", str(tmp_path / "x")]) == 2
