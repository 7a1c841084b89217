"""The contract every registered task x method meets at its smoke preset (timm/benchopt style):
a new task is tested here the moment it is registered."""

from __future__ import annotations

import math

import pytest

from bench import records
from bench.registry import tasks

CASES = [(t.name, m.name) for t in tasks().values() for m in t.methods]


@pytest.mark.parametrize(("task_name", "method"), CASES, ids=[f"{t}/{m}" for t, m in CASES])
def test_smoke_run_yields_valid_ok_record(bench_run, task_name: str, method: str) -> None:
    code, record = bench_run(task_name, f"method={method}", "preset=smoke")
    assert code == 0, record and record["error"]
    records.validate(record)
    assert record["status"] == "ok"
    assert record["metrics"] and all(math.isfinite(v) for v in record["metrics"].values())
    task = tasks()[task_name]
    assert record["primary"]["name"] == task.primary
    # A control that runs another protocol only (reft's fine-tune + distillation control: iFSIS)
    # has no primary value; every method that logs the primary logs a finite one.
    value = record["primary"]["value"]
    assert (value is None and task.primary not in record["metrics"]) or math.isfinite(value)
    assert record["cost"]["wall_s"] > 0 and record["cost"]["params"] >= 0  # 0: a rule, not a model
    assert record["provenance"]["task_version"] == task.version and record["provenance"]["fingerprint"]
