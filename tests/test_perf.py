"""``make perf``: every task's figure runs (at its tiny size), and publishing reads and validates
each record once with one compiled validator."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import jsonschema
import pytest
import torch

from bench import leaderboard, perf, records
from bench.registry import folder, package, tasks

WITH_PERF = [name for name in tasks() if (folder(name) / "perf.py").exists()]
TASK = perf.publish_task()  # the generated records copy its committed ones


def test_every_task_has_a_perf_figure() -> None:
    assert list(tasks()) == WITH_PERF


@pytest.mark.parametrize("name", WITH_PERF)
def test_task_perf_runs_tiny(name: str, capsys: pytest.CaptureFixture) -> None:
    """Each perf.py's ``main(tiny=True)`` runs every path of its figure in seconds and prints it."""
    threads = torch.get_num_threads()
    try:
        importlib.import_module(f"{package(name)}.perf").main(tiny=True)
    finally:
        torch.set_num_threads(threads)  # some figures pin one thread
    assert capsys.readouterr().out.strip(), f"{name}'s perf.py printed no figure"


def test_publish_validates_each_record_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Publishing n new records validates n records (none twice, the schema itself at most once),
    commits every one, and ``--check`` holds on the result."""
    n = 60
    perf.generate(n, tmp_path / "new", TASK)
    validated, schema_checks = [], []
    validate, check_schema = records.validate, jsonschema.Draft202012Validator.check_schema
    monkeypatch.setattr(records, "validate", lambda rec: validated.append(rec) or validate(rec))
    monkeypatch.setattr(
        jsonschema.Draft202012Validator,
        "check_schema",
        classmethod(lambda cls, schema, **kw: schema_checks.append(1) or check_schema(schema, **kw)),
    )
    records._validator.cache_clear()
    out = tmp_path / "boards"
    _, skipped = leaderboard.publish(TASK, [tmp_path / "new"], out)
    assert skipped == []
    assert len(validated) == n and len(schema_checks) == 1
    committed = sorted((out / "records").glob("**/*.json"))
    assert len(committed) == n
    sources = {p.read_text() for p in (tmp_path / "new").glob("**/record.json")}
    assert {p.read_text() for p in committed} == sources, "committed records are the runs' files"
    assert leaderboard.check(out) == []
    board = json.loads((out / f"{TASK}.json").read_text())
    assert sum(len(v) for v in board["variants"].values()) > 0, "the generated variants have rows"


def test_write_all_leaves_no_temporary_files(tmp_path: Path) -> None:
    (rec,) = leaderboard.committed(TASK)[:1]
    rec = {k: v for k, v in rec.items() if k != "folder"}
    paths = [tmp_path / "a" / "r.json", tmp_path / "b" / "r.json"]
    records.write_all([(rec, p) for p in paths])
    assert [records.read(p) for p in paths] == [rec, rec]
    assert sorted(p.name for p in tmp_path.glob("**/*") if p.is_file()) == ["r.json", "r.json"]
    with pytest.raises(records.RecordError):
        records.write_all([(rec, paths[0]), ({**rec, "seed": -1}, tmp_path / "c" / "r.json")])
    assert not list(tmp_path.glob("**/.record-*")), "a failed batch removes its temporary files"
