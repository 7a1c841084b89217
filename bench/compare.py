"""``bench compare TASK A B``: did A beat B? The paired per-seed difference of one metric, its 95%
interval, n and the smallest effect these seeds detect, computed by ``claims.paired`` (the code
that judges claims).

A side names a set of runs of one preset: ``METHOD`` (its standard config), ``METHOD:KEY=VALUE``
(a variant: the standard config with these overrides, several joined by ``:``, e.g.
``emo_1m:optim.lr=0.1:trainer.max_epochs=3``), and either with ``@REV``: only the runs made at
that commit or code fingerprint (a prefix of either, e.g. ``emo_1m@73a4d66``). The runs are the
committed records and those under the runs folder (``$BENCH_RUNS``), with any status but ``ok``
left out. Where a side holds several runs of one seed (committed, then rerun at a newer commit), the
latest one counts, as in ``bench publish``; name ``@REV`` to pick another. Seeds that only one side
ran, or whose metric is missing, are listed as unpaired, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench import claims, config, results
from bench.errors import BenchError


@dataclass(frozen=True)
class Side:
    """One side of a comparison as written (``spec``) and what it names."""

    spec: str
    method: str
    overrides: tuple[str, ...]
    rev: str | None


def parse_side(spec: str) -> Side:
    """``METHOD[:KEY=VALUE ...][@REV]`` -> Side; a malformed spec is a BenchError."""
    body, at, rev = spec.partition("@")
    method, *overrides = body.split(":")
    if not method or (at and not rev) or any("=" not in o for o in overrides):
        raise BenchError(f"bad run set {spec!r}: write METHOD, METHOD:KEY=VALUE[:KEY=VALUE] or METHOD@COMMIT")
    return Side(spec, method, tuple(overrides), rev.lower() if at else None)


def compare(
    task: str,
    a: str,
    b: str,
    metric: str | None = None,
    preset: str = "cpu",
    runs: Path | None = None,
) -> dict:
    """The paired comparison of run sets ``a`` and ``b`` of ``task`` at ``preset`` on ``metric``
    (the task's primary by default), over the committed records and those under ``runs``
    (``$BENCH_RUNS`` by default): per-seed values, ``claims.paired`` of the differences A - B, and
    the seeds left unpaired with the reason."""
    from bench.records import runs_root
    from bench.registry import get_task

    spec = get_task(task)
    metric = metric or spec.primary
    folder = runs_root() if runs is None else runs
    skipped: list[str] = []
    frame = results.load(task, preset, runs=folder if folder.is_dir() else None, skipped=skipped)
    frame = frame[frame["status"] == "ok"]
    if metric not in frame.columns:
        known = sorted(c for c in frame.columns if c not in results.COLUMNS and not c.startswith("cost/"))
        raise BenchError(f"unknown metric {metric!r} of {task}/{preset}: {', '.join(known) or 'no records'}")
    sides = [_select(frame, task, preset, parse_side(s), metric) for s in (a, b)]
    (va, notes_a), (vb, notes_b) = sides
    pairs = [s for s in sorted(set(va) & set(vb)) if va[s] is not None and vb[s] is not None]
    unpaired = [f"seed {s}: only in A" for s in sorted(set(va) - set(vb))]
    unpaired += [f"seed {s}: only in B" for s in sorted(set(vb) - set(va))]
    unpaired += [
        f"seed {s}: {metric} missing in {'A' if va[s] is None else 'B'}"
        for s in sorted(set(va) & set(vb))
        if s not in pairs
    ]
    out = {
        "task": task,
        "preset": preset,
        "metric": metric,
        "higher_is_better": spec.higher_is_better if metric == spec.primary else None,
        "a": a,
        "b": b,
        "seeds": pairs,
        "values": {s: (va[s], vb[s]) for s in pairs},
        "unpaired": unpaired,
        "notes": [f"A: {n}" for n in notes_a] + [f"B: {n}" for n in notes_b],
        "skipped": skipped,
        "n": len(pairs),
    }
    if pairs:
        out.update(claims.paired([va[s] - vb[s] for s in pairs]))
    return out


def report(c: dict) -> str:
    """The comparison as ``bench compare`` prints it."""
    better = {True: " (higher is better)", False: " (lower is better)", None: ""}[c["higher_is_better"]]
    lines = [f"{c['task']}/{c['preset']} {c['metric']}{better}: A = {c['a']}, B = {c['b']}"]
    lines += [f"  seed {s}: A {x:.6g}  B {y:.6g}  A - B {x - y:+.4g}" for s, (x, y) in c["values"].items()]
    if not c["n"]:
        lines.append("no paired seeds: nothing to compare")
    else:
        interval = f" [{c['lo']:+.4g}, {c['hi']:+.4g}] (95% interval)" if c["lo"] is not None else ""
        lines.append(f"A - B: {c['diff']:+.4g}{interval}, n = {c['n']} paired seeds")
        if c["detectable"] is not None:
            lines.append(f"power: detects {c['detectable']:.4g} (paired t-test, 95% confidence, 80% power)")
        lines.append(f"reading: {_reading(c)}")
    lines += [f"unpaired: {u}" for u in c["unpaired"]]
    lines += [f"note: {n}" for n in c["notes"]]
    if c["skipped"]:
        more = f" (and {len(c['skipped']) - 1} more)" if len(c["skipped"]) > 1 else ""
        lines.append(f"note: {c['skipped'][0]}{more}")
    return "\n".join(lines)


def _reading(c: dict) -> str:
    if c["lo"] is None:
        return "inconclusive (one paired seed: no interval)"
    if c["lo"] <= 0 <= c["hi"]:
        return "inconclusive (the interval contains 0)"
    higher = c["lo"] > 0
    if c["higher_is_better"] is None:
        return f"A is {'higher' if higher else 'lower'} than B"
    return f"A is {'better' if higher == c['higher_is_better'] else 'worse'} than B"


def _select(frame, task: str, preset: str, side: Side, metric: str) -> tuple[dict, list[str]]:
    """{seed: metric value or None} of the runs a side names, and notes on the choices made."""
    overrides = [f"method={side.method}", f"preset={preset}", *side.overrides]
    digest = config.config_hash(config.resolve(task, overrides))
    rows = frame[frame["config_hash"] == digest]
    if side.rev:
        at = rows["commit"].fillna("").str.lower().str.startswith(side.rev)
        at |= rows["fingerprint"].fillna("").str.lower().str.startswith(side.rev)
        if not at.any():
            seen = sorted({str(c)[:10] for c in rows["commit"]} | {str(f)[:12] for f in rows["fingerprint"]})
            raise BenchError(
                f"{side.spec}: no ok run at {side.rev!r}; its runs are at {', '.join(seen) or 'none'}"
            )
        rows = rows[at]
    if rows.empty:
        others = frame[frame["method"] == side.method]
        seen = sorted(
            {
                f"{h[:12]} ({'standard' if o == '' else 'a variant'})"
                for h, o in others[["config_hash", "overrides"]].values
            }
        )
        raise BenchError(
            f"{side.spec}: no ok runs of {task}/{preset} with config {digest[:12]}; "
            f"{side.method}'s runs have {', '.join(seen) or 'none'}"
        )
    notes = []
    values = {}
    for seed, group in rows.groupby("seed"):
        latest = group.sort_values("date").iloc[-1]
        if len(group) > 1:
            notes.append(f"seed {seed}: {len(group)} runs, the latest ({latest['date']}) used")
        value = latest[metric]
        values[int(seed)] = None if value != value or value is None else float(value)
    return values, notes
