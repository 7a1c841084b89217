"""Records as a table: ``load`` gives a pandas DataFrame with one row per run, ``export`` writes it
as CSV, parquet or JSONL (``bench export``).

A row holds what identifies the run (task, method, preset, seed, config hash, the ``overrides``
that make it a variant: "" for the preset's standard config), its status, every metric under the
metric's own name (``test/acc``), every cost under ``cost/<key>``, its provenance (commit,
fingerprint, dirty tree), the date it finished and the file it was read from. Committed records
are read by ``leaderboard.committed``, the reader of ``bench publish``, so their table holds what
the boards aggregate; run folders by ``records.find``, with every status::

    from bench import results
    frame = results.load("emo", preset="cpu")
    frame.groupby("method")["test/acc"].mean()
"""

from __future__ import annotations

import warnings
from pathlib import Path

from bench import config, leaderboard, records
from bench.errors import BenchError

FORMATS = ("csv", "parquet", "jsonl")
COLUMNS = [
    "task",
    "method",
    "preset",
    "seed",
    "config_hash",
    "overrides",
    "status",
    "primary",
    "commit",
    "fingerprint",
    "dirty",
    "date",
    "source",
]


def load(
    task: str | None = None,
    preset: str | None = None,
    committed: bool = True,
    runs: str | Path | list | None = None,
    skipped: list[str] | None = None,
):
    """One row per run of ``task`` (every task when None) at ``preset`` (every preset when None):
    the committed records (``leaderboards/records``) when ``committed``, and every record (any
    status) under ``runs``, a folder or a list of folders laid out as ``$BENCH_RUNS``. Files that
    cannot be used are left out, with a line each in ``skipped`` if given, else a warning each."""
    import pandas as pd

    from bench.registry import get_task, tasks

    names = [get_task(task).name] if task is not None else list(tasks())
    if preset is not None and not any(preset in config.presets(t) for t in names):
        known = sorted({p for t in names for p in config.presets(t)})
        raise BenchError(f"unknown preset {preset!r} of {task or 'any task'}: {', '.join(known)}")
    lines: list[str] = []
    found = leaderboard.committed(task, skipped=lines) if committed else []
    roots = [] if runs is None else [runs] if isinstance(runs, str | Path) else list(runs)
    for path, rec in records.find([Path(r) for r in roots], task):
        if isinstance(rec, records.RecordError):
            lines.append(f"skipped {path}: {rec}")
        else:
            found.append({**rec, "folder": path.parent})
    if skipped is not None:
        skipped += lines
    for line in lines if skipped is None else ():
        warnings.warn(line, stacklevel=2)
    rows = [row(rec) for rec in found if preset is None or rec["preset"] == preset]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS)
    measured = sorted(c for c in frame.columns if c not in COLUMNS)
    frame = frame[COLUMNS + measured]
    return frame.sort_values(["task", "preset", "method", "config_hash", "seed", "date"], ignore_index=True)


def row(rec: dict) -> dict:
    """The table row of one record (``folder``: where it was read from, if known)."""
    prov = rec["provenance"]
    out = {
        "task": rec["task"],
        "method": rec["method"],
        "preset": rec["preset"],
        "seed": rec["seed"],
        "config_hash": rec["config_hash"],
        "overrides": variant(rec),
        "status": rec["status"],
        "primary": rec["primary"]["name"],
        "commit": prov["git_sha"],
        "fingerprint": prov["fingerprint"],
        "dirty": prov["git_dirty"],
        "date": rec["finished"],
        "source": str(rec["folder"]) if rec.get("folder") else None,
    }
    out.update({k: (float(v) if v is not None else None) for k, v in rec["metrics"].items()})
    out.update({f"cost/{k}": v for k, v in rec["cost"].items() if isinstance(v, int | float)})
    return out


def variant(rec: dict) -> str | None:
    """The overrides that make a record's config differ from its preset's standard config, as
    ``key=value`` words ("" for the standard config; None when the task, preset or method is not
    known here, so no standard config exists to compare with)."""
    args = rec["task"], rec["preset"], rec["method"]
    try:
        standard = leaderboard.standard_config(*args)
    except BenchError:
        return None
    if rec["config_hash"] == leaderboard.standard_hash(*args):
        return ""
    changed = config.overrides_of(rec["config"], standard)
    return " ".join(f"{k}={_scalar(v)}" for k, v in changed.items())


def export(frame, path: str | Path, fmt: str | None = None) -> str:
    """Write ``frame`` to ``path`` as ``fmt`` (csv, parquet or jsonl; by default the path's suffix,
    else csv). Returns the format written."""
    path = Path(path)
    fmt = fmt or (path.suffix.lstrip(".") if path.suffix.lstrip(".") in FORMATS else "csv")
    if fmt not in FORMATS:
        raise BenchError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401  (pandas' parquet engine)
        except ImportError:
            raise BenchError("--format parquet needs pyarrow: pip install pyarrow") from None
    if path.is_dir():
        raise BenchError(f"cannot write {path}: it is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True)
    except OSError as e:
        raise BenchError(f"cannot write {path}: {e.strerror or e}") from None
    return fmt


def _scalar(value) -> str:
    """A config value as an override writes it (YAML's spelling of lists, null, booleans)."""
    import yaml

    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
