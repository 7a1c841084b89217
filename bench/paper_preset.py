"""A task's ``paper`` preset on its real-format fixture, shrunk by size overrides only: the path a
GPU user runs, run on CPU by tests/test_paper_presets.py and on CUDA by ``make gpu-check``.

Size overrides: every integer (or list of integers) of the paper preset that the smoke preset
sets differently takes the smoke value (steps, epochs, widths, depths, counts, batch sizes,
workers, image sizes), as do shorter grids of numbers and the budgets in ``BUDGETS``, plus the
counts the fixture has (classes, clients, datasets: the task's ``fixture`` returns them).
Everything else (data source and format, losses, schedules, precision, methods) is the paper
preset's.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench.config import _leaves, read_preset
from bench.registry import get_task, load

# keys that stay the paper's even though they are integers: what a run is, not how big
KEEP = {"seed", "data.subset_seed", "data.seed", "data.scene_seed", "base.seed", "pretrain.seed"}
KEEP |= {"data.channels", "data.num_classes", "data.frame_skip"}  # the data's format, physics' step
# sizes that are not integers: a simulated time budget
BUDGETS = {"sim.horizon"}


def _yaml(value) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


def _intlike(v) -> bool:
    if isinstance(v, list):
        return bool(v) and all(_intlike(x) for x in v)
    return isinstance(v, int) and not isinstance(v, bool)


def _numbers(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, (int, float)) for x in v)


def shrunk(task: str) -> list[str]:
    """The paper preset's integers at the smoke preset's values."""
    smoke = dict(_leaves(read_preset(task, "smoke")))
    out = []
    for key, value in _leaves(read_preset(task, "paper")):
        if key.startswith(("claims.", "seeds", "sweep.")) or key in KEEP or key not in smoke:
            continue
        small = smoke[key]
        grid = _numbers(value) and _numbers(small) and len(small) < len(value)
        if (key in BUDGETS or grid or (_intlike(value) and _intlike(small))) and small != value:
            out.append(f"{key}={_yaml(small)}")
    return out


def fixture_args(task: str, root: Path) -> list[str]:
    """Writes the task's fixture under ``root``; returns the overrides that point a run at it
    (none for a task whose paper preset reads no data)."""
    target = get_task(task).fixture
    return load(target)(root) if target else []


def paper_args(task: str, root: Path) -> list[str]:
    """``bench run TASK`` arguments for the paper preset on the fixture written under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return ["preset=paper", "logger=none", *shrunk(task), *fixture_args(task, root)]
