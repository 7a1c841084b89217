"""A preset's claim read on one seed's records: for the slow cpu-preset checks, which run seed 0
only (the harness judges claims over all seeds with intervals; one seed gives no interval)."""

from __future__ import annotations

from bench.claims import OPS, judge
from bench.config import preset_claims


def satisfied(task: str, claim_id: str, records: dict[str, dict], preset: str = "cpu") -> bool:
    """Whether the claim's inequality holds on these records ({method: record}, one seed)."""
    claim = {c.id: c for c in preset_claims(task, preset)}[claim_id]
    verdict = judge(claim, {m: {0: r["metrics"]} for m, r in records.items()})
    return verdict.get("diff") is not None and OPS[claim.op](verdict["diff"], 0)
