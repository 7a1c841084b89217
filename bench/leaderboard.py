"""Records -> leaderboards: per task, mean/std/n over seeds, the paper's numbers, claim verdicts."""

from __future__ import annotations

import json
import shutil
import statistics
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from bench import records, render
from bench.registry import get_task, tasks
from bench.run import runs_root
from bench.task import RunClaim

BOARD_SCHEMA = 1


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


def collect(task: str | None, sources: list[Path]) -> tuple[dict[str, list[dict]], list[str]]:
    """``ok`` records by task, one per (config hash, seed): the latest wins, with its run
    ``folder``; and one line per record file that was skipped, naming it and saying why."""
    latest: dict[tuple, dict] = {}
    skipped = []
    for root in [runs_root(), *sources]:
        for path, rec in records.find([root], task):
            if problem := _problem(root, path, rec):
                skipped.append(f"skipped {path}: {problem}")
            elif rec["status"] == "ok":
                key = (rec["task"], rec["config_hash"], rec["seed"])
                if key not in latest or rec["finished"] > latest[key]["finished"]:
                    latest[key] = {**rec, "folder": path.parent}
    by_task = defaultdict(list)
    for rec in latest.values():
        by_task[rec["task"]].append(rec)
    return by_task, skipped


def _stats(values: list[float]) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"mean": None, "std": None, "n": 0}
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "std": std, "n": len(values)}


def aggregate(task_name: str, recs: list[dict]) -> dict:
    """The leaderboard of one task: rows per (preset, method) from its newest config."""
    task = get_task(task_name)
    newest: dict[tuple, str] = {}
    for rec in sorted(recs, key=lambda r: r["finished"]):
        newest[(rec["preset"], rec["method"])] = rec["config_hash"]
    rows = defaultdict(dict)
    for (preset, method), digest in sorted(newest.items()):
        group = [r for r in recs if r["config_hash"] == digest]
        metrics = sorted({k for r in group for k in r["metrics"]})
        run_claims = sorted({k for r in group for k in r["claims"]})
        rows[preset][method] = {
            "config_hash": digest,
            "seeds": sorted(r["seed"] for r in group),
            "metrics": {k: _stats([r["metrics"].get(k) for r in group]) for k in metrics},
            "cost": {
                k: _stats([r["cost"].get(k) for r in group])
                for k in render.COST_KEYS
                if any(k in r["cost"] for r in group)
            },
            "claims": {
                c: {
                    "holds": all(r["claims"][c]["holds"] for r in group if c in r["claims"]),
                    "value": _stats([r["claims"][c]["value"] for r in group if c in r["claims"]])["mean"],
                    "bound": group[0]["claims"].get(c, {}).get("bound"),
                }
                for c in run_claims
            },
            "stale": any(r["provenance"].get("task_version") != task.version for r in group),
            "provenance": max(group, key=lambda r: r["finished"])["provenance"],
            "date": max(r["finished"] for r in group),
            "reported": task.reported.get(method, {}),
            "by_seed": {r["seed"]: r["metrics"].get(task.primary) for r in group},
        }
    for table in rows.values():
        _compare_to_best(table, task.higher_is_better)
    return {
        "schema": BOARD_SCHEMA,
        "task": task.name,
        "paper": task.paper,
        "primary": task.primary,
        "higher_is_better": task.higher_is_better,
        "reported_note": task.reported_note,
        "curve": task.curve,
        "series": [asdict(s) for s in task.series],
        "presets": dict(rows),
        "claims": {preset: _verdicts(task, table, preset) for preset, table in rows.items()},
    }


def copy_figures(board: dict, recs: list[dict], site: Path) -> dict[str, list[dict]]:
    """The task's declared run figures, per preset and method those of the lowest seed, copied
    into ``site`` as ``<task>-<preset>-<method>-<file>``: {preset: [{file, method, seed}]}."""
    names = get_task(board["task"]).figures
    out = {}
    for preset, table in board["presets"].items():
        shown = []
        for method, row in table.items():
            rec = min((r for r in recs if r["config_hash"] == row["config_hash"]), key=lambda r: r["seed"])
            for name in names:
                if (rec["folder"] / name).is_file():
                    target = f"{board['task']}-{preset}-{method}-{name.replace('/', '-')}"
                    shutil.copyfile(rec["folder"] / name, site / target)
                    shown.append({"file": target, "method": method, "seed": rec["seed"]})
        out[preset] = shown
    return out


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


def _verdicts(task, table: dict, preset: str) -> dict:
    out = {}
    for claim in task.claims:
        if isinstance(claim, RunClaim):
            judged = {
                m: table[m]["claims"][claim.id]
                for m in claim.methods
                if m in table and claim.id in table[m]["claims"]
            }
            holds = all(v["holds"] for v in judged.values()) if judged else None
            out[claim.id] = {"text": claim.text, "holds": holds, "per_method": judged}
        elif preset in claim.presets:
            left = table.get(claim.left, {}).get("metrics", {}).get(claim.metric, {}).get("mean")
            right = table.get(claim.right, {}).get("metrics", {}).get(claim.metric, {}).get("mean")
            verdict = claim.judge(left, right) if None not in (left, right) else {"holds": None}
            out[claim.id] = {"text": claim.text, **verdict}
    return out


def publish(task: str | None, sources: list[Path], out: Path) -> tuple[list[Path], list[str]]:
    """Write ``<task>.json``, ``<task>.md`` and ``site/<task>.html`` (with plots) for each task
    with records, then the indexes of every published task. Returns the files written and the
    lines naming skipped records."""
    from bench import plots

    if task:
        get_task(task)
    site = out / "site"
    site.mkdir(parents=True, exist_ok=True)
    written = []
    by_task, skipped = collect(task, sources)
    for name, recs in sorted(by_task.items()):
        board = aggregate(name, recs)
        board["figures"] = copy_figures(board, recs, site)
        images = plots.plot_board(board, site)
        files = {
            out / f"{name}.json": json.dumps(board, indent=1, sort_keys=True),
            out / f"{name}.md": render.markdown(board),
            site / f"{name}.html": render.task_page(board, images),
        }
        for path, text in files.items():
            path.write_text(text)
        written += list(files)
    boards = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    index = ["# bench leaderboards", "", "| task | paper | presets |", "|---|---|---|"]
    index += [f"| [{b['task']}]({b['task']}.md) | {b['paper']} | {', '.join(b['presets'])} |" for b in boards]
    (out / "index.md").write_text("\n".join(index) + "\n")
    (site / "index.html").write_text(render.index_page(boards))
    for name, text in render.ASSETS.items():
        (site / name).write_text(text)
    return [*written, out / "index.md", site / "index.html"], skipped
