"""Records -> leaderboards: standard rows per (preset, method), variants, claims judged over seeds.

The records behind every board are committed under ``leaderboards/records/``; ``bench publish``
merges new records (runs/, ``--from`` folders of other machines) into them and rebuilds the boards
from all of them, so publishing never loses a published row, and ``bench publish --check`` proves
that the committed boards are what the committed records produce.
"""

from __future__ import annotations

import json
import shutil
import statistics
from collections import defaultdict
from dataclasses import asdict
from functools import cache
from pathlib import Path

from bench import claims, config, provenance, records, render
from bench.errors import BenchError
from bench.registry import get_task, tasks

BOARDS = Path("leaderboards")  # the committed boards, relative to the repository root
BOARD_SCHEMA = 3  # v3: claims carry level, source and power
UNPUBLISHED_PRESETS = ("smoke",)  # for tests only, never on a committed board
COMMITTED = "*-s*.json"  # leaderboards/records/<task>/<method>/<preset>/<hash12>-s<seed>.json


def _problem(root: Path, path: Path, rec: dict | records.RecordError) -> str | None:
    """Why a record file cannot be used, or None."""
    if isinstance(rec, records.RecordError):
        return str(rec)
    folder = path.relative_to(root).parts[0]
    if rec["task"] != folder:
        return f"claims task {rec['task']!r} but lies under {folder}/"
    if rec["task"] not in tasks():
        return f"unknown task {rec['task']!r}"
    if rec["method"] not in {m.name for m in tasks()[rec["task"]].methods}:
        return f"unknown method {rec['method']!r} of task {rec['task']!r}"
    return None


def _read(roots: list[Path], task: str | None, skipped: list[str], name: str = "record.json") -> list[dict]:
    """The usable ``ok`` records under ``roots``, each with the ``folder`` it lies in."""
    found = []
    for root in roots:
        for path, rec in records.find([root], task, name):
            if problem := _problem(root, path, rec):
                skipped.append(f"skipped {path}: {problem}")
            elif rec["status"] == "ok":
                found.append({**rec, "folder": path.parent})
    return found


def committed(task: str | None = None, out: Path = BOARDS, skipped: list[str] | None = None) -> list[dict]:
    """The usable records committed under ``out/records`` (of ``task``, else of every task), each
    with the ``folder`` it lies in; a line per file left out goes to ``skipped``. The reader of
    ``bench.results``."""
    return _read([out / "records"], task, [] if skipped is None else skipped, COMMITTED)


def _key(rec: dict) -> tuple:
    return rec["task"], rec["config_hash"], rec["seed"]


def merge(committed: list[dict], new: list[dict], skipped: list[str]) -> tuple[list[dict], list[dict]]:
    """All records, one per (task, config hash, seed), the latest run winning; and the new ones
    that enter the committed set. A committed record is replaced only by a later run of the same
    config and seed, and every record left out says so in one line."""
    chosen = {_key(r): r for r in committed}
    entering = {}
    for rec in sorted(new, key=lambda r: r["finished"], reverse=True):
        old = entering.get(_key(rec)) or chosen.get(_key(rec))
        if old is not None and rec["finished"] <= old["finished"]:
            if rec["finished"] < old["finished"]:
                skipped.append(f"skipped {rec['folder']}: a later run of the same config and seed is used")
            continue
        if old is not None:
            skipped.append(f"replaced {old['folder']} by the later run {rec['folder']}")
        chosen[_key(rec)] = entering[_key(rec)] = rec
    return list(chosen.values()), list(entering.values())


