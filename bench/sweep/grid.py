"""A sweep's parameters (preset, method, seed, then every other key given, each a list or a W&B
parameter spec), the grid of them and the ``bench run`` argument lists it expands to, each
resolved before any run starts."""

from __future__ import annotations

import itertools

from bench import config
from bench.errors import BenchError
from bench.sweep.space import Param, parse

AUTO_SEEDS_CAP = 20  # the most seeds ``--seeds auto`` asks for


def _seeds(task: str, preset: str, seeds: str | None) -> list[int]:
    if not seeds:
        return config.preset_seeds(task, preset)
    if seeds == "auto":
        return auto_seeds(task, preset)
    try:
        return [int(s) for s in seeds.split(",")]
    except ValueError:
        raise BenchError(f"--seeds takes comma-separated integers or auto, got {seeds!r}") from None


def auto_seeds(task: str, preset: str) -> list[int]:
    """The seeds a rerun needs: 0..N-1, N the most seeds an underpowered claim on the committed
    board needs (at most AUTO_SEEDS_CAP), together with the preset's own seeds."""
    from bench.leaderboard import seeds_needed

    needed = min(seeds_needed(task, preset), AUTO_SEEDS_CAP)
    return sorted(set(range(needed)) | set(config.preset_seeds(task, preset)))


def parameters(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> dict[str, Param]:
    """The sweep's parameters, ``{key: Param}`` in order: preset, method, seed, then the rest.

    Methods: ``--methods``, else a ``method=`` override, else the preset's ``sweep: {methods:}``;
    seeds: a ``seed=`` override, else ``--seeds`` (a list, or ``auto``: what the committed board's
    underpowered claims need), else the preset's ``seeds:``. An override whose value is a mapping
    is a W&B parameter spec (``optim.lr={distribution: log_uniform_values, min: 1e-4, max: 1e-2}``,
    ``optim.lr={values: [0.1, 0.01]}``); preset, method and seed take only ``value``/``values``.
    """
    fixed = config.parse_overrides(overrides)
    given = {k: parse(k, v) if isinstance(v, dict) else Param.of(k, [v]) for k, v in fixed.items()}
    preset = given.pop("preset").grid() if "preset" in given else ["cpu"]
    if len(preset) != 1:
        raise BenchError(f"a sweep runs one preset, got {preset}")
    method = given.pop("method").grid() if "method" in given else None
    out = {"preset": Param.of("preset", [str(preset[0])])}
    names = methods.split(",") if methods else method or config.preset_methods(task, str(preset[0]))
    out["method"] = Param.of("method", names)
    out["seed"] = (
        given.pop("seed") if "seed" in given else Param.of("seed", _seeds(task, str(preset[0]), seeds))
    )
    out["seed"].grid()  # a seed is a run's, not a sampled value
    return out | given


def axes(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> dict[str, list]:
    """The sweep's grid, ``{key: [values]}`` in the order of ``parameters``; a sampled
    distribution is refused in one line (a grid cannot enumerate it)."""
    return {k: p.grid() for k, p in parameters(task, overrides, methods, seeds).items()}


def expand(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> list[list[str]]:
    """The grid as ``bench run`` argument lists; every one is resolved (a bad sweep is refused
    before any run starts)."""
    grid = axes(task, overrides, methods, seeds)
    runs = []
    for combo in itertools.product(*grid.values()):
        args = [f"{k}={as_arg(v)}" for k, v in zip(grid, combo, strict=True)]
        config.resolve(task, args)
        runs.append(args)
    return runs


def as_arg(value) -> str:
    """A value as ``bench run`` reads it back (YAML): null, true/false, floats round-trip."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
