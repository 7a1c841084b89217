"""What a task declares: its methods, data, primary and headline metrics, the paper's numbers.

Declarations are plain dataclasses holding "module:Class" strings, so reading them (``bench list``)
imports no torch. A task's ``task.py`` builds one ``Task`` named ``TASK``. Its claims are data in
each preset's ``claims:`` section (bench/claims.py), judged by the harness, not by the task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.errors import lookup

# The sources of variation a run's seed may draw (``Task.seed_varies``).
SEED_SOURCES = ("data", "init", "order")


@dataclass(frozen=True)
class Method:
    """A LightningModule evaluated on a task, built as ``target(cfg, **kwargs)``."""

    name: str
    target: str
    description: str
    kwargs: dict = field(default_factory=dict)


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
    # At most five more metrics the board's main table shows beside the primary one.
    headline: tuple[str, ...] = ()
    # False where a run cannot be split across ranks (a simulator, a single-process RL loop):
    # trainer.devices > 1 is then refused, and sweeps parallelize over runs instead.
    distributed: bool = True
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
    # The paper preset's real-format fixture, "module:function": ``function(root)`` writes a tiny
    # copy of the paper's data in its published layout under ``root`` and returns the overrides
    # that point the paper preset at it (tests/test_paper_presets.py, ``make gpu-check``). None
    # where the paper preset reads no data (a simulator).
    fixture: str | None = None
    # System datasets the cpu and smoke presets read (bench/datasets/system.py names them and
    # says how to install each): ``make bench`` installs them first.
    datasets: tuple[str, ...] = ()
    # The config key of the per-process batch size, halved for a DDP run so the global batch
    # stays the one-process run's (tests/test_ddp.py); None where a method's batch is fixed.
    ddp_batch: str | None = None
    # What a run's seed draws, of the three sources of variation (Bouthillier et al., MLSys 2021):
    # "data" (the sample, split, scenes or population trained and tested on), "init" (the initial
    # weights), "order" (the order of training examples or episodes). A source fixed by design is
    # in ``seed_fixed`` with why ({"data": "the test set is the paper's fixed split"}). The task's
    # seeds.py ``draws(cfg, method)`` digests each source, and tests/test_seeds.py checks both.
    seed_varies: tuple[str, ...] = SEED_SOURCES
    seed_fixed: dict = field(default_factory=dict)
    version: int = 1

    def __post_init__(self) -> None:
        assert len(self.headline) <= 5, f"{self.name}: at most 5 headline metrics"
        varies, fixed = set(self.seed_varies), set(self.seed_fixed)
        assert varies | fixed == set(SEED_SOURCES) and not varies & fixed, (
            f"{self.name}: seed_varies and seed_fixed name each of {SEED_SOURCES} once"
        )

    def method(self, name: str) -> Method:
        return lookup(name, {m.name: m for m in self.methods}, f"method of task {self.name!r}")
