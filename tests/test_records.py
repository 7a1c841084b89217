from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from bench import records

GOOD = {
    "schema": 2,
    "task": "emo",
    "method": "emo_1m",
    "preset": "smoke",
    "seed": 0,
    "config": {"a": 1},
    "config_hash": "0" * 64,
    "status": "ok",
    "metrics": {"test/acc": 0.5},
    "primary": {"name": "test/acc", "value": 0.5, "higher_is_better": True},
    "cost": {"wall_s": 1.0},
    "provenance": {
        "bench_version": "0",
        "git_sha": None,
        "git_dirty": False,
        "python": "3.11",
        "fingerprint": "0" * 16,
    },
    "started": "2026-01-01T00:00:00+00:00",
    "finished": "2026-01-01T00:00:01+00:00",
    "error": None,
}


def test_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "r" / "record.json"
    records.write(GOOD, path)
    assert records.read(path) == GOOD
    assert [p.name for p in path.parent.iterdir()] == ["record.json"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.update(schema=1), "schema"),
        (lambda r: r.update(extra=1), "extra"),
        (lambda r: r.pop("metrics"), "metrics"),
        (lambda r: r.update(status="weird"), "status"),
        (lambda r: r.update(method="../x"), "method"),
        (lambda r: r["metrics"].update({"test/acc": None}), "non-finite"),
        (lambda r: r.update(claims={}), "claims"),
        (lambda r: r["provenance"].pop("fingerprint"), "fingerprint"),
    ],
)
def test_invalid_records_are_refused(change, message: str, tmp_path: Path) -> None:
    bad = copy.deepcopy(GOOD)
    change(bad)
    with pytest.raises(records.RecordError, match=message):
        records.write(bad, tmp_path / "record.json")
    assert not list(tmp_path.iterdir()), "nothing may be written for an invalid record"


def test_find_reports_corrupt_files_and_keeps_going(tmp_path: Path) -> None:
    records.write(GOOD, tmp_path / "a" / "record.json")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "record.json").write_text(json.dumps(GOOD)[:50])
    found = dict(records.find([tmp_path]))
    assert found[tmp_path / "a" / "record.json"] == GOOD
    assert isinstance(found[tmp_path / "b" / "record.json"], records.RecordError)


def test_failed_write_keeps_the_old_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "record.json"
    records.write(GOOD, path)

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(records.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        records.write({**GOOD, "seed": 1}, path)
    assert records.read(path) == GOOD and [p.name for p in tmp_path.iterdir()] == ["record.json"]