def _stats(values: list[float | None]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


@cache
def standard_config(task: str, preset: str, method: str) -> dict:
    """The preset's standard config for ``method`` (no overrides), resolved once per process:
    every variant of a board is labelled against it. Callers must not change it."""
    return config.resolve(task, [f"method={method}", f"preset={preset}"])


@cache
def standard_hash(task: str, preset: str, method: str) -> str:
    """The config hash of the preset's standard config for ``method`` (no overrides)."""
    return config.config_hash(standard_config(task, preset, method))


def _row(task, group: list[dict], code: str) -> dict:
    newest = max(group, key=lambda r: r["finished"])
    prints = sorted({r["provenance"]["fingerprint"] for r in group})
    return {
        "config_hash": group[0]["config_hash"],
        "seeds": sorted(r["seed"] for r in group),
        "metrics": {
            k: _stats([r["metrics"].get(k) for r in group])
            for k in sorted({k for r in group for k in r["metrics"]})
        },
        "cost": {
            k: _stats([r["cost"].get(k) for r in group])
            for k in render.COST_KEYS
            if any(k in r["cost"] for r in group)
        },
        "fingerprints": prints,
        "stale": prints != [code],
        "dirty": any(r["provenance"]["git_dirty"] for r in group),
        "commits": sorted({(r["provenance"]["git_sha"] or "?")[:10] for r in group}),
        "provenance": newest["provenance"],
        "date": newest["finished"],
        "reported": task.reported.get(group[0]["method"], {}),
        "by_seed": {r["seed"]: r["metrics"].get(task.primary) for r in group},
        "commit_by_seed": {r["seed"]: (r["provenance"]["git_sha"] or "?")[:10] for r in group},
    }


def aggregate(task_name: str, recs: list[dict], code: str | None = None) -> dict:
    """The leaderboard of one task: standard rows per (preset, method), variants labelled by their
    overrides, and every claim of each preset judged on the standard rows' seeds. A row is stale
    when its records ran other code than ``code`` (the task's fingerprint now, by default)."""
    task = get_task(task_name)
    code = code or provenance.fingerprint(task_name)
    groups = defaultdict(list)
    for rec in recs:
        groups[(rec["preset"], rec["method"], rec["config_hash"])].append(rec)
    rows, variants = defaultdict(dict), defaultdict(list)
    for (preset, method, digest), group in sorted(groups.items()):
        if preset not in config.presets(task_name):
            continue
        if digest == standard_hash(task_name, preset, method):
            rows[preset][method] = _row(task, group, code)
        else:
            changed = config.overrides_of(group[0]["config"], standard_config(task_name, preset, method))
            variants[preset].append({"method": method, "overrides": changed, **_row(task, group, code)})
    for table in rows.values():
        _compare_to_best(table, task.higher_is_better)
    verdicts = {}
    metrics = {(r["config_hash"], r["seed"]): r["metrics"] for r in recs}
    for preset in sorted(set(rows) | set(variants)):
        runs = {
            m: {s: metrics[row["config_hash"], s] for s in row["seeds"]} for m, row in rows[preset].items()
        }
        verdicts[preset] = {c.id: claims.judge(c, runs) for c in config.preset_claims(task_name, preset)}
    return {
        "schema": BOARD_SCHEMA,
        "task": task.name,
        "fingerprint": code,
        "paper": task.paper,
        "primary": task.primary,
        "higher_is_better": task.higher_is_better,
        "headline": list(task.headline),
        "reported_note": task.reported_note,
        "curve": task.curve,
        "series": [asdict(s) for s in task.series],
        "presets": {p: rows[p] for p in sorted(set(rows) | set(variants))},
        "variants": dict(variants),
        "claims": verdicts,
    }


def seeds_needed(task: str, preset: str, out: Path = BOARDS) -> int:
    """The most seeds an underpowered claim of the preset's committed board needs to resolve the
    paper's effect (claims.MAX_SEEDS where none up to it would); 0 when no claim is underpowered."""
    path = out / f"{task}.json"
    verdicts = json.loads(path.read_text())["claims"].get(preset, {}) if path.exists() else {}
    return max(
        (v["seeds_needed"] or claims.MAX_SEEDS for v in verdicts.values() if v["underpowered"]), default=0
    )


def _compare_to_best(table: dict, higher_is_better: bool) -> None:
    """Each row's paired comparison with the best method on the seeds both ran: mean difference
    and the two-sided p-value of a paired t-test (None with fewer than two shared seeds)."""
    from scipy.stats import ttest_rel

    ranked = [m for m in table if table[m]["by_seed"] and None not in table[m]["by_seed"].values()]
    if not ranked:
        return
    sign = 1 if higher_is_better else -1
    best = max(ranked, key=lambda m: sign * statistics.fmean(table[m]["by_seed"].values()))
    for method in ranked:
        a, b = table[method]["by_seed"], table[best]["by_seed"]
        seeds = sorted(set(a) & set(b))
        x, y = [a[s] for s in seeds], [b[s] for s in seeds]
        diffs = [i - j for i, j in zip(x, y, strict=True)]
        p = None
        if method != best and len(seeds) > 1 and any(d != diffs[0] for d in diffs):
            p = float(ttest_rel(x, y).pvalue)
        table[method]["vs_best"] = {
            "best": best,
            "n": len(seeds),
            "p": p,
            "delta": statistics.fmean(diffs) if seeds else None,
        }


def _check_rows(board: dict, allow_dirty: bool) -> None:
    """Refuse rows from dirty trees or mixing code versions, unless ``allow_dirty`` (marked)."""
    for preset, table in board["presets"].items():
        for method, row in table.items():
            problem = "a dirty tree" if row["dirty"] else ""
            if len(row["fingerprints"]) > 1:
                problem = f"{len(row['fingerprints'])} code versions"
            if problem and not allow_dirty:
                raise BenchError(
                    f"{board['task']}/{preset}/{method}: records from {problem}; commit, rerun "
                    "(make bench FORCE=1) and publish, or mark them with --allow-dirty"
                )


def copy_figures(board: dict, recs: list[dict], site: Path) -> dict[str, list[dict]]:
    """The task's declared run figures, per preset and method those of the lowest seed, copied
    into ``site`` as ``<task>-<preset>-<method>-<file>``: {preset: [{file, method, seed}]}. A
    figure already published is kept when only the committed record (no run folder) is left."""
    names = get_task(board["task"]).figures
    out = {}
    for preset, table in board["presets"].items():
        shown = []
        for method, row in table.items():
            rec = min((r for r in recs if r["config_hash"] == row["config_hash"]), key=lambda r: r["seed"])
            for name in names:
                target = f"{board['task']}-{preset}-{method}-{name.replace('/', '-')}"
                source = rec["folder"] / name
                if source.is_file() and source.resolve() != (site / target).resolve():
                    shutil.copyfile(source, site / target)
                if (site / target).is_file():
                    shown.append({"file": target, "method": method, "seed": rec["seed"]})
        out[preset] = shown
    return out


def _files(board: dict, out: Path, images: dict) -> dict[Path, str]:
    name = board["task"]
    return {
        out / f"{name}.json": json.dumps(board, indent=1, sort_keys=True) + "\n",
        out / f"{name}.md": render.markdown(board),
        out / "site" / f"{name}.html": render.task_page(board, images),
    }


def _record_path(out: Path, rec: dict) -> Path:
    return (
        out
        / "records"
        / rec["task"]
        / rec["method"]
        / rec["preset"]
        / f"{rec['config_hash'][:12]}-s{rec['seed']}.json"
    )


def publish(
    task: str | None, sources: list[Path], out: Path, allow_dirty: bool = False
) -> tuple[list[Path], list[str]]:
    """Merge new records (runs/ and ``sources``) into the committed ones under ``out/records``,
    then write ``<task>.json``, ``<task>.md`` and ``site/<task>.html`` (with plots) for each task
    with records, and the indexes. Returns the files written and one line per record not used."""
    from bench import plots

    if task:
        get_task(task)
    skipped: list[str] = []
    committed = _read([out / "records"], task, skipped, COMMITTED)
    new = []
    for rec in _read([records.runs_root(), *sources], task, skipped):
        if rec["preset"] in UNPUBLISHED_PRESETS:
            skipped.append(f"not published {rec['folder']}: preset {rec['preset']} is for tests")
        elif rec["provenance"]["git_dirty"] and not allow_dirty:
            raise BenchError(
                f"{rec['folder']} comes from a dirty tree: commit, rerun and publish, or --allow-dirty"
            )
        else:
            new.append(rec)
    merged, entering = merge(committed, new, skipped)
    by_task = defaultdict(list)
    for rec in merged:
        by_task[rec["task"]].append(rec)
    boards = {name: aggregate(name, recs) for name, recs in sorted(by_task.items())}
    for board in boards.values():
        _check_rows(board, allow_dirty)
    records.write_all(
        [({k: v for k, v in rec.items() if k != "folder"}, _record_path(out, rec)) for rec in entering],
        valid=True,
    )
    site = out / "site"
    site.mkdir(parents=True, exist_ok=True)
    written = []
    for name, board in boards.items():
        board["figures"] = copy_figures(board, by_task[name], site)
        files = _files(board, out, plots.plot_board(board, site))
        for path, text in files.items():
            path.write_text(text)
        written += list(files)
    return [*written, *_write_indexes(out)], skipped


def _write_indexes(out: Path) -> list[Path]:
    boards = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    site = out / "site"
    site.mkdir(parents=True, exist_ok=True)
    files = {out / "index.md": render.index_markdown(boards), site / "index.html": render.index_page(boards)}
    files.update({site / name: text for name, text in render.ASSETS.items()})
    for path, text in files.items():
        path.write_text(text)
    return list(files)


def check(out: Path) -> list[str]:
    """What differs between the committed boards and what the committed records produce: one
    line per file, and one per board without committed records. Rows are judged stale against the
    fingerprint each board was published with, so a code change does not fail the check:
    republishing marks the rows its code made stale."""
    import tempfile

    from bench import plots

    problems: list[str] = []
    by_task = defaultdict(list)
    for rec in _read([out / "records"], None, problems, COMMITTED):
        by_task[rec["task"]].append(rec)
    with tempfile.TemporaryDirectory() as scratch:
        for name, recs in sorted(by_task.items()):
            committed = out / f"{name}.json"
            published = json.loads(committed.read_text()) if committed.exists() else {}
            board = aggregate(name, recs, published.get("fingerprint"))
            board["figures"] = published.get("figures", {})
            for path, text in _files(board, out, plots.plot_board(board, Path(scratch))).items():
                if not path.exists() or path.read_text() != text:
                    problems.append(f"{path} differs from what {out}/records/{name}/ produces")
    boards = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    for board in boards:
        if board["task"] not in by_task:
            problems.append(f"{out / board['task']}.json has no committed records under {out}/records/")
    if not (out / "index.md").exists() or (out / "index.md").read_text() != render.index_markdown(boards):
        problems.append(f"{out}/index.md differs from the boards")
    return problems
