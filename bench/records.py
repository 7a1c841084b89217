"""Run records: schema v2 (docs/DESIGN.md), validated on write and read, written atomically.

The schema is checked once per process and compiled into one validator (``jsonschema.validate``
would check the schema itself again on every record: 14 ms a record, docs/SCALING.md)."""

from __future__ import annotations

import json
import math
import os
import tempfile
from functools import cache
from pathlib import Path

import jsonschema

SCHEMA_VERSION = 2  # v2: no per-run claims (the harness judges claims), a code fingerprint
_NUM = {"type": ["number", "null"]}
SCHEMA = {
    "type": "object",
    "required": [
        "schema",
        "task",
        "method",
        "preset",
        "seed",
        "config",
        "config_hash",
        "status",
        "metrics",
        "primary",
        "cost",
        "provenance",
        "started",
        "finished",
        "error",
    ],
    "additionalProperties": False,
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "task": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "method": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "preset": {"type": "string", "pattern": "^[a-z0-9_]+$"},
        "seed": {"type": "integer", "minimum": 0},
        "config": {"type": "object"},
        "config_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "status": {"enum": ["ok", "failed", "diverged"]},
        "metrics": {"type": "object", "additionalProperties": _NUM},
        "primary": {
            "type": "object",
            "required": ["name", "value", "higher_is_better"],
            "properties": {
                "name": {"type": "string"},
                "value": _NUM,
                "higher_is_better": {"type": "boolean"},
            },
        },
        "cost": {"type": "object"},
        "artifacts": {"type": "object", "additionalProperties": {"type": "string"}},
        "provenance": {
            "type": "object",
            "required": ["bench_version", "git_sha", "git_dirty", "python", "fingerprint"],
        },
        "started": {"type": "string"},
        "finished": {"type": "string"},
        "error": {"type": ["string", "null"]},
    },
}


def runs_root() -> Path:
    """Where runs write their records: ``$BENCH_RUNS`` or ./runs."""
    return Path(os.environ.get("BENCH_RUNS", "runs"))


class RecordError(ValueError):
    """A record file that cannot be read or does not match the schema."""


@cache
def _validator() -> jsonschema.protocols.Validator:
    """SCHEMA's validator, its schema checked once per process."""
    cls = jsonschema.validators.validator_for(SCHEMA)
    cls.check_schema(SCHEMA)
    return cls(SCHEMA)


def validate(record: dict) -> dict:
    """``record`` itself if it matches the schema (and an ``ok`` one has finite metrics), else a
    RecordError naming the first field that does not (jsonschema's best match)."""
    if e := jsonschema.exceptions.best_match(_validator().iter_errors(record)):
        where = "/".join(map(str, e.absolute_path)) or "record"
        raise RecordError(f"{where}: {e.message}")
    if record["status"] == "ok" and not all(_finite(v) for v in record["metrics"].values()):
        raise RecordError("status ok with a non-finite metric")
    return record


def finite_or_none(metrics: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: non-finite metrics are stored as null (and the run marked diverged)."""
    return {k: float(v) if _finite(v) else None for k, v in metrics.items()}


def run_dir(root: Path, cfg: dict, config_hash: str) -> Path:
    return root / cfg["task"] / cfg["method"] / cfg["preset"] / f"{config_hash[:12]}-s{cfg['seed']}"


def write(record: dict, path: Path) -> None:
    """Validate, then write atomically: a reader sees the old file or the new one, never half."""
    text = json.dumps(validate(record), indent=1, sort_keys=True, allow_nan=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".record-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_all(items: list[tuple[dict, Path]], valid: bool = False) -> None:
    """``write`` for many records (``bench publish``): each into a temporary file beside its target,
    one disk sync for them all, then each renamed over its target, so that after a crash each target
    is old or new, as with ``write``, at one sync instead of one per file (10^4 fsyncs: ~8 s here).
    ``valid``: the records were validated when read."""
    placed = []
    try:
        for record, path in items:
            text = json.dumps(
                record if valid else validate(record), indent=1, sort_keys=True, allow_nan=False
            )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".record-", suffix=".tmp")
            placed.append((tmp, path))
            with os.fdopen(fd, "w") as f:
                f.write(text)
        if placed:
            os.sync()
        while placed:
            os.replace(*placed[-1])
            placed.pop()
    finally:
        for tmp, _ in placed:
            Path(tmp).unlink(missing_ok=True)


def read(path: Path) -> dict:
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RecordError(f"unreadable: {e}") from None
    return validate(record)


def find(roots: list[Path], task: str | None = None, name: str = "record.json"):
    """Yield (path, record or RecordError) for every record file (``name``) under the roots."""
    for root in roots:
        pattern = f"{task}/**/{name}" if task else f"**/{name}"
        for path in sorted(Path(root).glob(pattern)):
            try:
                yield path, read(path)
            except RecordError as e:
                yield path, e


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
