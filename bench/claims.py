"""Claims as data, judged by the harness over seeds with a confidence interval and its power.

A preset's ``claims:`` section is the one place a task's claims and their bounds live::

    degree_acc_above_93:
      text: degree summaries predict the final-accuracy class at > 93%
      metric: test/acc
      method: degree
      op: ">"
      than: 0.93               # a number, another method (paired over shared seeds),
      scale: 1.0               # or {metric: test/other} of the same run
      margin: 0.0
      level: paper             # paper | proxy | check
      source: "Abstract: 'achieves classification accuracy of over 93%'"
      bound: 0.93              # paper level: the source's number, equal to the claim's threshold
      expect: 0.02             # optional: the paper's effect in d units (below)
      expect_why: ...          # with expect on a reduced preset: how the effect was scaled
      requires: [{metric: test/map, method: cmt_lidar, op: ">=", than: 0.1}]   # gates, optional

Levels say what kind of evidence a verdict is. ``paper``: the paper's statement with the paper's
bound; the threshold (``than`` when it is a number, else ``scale`` when it is not 1, else
``margin``, which is 0 for "A beats B") must equal ``bound``. ``proxy``: a reduced-scale stand-in
that names the paper claim it stands for (``stands_for``) and says ``why`` its bound differs.
``check``: the implementation's sanity (``source: implementation``). Every level cites a
``source``. Two claims of one preset on the same metric, method, op and reference are an error; a
preset that inherits another drops one of its claims with ``name: null``.

Per seed s: d_s = value_s - (scale * than_s + margin). The verdict reads the 95% Student-t interval
of mean(d): ``holds`` when it lies on the claim's side, ``does not hold`` when it lies wholly on
the other, else ``inconclusive`` (always with fewer than two seeds). A failed gate (judged on seed
means) makes the claim ``not judged`` and names the gate. With n >= 2 seeds, ``detectable`` is the
smallest mean effect a paired t-test on this n detects at 95% confidence and 80% power, from the
observed spread of d; with ``expect``, ``seeds_needed`` is the n that would detect the paper's
effect, and an inconclusive claim whose detectable effect exceeds it is ``underpowered``.
Methods never judge: they log metrics.
"""

from __future__ import annotations

import json
import math
import operator
import statistics
from dataclasses import dataclass, field

from bench.errors import BenchError

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
LEVELS = ("paper", "proxy", "check")
VERDICTS = ("holds", "does not hold", "inconclusive", "not judged")
CONFIDENCE = 0.95
POWER = 0.80
MAX_SEEDS = 200  # seeds_needed looks no further; beyond it the paper's effect is out of reach
_TOLERANCE = 1e-9


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
    level: str
    source: str
    scale: float = 1.0
    margin: float = 0.0
    bound: float | None = None
    expect: float | None = None
    expect_why: str | None = None
    stands_for: str | None = None
    why: str | None = None
    requires: tuple[Gate, ...] = field(default_factory=tuple)

    def describe(self) -> str:
        than = self.than["metric"] if isinstance(self.than, dict) else self.than
        scaled = f"{self.scale:g} x {than}" if self.scale != 1 else str(than)
        margin = f" {'+' if self.margin >= 0 else '-'} {abs(self.margin):g}" if self.margin else ""
        return f"{self.method} {self.metric} {self.op} {scaled}{margin}"

    def threshold(self) -> float:
        """The number a paper-level ``bound`` must equal: ``than`` when it is a number, else the
        ratio ``scale`` when it is not 1, else ``margin`` (0 for "A beats B")."""
        if _number(self.than):
            return float(self.than)
        return float(self.scale) if self.scale != 1 else float(self.margin)

    def reference(self) -> tuple:
        """What two claims of one preset may not share: metric, method, op and reference."""
        than = json.dumps(self.than, sort_keys=True)
        return self.metric, self.method, self.op, than, self.scale, self.margin


