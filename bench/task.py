"""What a task declares: its methods, data, primary metric, the paper's numbers and claims.

Declarations are plain dataclasses holding "module:Class" strings, so reading them (``bench list``)
imports no torch. A task's ``task.py`` builds one ``Task`` named ``TASK``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field

OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


@dataclass(frozen=True)
class Method:
    """A LightningModule evaluated on a task, built as ``target(cfg, **kwargs)``."""

    name: str
    target: str
    description: str
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class RunClaim:
    """A claim one run can judge by itself; the method's ``claims()`` returns its verdict."""

    id: str
    text: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class Relation:
    """A claim judged across runs on seed means: ``mean(left) op scale * mean(right) + margin``."""

    id: str
    text: str
    metric: str
    left: str
    op: str
    right: str
    scale: float = 1.0
    margin: float = 0.0
    presets: tuple[str, ...] = ("cpu",)

    def judge(self, left: float, right: float) -> dict:
        bound = self.scale * right + self.margin
        return {"holds": bool(OPS[self.op](left, bound)), "value": left, "bound": bound}


@dataclass(frozen=True)
class Series:
    """A line per method over a swept setting, for the task's page: y at x is the seed mean of
    ``metric`` with ``{x}`` filled in; with ``over``, y is over's mean divided by the method's
    (a speedup when the metric is a time)."""

    name: str
    xlabel: str
    ylabel: str
    xs: tuple
    metric: str
    over: str | None = None
    log_x: bool = False


@dataclass(frozen=True)
class Task:
    """One benchmark taken from one paper."""

    name: str
    paper: str
    url: str
    datamodule: str
    primary: str
    higher_is_better: bool
    methods: tuple[Method, ...]
    claims: tuple[RunClaim | Relation, ...] = ()
    # The paper's own numbers per method: {method: {metric: value}}, with where they come from.
    reported: dict = field(default_factory=dict)
    reported_note: str = ""
    # The task's characteristic curve for its page: (x, y) as "cost.<key>" or "metrics.<key>".
    curve: tuple[str, str] | None = None
    # Metrics measured over a swept setting (concurrency, shots, epochs of evidence), as lines.
    series: tuple[Series, ...] = ()
    # Files a run writes into its folder (predicted masks, rollouts) that the task's page shows:
    # per preset and method, those of the lowest seed.
    figures: tuple[str, ...] = ()
    version: int = 1

    def method(self, name: str) -> Method:
        from bench.registry import lookup

        return lookup(name, {m.name: m for m in self.methods}, f"method of task {self.name!r}")
