"""Records -> leaderboards: per task, mean/std/n over seeds, the paper's numbers, claim verdicts."""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from bench import records
from bench.registry import get_task, tasks
from bench.run import runs_root
from bench.task import RunClaim

BOARD_SCHEMA = 1
COST_KEYS = ("params", "flops", "throughput", "train_s")


def collect(task: str | None, sources: list[Path]) -> dict[str, list[dict]]:
    """``ok`` records by task, one per (config hash, seed): the latest wins. Bad files are skipped
    with one line each on stderr."""
    latest: dict[tuple, dict] = {}
    for path, rec in records.find([runs_root(), *sources], task):
        if isinstance(rec, records.RecordError):
            print(f"skipped {path}: {rec}", file=sys.stderr)
        elif rec["status"] == "ok" and rec["task"] in tasks():
            key = (rec["task"], rec["config_hash"], rec["seed"])
            if key not in latest or rec["finished"] > latest[key]["finished"]:
                latest[key] = rec
    by_task = defaultdict(list)
    for rec in latest.values():
        by_task[rec["task"]].append(rec)
    return by_task


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
                for k in COST_KEYS
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
            "reported": task.reported.get(method, {}),
        }
    return {
        "schema": BOARD_SCHEMA,
        "task": task.name,
        "paper": task.paper,
        "primary": task.primary,
        "higher_is_better": task.higher_is_better,
        "reported_note": task.reported_note,
        "presets": dict(rows),
        "claims": {preset: _verdicts(task, table, preset) for preset, table in rows.items()},
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


def _fmt(stat: dict | None, digits: int = 4) -> str:
    if not stat or stat.get("mean") is None:
        return ""
    mean, std = stat["mean"], stat["std"]
    if abs(mean) >= 1e4:
        return f"{mean:.3g}"
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({stat['n']})"


def _verdict(holds) -> str:
    return {True: "holds", False: "does not hold", None: "not judged"}[holds]


def markdown(board: dict) -> str:
    lines = [
        f"# {board['task']}: {board['paper']}",
        "",
        f"Primary metric: `{board['primary']}` "
        f"({'higher' if board['higher_is_better'] else 'lower'} is better); "
        "mean ± std (n seeds). Paper's numbers: " + (board["reported_note"] or "none") + ".",
    ]
    for preset, table in board["presets"].items():
        metrics = sorted({k for row in table.values() for k in row["metrics"]})
        costs = [k for k in COST_KEYS if any(k in row["cost"] for row in table.values())]
        reported = sorted({k for row in table.values() for k in row["reported"]})
        lines += [
            "",
            f"## preset `{preset}`",
            "",
            "| method | " + " | ".join(metrics + costs + [f"paper {k}" for k in reported]) + " |",
            "|---" * (1 + len(metrics) + len(costs) + len(reported)) + "|",
        ]
        order = sorted(
            table,
            key=lambda m: (
                -(table[m]["metrics"].get(board["primary"], {}).get("mean") or 0)
                * (1 if board["higher_is_better"] else -1)
            ),
        )
        for m in order:
            row = table[m]
            cells = [_fmt(row["metrics"].get(k)) for k in metrics]
            cells += [_fmt(row["cost"].get(k), 1) for k in costs]
            cells += [str(row["reported"].get(k, "")) for k in reported]
            name = f"{m} (stale)" if row["stale"] else m
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines += ["", "| claim | verdict | value | bound |", "|---|---|---|---|"]
        for cid, v in board["claims"][preset].items():
            value = v.get("value")
            detail = (
                f"{value:.4g}" if isinstance(value, float) else "",
                f"{v['bound']:.4g}" if isinstance(v.get("bound"), float) else "",
            )
            if "per_method" in v:
                detail = (
                    "; ".join(f"{m}: {c['value']:.4g}" for m, c in v["per_method"].items()),
                    "; ".join(f"{c['bound']:.4g}" for c in v["per_method"].values()),
                )
            lines.append(f"| {cid}: {v['text']} | {_verdict(v['holds'])} | {detail[0]} | {detail[1]} |")
    return "\n".join(lines) + "\n"


def publish(task: str | None, sources: list[Path], out: Path) -> list[Path]:
    """Write ``<task>.json`` and ``<task>.md`` for each task with records, and ``index.md``."""
    if task:
        get_task(task)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, recs in sorted(collect(task, sources).items()):
        board = aggregate(name, recs)
        (out / f"{name}.json").write_text(json.dumps(board, indent=1, sort_keys=True))
        (out / f"{name}.md").write_text(markdown(board))
        written += [out / f"{name}.json", out / f"{name}.md"]
    index = ["# bench leaderboards", "", "| task | paper | presets |", "|---|---|---|"]
    for path in sorted(out.glob("*.json")):
        board = json.loads(path.read_text())
        index.append(
            f"| [{board['task']}]({board['task']}.md) | {board['paper']} | {', '.join(board['presets'])} |"
        )
    (out / "index.md").write_text("\n".join(index) + "\n")
    return written + [out / "index.md"]
