"""Claims as data, judged by the harness over seeds with a confidence interval.

A preset's ``claims:`` section is the one place a task's claims and their bounds live::

    emo1m_ge_mobilenetv2:
      text: EMO-1M top-1 >= MobileNetV2 at matched params
      metric: test/acc
      method: emo_1m
      op: ">="
      than: mobilenetv2        # another method (paired over shared seeds), a number,
      scale: 1.0               # or {metric: test/other} of the same run
      margin: 0.0
      kind: paper              # paper (the paper's claim) | check (the implementation's sanity)
      requires: [{metric: test/map, method: cmt_lidar, op: ">=", than: 0.1}]   # gates, optional

Per seed s: d_s = value_s - (scale * than_s + margin). The verdict reads the 95% Student-t interval
of mean(d): ``holds`` when it lies on the claim's side, ``does not hold`` when it lies wholly on
the other, else ``inconclusive`` (always with fewer than two seeds). A failed gate (judged on seed
means) makes the claim ``not judged`` and names the gate. Methods never judge: they log metrics.
"""

from __future__ import annotations

import math
import operator
import statistics
from dataclasses import dataclass, field

from bench.errors import BenchError

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
KINDS = ("paper", "check")
VERDICTS = ("holds", "does not hold", "inconclusive", "not judged")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Gate:
    """A condition on seed means that must hold before a claim is judged (a convergence gate)."""

    metric: str
    method: str
    op: str
    than: float | str

    def describe(self) -> str:
        return f"{self.method} {self.metric} {self.op} {self.than}"


@dataclass(frozen=True)
class Claim:
    id: str
    text: str
    metric: str
    method: str
    op: str
    than: float | str | dict
    scale: float = 1.0
    margin: float = 0.0
    kind: str = "paper"
    requires: tuple[Gate, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        than = self.than["metric"] if isinstance(self.than, dict) else self.than
        scaled = f"{self.scale:g} x {than}" if self.scale != 1 else str(than)
        margin = f" {'+' if self.margin >= 0 else '-'} {abs(self.margin):g}" if self.margin else ""
        return f"{self.method} {self.metric} {self.op} {scaled}{margin}"


def parse(section: dict | None, where: str, methods: set[str]) -> tuple[Claim, ...]:
    """The claims of a preset's ``claims:`` section, checked against the task's methods."""
    out = []
    for cid, spec in (section or {}).items():
        if not isinstance(spec, dict):
            raise BenchError(f"{where}: claim {cid!r} must be a mapping")
        try:
            gates = tuple(Gate(**g) for g in spec.get("requires", ()))
            claim = Claim(id=cid, **{**spec, "requires": gates})
        except TypeError as e:
            raise BenchError(f"{where}: claim {cid!r}: {e}") from None
        named = [claim.method, *(g.method for g in gates)]
        named += [claim.than] if isinstance(claim.than, str) else []
        problems = [f"op {o!r}" for o in [claim.op, *(g.op for g in gates)] if o not in OPS]
        if claim.kind not in KINDS:
            problems.append(f"kind {claim.kind!r}")
        problems += [f"method {m!r}" for m in named if m not in methods]
        if isinstance(claim.than, dict) and set(claim.than) != {"metric"}:
            problems.append("than: {metric: KEY}")
        if problems:
            raise BenchError(f"{where}: claim {cid!r} has a bad {', '.join(problems)}")
        out.append(claim)
    return tuple(out)


def judge(claim: Claim, runs: dict[str, dict[int, dict[str, float | None]]]) -> dict:
    """The verdict of ``claim`` on ``runs`` = {method: {seed: metrics}} (one standard row each)."""
    out = {"text": claim.text, "kind": claim.kind, "claim": claim.describe()}
    for gate in claim.requires:
        seen = [m.get(gate.metric) for m in runs.get(gate.method, {}).values()]
        seen = [v for v in seen if v is not None]
        ref = _seed_mean(runs, gate.than, gate.metric) if isinstance(gate.than, str) else gate.than
        if not seen or ref is None or not OPS[gate.op](statistics.fmean(seen), ref):
            return {**out, "verdict": "not judged", "reason": f"gate not met: {gate.describe()}", "n": 0}
    left = runs.get(claim.method, {})
    pairs = []
    for seed, metrics in sorted(left.items()):
        value = metrics.get(claim.metric)
        if isinstance(claim.than, dict):
            ref = metrics.get(claim.than["metric"])
        elif isinstance(claim.than, str):
            ref = runs.get(claim.than, {}).get(seed, {}).get(claim.metric)
        else:
            ref = claim.than
        if value is not None and ref is not None:
            pairs.append((value, claim.scale * ref + claim.margin))
    n = len(pairs)
    if not n:
        return {**out, "verdict": "not judged", "reason": "no seeds with both values", "n": 0}
    diffs = [v - b for v, b in pairs]
    mean = statistics.fmean(diffs)
    lo = hi = None
    verdict = "inconclusive"
    if n > 1:
        from scipy.stats import t

        half = t.ppf((1 + CONFIDENCE) / 2, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
        lo, hi = mean - half, mean + half
        verdict = _side(claim.op, lo, hi)
    return {
        **out,
        "verdict": verdict,
        "value": statistics.fmean(v for v, _ in pairs),
        "bound": statistics.fmean(b for _, b in pairs),
        "diff": mean,
        "lo": lo,
        "hi": hi,
        "n": n,
    }


def _side(op: str, lo: float, hi: float) -> str:
    if op in (">=", ">"):
        holds, fails = OPS[op](lo, 0), hi < 0 if op == ">=" else hi <= 0
    else:
        holds, fails = OPS[op](hi, 0), lo > 0 if op == "<=" else lo >= 0
    return "holds" if holds else "does not hold" if fails else "inconclusive"


def _seed_mean(runs: dict, method: str, metric: str) -> float | None:
    seen = [m.get(metric) for m in runs.get(method, {}).values()]
    seen = [v for v in seen if v is not None]
    return statistics.fmean(seen) if seen else None
