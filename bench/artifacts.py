"""Shared stages: an expensive output several methods and seeds reuse (a trained teacher, a
population of networks), cached under ``cache/<task>/<stage>/<hash>/`` by its own sub-config.

A run names every artifact it used in its record (``artifacts``: {stage: hash}).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

# Artifacts used by the run in this process, {"task/stage": hash}; bench.run copies it into the record.
USED: dict[str, str] = {}


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE", "cache"))


def _address(task: str, stage: str, sub_config: dict, version: int) -> tuple[str, str, Path]:
    """The stage output's identity: its canonical body, sha256 and folder."""
    body = json.dumps({"config": sub_config, "version": version}, sort_keys=True)
    digest = hashlib.sha256(body.encode()).hexdigest()
    return body, digest, cache_root() / task / stage / digest[:16]


def find(task: str, stage: str, sub_config: dict, version: int = 1) -> Path | None:
    """The folder of a stage output another run built (named in this run's record), or None when
    none is complete: for a stage this run only reads and never builds."""
    _, digest, final = _address(task, stage, sub_config, version)
    if not (final / "config.json").exists():
        return None
    USED[f"{task}/{stage}"] = digest
    return final


def cached(task: str, stage: str, sub_config: dict, build: Callable[[Path], None], version: int = 1) -> Path:
    """The folder holding the stage's output for ``sub_config``; ``build(folder)`` fills it the
    first time. Built in a temporary folder and renamed when complete, so a crash never leaves a
    half-written artifact behind; a file lock makes concurrent runs (sweep workers) wait for one
    builder instead of each building it."""
    body, digest, final = _address(task, stage, sub_config, version)
    locks = cache_root() / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{task}-{stage}-{final.name}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        _build_once(final, body, build)
    USED[f"{task}/{stage}"] = digest
    return final


def progress(task: str, stage: str, sub_config: dict, version: int = 1) -> Path:
    """A folder where a long build keeps its own checkpoints: it outlives a build that dies (a
    killed job resumes from it) and goes when the stage is complete."""
    _, _, final = _address(task, stage, sub_config, version)
    folder = final.with_name(f"{final.name}.progress")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _build_once(final: Path, body: str, build: Callable[[Path], None]) -> None:
    if not (final / "config.json").exists():
        tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            build(tmp)
            (tmp / "config.json").write_text(body)
            os.replace(tmp, final) if not final.exists() else shutil.rmtree(tmp)
            shutil.rmtree(final.with_name(f"{final.name}.progress"), ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