def _number(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _text(v) -> bool:
    return isinstance(v, str) and bool(v.strip())


def _problems(claim: Claim, reduced: bool) -> list[str]:
    """What is wrong with a claim's level, source, bound and expected effect."""
    out = []
    if claim.level not in LEVELS:
        out.append(f"level {claim.level!r} (use one of {', '.join(LEVELS)})")
    if not _text(claim.source):
        out.append("source (a non-empty string: section, table or figure with its number)")
    if claim.level == "paper":
        if not _number(claim.bound):
            out.append("bound (a paper-level claim states the source's number)")
        elif abs(claim.bound - claim.threshold()) > _TOLERANCE:
            out.append(f"bound {claim.bound:g}: the claim's threshold is {claim.threshold():g}")
    if claim.level == "proxy":
        out += [f"{k} (a proxy says {k})" for k in ("stands_for", "why") if not _text(getattr(claim, k))]
    if claim.expect is not None and not (_number(claim.expect) and claim.expect > 0):
        out.append(f"expect {claim.expect!r} (a positive number)")
    if claim.expect is not None and reduced and not _text(claim.expect_why):
        out.append("expect_why (how the paper's effect was scaled to this preset)")
    return out


def parse(section: dict | None, where: str, methods: set[str], reduced: bool = False) -> tuple[Claim, ...]:
    """The claims of a preset's ``claims:`` section, checked against the task's methods and the
    rules above; ``reduced``: the preset is smaller than the paper's setting."""
    out: list[Claim] = []
    for cid, spec in (section or {}).items():
        if not isinstance(spec, dict):
            raise BenchError(f"{where}: claim {cid!r} must be a mapping")
        if "kind" in spec:
            raise BenchError(f"{where}: claim {cid!r}: say level (paper, proxy or check), not kind")
        missing = [k for k in ("level", "source") if k not in spec]
        if missing:
            raise BenchError(f"{where}: claim {cid!r} lacks {' and '.join(missing)} (see bench/claims.py)")
        try:
            gates = tuple(Gate(**g) for g in spec.get("requires", ()))
            claim = Claim(id=cid, **{**spec, "requires": gates})
        except TypeError as e:
            raise BenchError(f"{where}: claim {cid!r}: {e}") from None
        named = [claim.method, *(g.method for g in gates)]
        named += [claim.than] if isinstance(claim.than, str) else []
        problems = [f"op {o!r}" for o in [claim.op, *(g.op for g in gates)] if o not in OPS]
        problems += [f"method {m!r}" for m in named if m not in methods]
        if isinstance(claim.than, dict) and set(claim.than) != {"metric"}:
            problems.append("than: {metric: KEY}")
        problems += _problems(claim, reduced)
        if problems:
            raise BenchError(f"{where}: claim {cid!r} has a bad {', '.join(problems)}")
        twin = next((c.id for c in out if c.reference() == claim.reference()), None)
        if twin:
            raise BenchError(
                f"{where}: claims {twin!r} and {cid!r} compare the same metric, method and reference"
            )
        out.append(claim)
    return tuple(out)


def _factor(n: int) -> float:
    """(t_{0.975} + t_{0.80}) with n - 1 degrees of freedom: the detectable effect in units of sd/sqrt(n)."""
    from scipy.stats import t

    return t.ppf((1 + CONFIDENCE) / 2, n - 1) + t.ppf(POWER, n - 1)


def detectable(sd: float, n: int) -> float:
    """The smallest mean effect a paired t-test on ``n`` seeds with spread ``sd`` detects (95%, 80%)."""
    return float(_factor(n) * sd / math.sqrt(n))


def seeds_needed(sd: float, expect: float) -> int | None:
    """The fewest seeds (2..MAX_SEEDS) whose detectable effect is at most ``expect``, else None."""
    return next((n for n in range(2, MAX_SEEDS + 1) if detectable(sd, n) <= expect), None)


def judge(claim: Claim, runs: dict[str, dict[int, dict[str, float | None]]]) -> dict:
    """The verdict of ``claim`` on ``runs`` = {method: {seed: metrics}} (one standard row each)."""
    out = {
        "text": claim.text,
        "level": claim.level,
        "source": claim.source,
        "stands_for": claim.stands_for if claim.level == "proxy" else None,
        "claim": claim.describe(),
        "expect": claim.expect,
        "detectable": None,
        "seeds_needed": None,
        "underpowered": False,
    }
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
    stats = paired([v - b for v, b in pairs])
    verdict = "inconclusive"
    if n > 1:
        verdict = _side(claim.op, stats["lo"], stats["hi"])
        out["detectable"] = stats["detectable"]
        if claim.expect is not None:
            out["seeds_needed"] = seeds_needed(stats["sd"], claim.expect)
            out["underpowered"] = verdict == "inconclusive" and out["detectable"] > claim.expect
    return {
        **out,
        "verdict": verdict,
        "value": statistics.fmean(v for v, _ in pairs),
        "bound": statistics.fmean(b for _, b in pairs),
        "diff": stats["diff"],
        "lo": stats["lo"],
        "hi": stats["hi"],
        "n": n,
    }


def paired(diffs: list[float]) -> dict:
    """Per-seed differences summarised as a verdict reads them: their mean (``diff``), its 95%
    Student-t interval (``lo``, ``hi``), their spread (``sd``) and the smallest mean effect a paired
    t-test on these n seeds detects (``detectable``); all but ``diff`` and ``n`` are None below two
    seeds. ``judge`` and ``bench compare`` share it."""
    n = len(diffs)
    out = {"diff": statistics.fmean(diffs), "lo": None, "hi": None, "sd": None, "detectable": None, "n": n}
    if n > 1:
        from scipy.stats import t

        sd = statistics.stdev(diffs)
        half = t.ppf((1 + CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n)
        out.update(lo=out["diff"] - half, hi=out["diff"] + half, sd=sd, detectable=detectable(sd, n))
    return out


def reading(verdict: dict) -> str:
    """The verdict as a board prints it: "inconclusive: underpowered (about N seeds needed)" where
    the seeds could not resolve the paper's effect."""
    if not verdict.get("underpowered"):
        return verdict["verdict"]
    needed = verdict.get("seeds_needed")
    about = f"about {needed} seeds needed" if needed else f"more than {MAX_SEEDS} seeds needed"
    return f"{verdict['verdict']}: underpowered ({about})"


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
