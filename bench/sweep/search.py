"""How a sweep picks its points: the grid (every combination, the default) or a random search
that samples the W&B parameter specs ``trials`` times, each trial run on every method and seed
(the seeds replicate a point; the methods are compared on the same points). The draws depend only
on the search seed and the specs, so a search reruns the same trials and a larger ``--trials``
extends a smaller one (its runs are skipped as done). W&B's Bayesian search runs on W&B only."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import config
from bench.errors import BenchError
from bench.sweep.grid import as_arg, expand, parameters
from bench.sweep.space import flatten

METHODS = ("grid", "random", "bayes")
CROSSED = ("preset", "method", "seed")  # never sampled: every trial runs on each of them
PASSED = ("metric", "early_terminate", "run_cap", "name", "description")  # W&B reads them as they are


@dataclass(frozen=True)
class Search:
    """``method``: grid, random or bayes (W&B's names); ``trials`` and ``seed`` for random."""

    method: str = "grid"
    trials: int | None = None
    seed: int = 0

    def check(self, local: bool) -> None:
        """Refuse what cannot run where it is asked to, in one line."""
        if self.method not in METHODS:
            raise BenchError(f"--search takes {', '.join(METHODS)}, got {self.method!r}")
        if self.trials is not None and self.trials < 1:
            raise BenchError(f"--trials takes a positive integer, got {self.trials}")
        if local and self.method == "bayes":
            raise BenchError(
                "a bayes search runs on W&B agents (--wandb); locally use --search random --trials N"
            )
        if local and self.method == "random" and not self.trials:
            raise BenchError("--search random samples --trials N points: give N >= 1")
        if self.trials is not None and (self.method != "random" or not local):
            raise BenchError("--trials is for a local --search random (W&B agents run until stopped)")


def points(
    task: str, overrides: list[str], methods: str | None, seeds: str | None, search: Search
) -> list[dict]:
    """The sampled values of each trial, ``[{key: value}]``: ``search.trials`` draws from a
    generator seeded with ``search.seed``, keys drawn in sorted order (the order on the command
    line changes nothing). A trial equal to an earlier one is dropped: it would be the same runs."""
    params = parameters(task, overrides, methods, seeds)
    sampled = sorted(k for k in params if k not in CROSSED)
    rng = random.Random(search.seed)
    out: list[dict] = []
    for _ in range(search.trials or 0):
        point = {k: params[k].sample(rng) for k in sampled}
        if point not in out:
            out.append(point)
    return out


def plan(
    task: str,
    overrides: list[str],
    methods: str | None = None,
    seeds: str | None = None,
    search: Search | None = None,
) -> list[list[str]]:
    """The sweep's ``bench run`` argument lists: the grid, or for a random search each trial x
    method x seed, in that order. Every one is resolved before any run starts."""
    search = search or Search()
    search.check(local=True)
    if search.method == "grid":
        return expand(task, overrides, methods, seeds)
    params = parameters(task, overrides, methods, seeds)
    crossed = {k: params[k].grid() for k in CROSSED}
    runs = []
    for point in points(task, overrides, methods, seeds, search):
        for method in crossed["method"]:
            for seed in crossed["seed"]:
                fixed = {"preset": crossed["preset"][0], "method": method, "seed": seed}
                args = [f"{k}={as_arg(v)}" for k, v in (fixed | point).items()]
                config.resolve(task, args)
                runs.append(args)
    return runs


def read_spec(path: Path) -> tuple[str | None, list[str], dict]:
    """A W&B sweep configuration file: its ``method``, its ``parameters`` as overrides (a nested
    group's keys dotted) and the keys W&B reads as they are (``PASSED``). bench writes the
    program and the command itself; the entity and project are ``--entity`` and ``--project``."""
    try:
        spec = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise BenchError(f"cannot read the sweep spec {path}: {e}".splitlines()[0]) from None
    if not isinstance(spec, dict) or "parameters" not in spec:
        raise BenchError(f"{path}: a W&B sweep spec is a mapping with parameters:")
    unknown = sorted(set(spec) - {"method", "parameters", *PASSED})
    if unknown:
        raise BenchError(
            f"{path}: bench sweep takes method, parameters, {', '.join(PASSED)}; not {', '.join(unknown)} "
            "(bench writes program and command; --entity and --project say where)"
        )
    overrides = [f"{k}={json.dumps(v)}" for k, v in flatten(spec["parameters"]).items()]
    return spec.get("method"), overrides, {k: spec[k] for k in PASSED if k in spec}
