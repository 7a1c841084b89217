from __future__ import annotations

from pathlib import Path

import pytest

from bench import artifacts


def test_stage_is_built_once_per_sub_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(artifacts, "USED", {})  # other runs in this process may have filled it
    calls = []

    def build(folder: Path) -> None:
        calls.append(folder)
        (folder / "out.txt").write_text("x")

    a = artifacts.cached("t", "teacher", {"lr": 1}, build)
    b = artifacts.cached("t", "teacher", {"lr": 1}, build)
    c = artifacts.cached("t", "teacher", {"lr": 2}, build)
    assert a == b != c and len(calls) == 2 and (a / "out.txt").read_text() == "x"
    assert set(artifacts.USED) == {"t/teacher"}


def test_crashed_build_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))

    def build(folder: Path) -> None:
        (folder / "half").write_text("x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        artifacts.cached("t", "teacher", {}, build)
    assert not list((tmp_path / "t" / "teacher").iterdir())


def test_concurrent_callers_wait_for_one_build(tmp_path, monkeypatch) -> None:
    import threading
    import time

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))
    calls = []

    def build(folder):
        calls.append(folder)
        time.sleep(0.3)
        (folder / "out.txt").write_text("x")

    got = []

    def run() -> None:
        got.append(artifacts.cached("t", "s", {"a": 1}, build))

    workers = [threading.Thread(target=run) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 1 and len(set(got)) == 1 and (got[0] / "out.txt").read_text() == "x"


def test_a_builds_progress_outlives_a_failed_build_and_goes_when_complete(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path))

    def dies(folder):
        (artifacts.progress("t", "s", {"a": 1}) / "state.pt").write_text("step 7")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        artifacts.cached("t", "s", {"a": 1}, dies)
    kept = artifacts.progress("t", "s", {"a": 1}) / "state.pt"
    assert kept.read_text() == "step 7"

    def resumes(folder):
        (folder / "out.txt").write_text(kept.read_text())

    final = artifacts.cached("t", "s", {"a": 1}, resumes)
    assert (final / "out.txt").read_text() == "step 7" and not kept.parent.exists()
