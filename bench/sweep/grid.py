"""A sweep's grid: the axes (preset, method, seed, then every other key given) and the ``bench run``
argument lists they expand to, each resolved before any run starts."""

from __future__ import annotations

import itertools

from bench import config
from bench.errors import BenchError

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


def axes(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> dict[str, list]:
    """The sweep's axes, ``{key: [values]}`` in order: preset, method, seed, then the rest.

    Methods: ``--methods``, else a ``method=`` override, else the preset's ``sweep: {methods:}``;
    seeds: a ``seed=`` override, else ``--seeds`` (a list, or ``auto``: what the committed board's
    underpowered claims need), else the preset's ``seeds:``.
    """
    fixed = config.parse_overrides(overrides)
    preset = str(fixed.pop("preset", "cpu"))
    method = [fixed.pop("method")] if "method" in fixed else None
    out: dict[str, list] = {"preset": [preset]}
    out["method"] = methods.split(",") if methods else method or config.preset_methods(task, preset)
    out["seed"] = _seeds(task, preset, seeds)
    for key, value in fixed.items():  # a seed= override replaces the seeds in place
        out[key] = [value]
    return out


def expand(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> list[list[str]]:
    """The grid as ``bench run`` argument lists; every one is resolved (a bad sweep is refused
    before any run starts)."""
    grid = axes(task, overrides, methods, seeds)
    runs = []
    for combo in itertools.product(*grid.values()):
        args = [f"{k}={_arg(v)}" for k, v in zip(grid, combo, strict=True)]
        config.resolve(task, args)
        runs.append(args)
    return runs


def _arg(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
