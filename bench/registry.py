"""Tasks by name, wherever they live, and the methods others add to them.

A task is a folder holding ``task.py``, which defines ``TASK``, and is found in one of three places:

- bench's own: ``bench/tasks/<name>/``, with its presets in the top-level ``configs/<name>/``
  (shipped inside the package as ``bench/configs``);
- an entry point of the group ``bench.tasks`` in an installed distribution, named after the task,
  whose value is the module holding ``TASK`` (``toy = "toy_bench.task"``);
- a folder listed in ``BENCH_TASK_PATH`` (os.pathsep-separated): each of its subfolders holding a
  ``task.py`` is a task, imported as the package of the subfolder's name (the listed folder goes on
  ``sys.path``), so its declarations point at ``"<name>.method:Class"``.

A task from outside keeps its presets in a ``configs/`` folder beside its task.py (same format,
``inherit:`` works, every chain starts from bench's base.yaml); its records fingerprint its own
folder. A method for an existing task can come from outside too: an entry point of the group
``bench.methods`` named ``<task>.<method>`` whose value is ``"pkg.mod:Class"`` (a class following
bench/method.py). Two tasks of one name, or a second method of one name, are an error.

Entries point at their code with lazy "module:attr" strings; nothing heavy is imported until a
run needs it.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import re
import sys
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from bench.errors import BenchError, lookup
from bench.task import Method, Task

TASKS_DIR = Path(__file__).parent / "tasks"
CONFIGS_DIR = Path(__file__).parent / "configs"
TASK_PATH = "BENCH_TASK_PATH"
TASK_GROUP = "bench.tasks"
METHOD_GROUP = "bench.methods"
# What a task or method name may hold: it names folders of runs and records.
NAME = re.compile(r"^[a-z0-9_]+$")


@dataclasses.dataclass(frozen=True)
class Found:
    """A registered task, the folder of its task.py, the folder of its presets, where it came from,
    and the package its task.py lies in (its other modules, perf.py and fixture.py, are found there)."""

    task: Task
    folder: Path
    configs: Path
    origin: str
    package: str


@cache
def found() -> dict[str, Found]:
    """Every registered task by name: bench's own, then entry points, then ``BENCH_TASK_PATH``."""
    out: dict[str, Found] = {}
    for folder in sorted(TASKS_DIR.iterdir()):
        if (folder / "task.py").is_file():
            _add(out, f"bench.tasks.{folder.name}.task", folder.name, "bench", CONFIGS_DIR / folder.name)
    for ep in sorted(entry_points(group=TASK_GROUP), key=lambda ep: ep.name):
        _add(out, ep.value, ep.name, f"entry point {ep.name} = {ep.value!r} ({TASK_GROUP})")
    for root in task_path():
        for folder in sorted(root.iterdir()):
            if (folder / "task.py").is_file():
                origin = f"{folder} ({TASK_PATH})"
                _add(out, f"{_package(root, folder, origin)}.task", folder.name, origin)
    for ep in sorted(entry_points(group=METHOD_GROUP), key=lambda ep: ep.name):
        _add_method(out, ep.name, ep.value)
    return out


def tasks() -> dict[str, Task]:
    """All registered tasks, by name."""
    return {name: entry.task for name, entry in found().items()}


def get_task(name: str) -> Task:
    return lookup(name, tasks(), "task")


def folder(name: str) -> Path:
    """The folder holding the task's code (its ``task.py``): what its records fingerprint."""
    return lookup(name, found(), "task").folder


def configs(name: str) -> Path:
    """The folder holding the task's presets (``<preset>.yaml``)."""
    return lookup(name, found(), "task").configs


def package(name: str) -> str:
    """The package holding the task's modules (``bench.tasks.emo``; an outside task's own)."""
    return lookup(name, found(), "task").package


def task_path() -> list[Path]:
    """The folders ``BENCH_TASK_PATH`` lists, each checked to exist."""
    roots = [Path(p).resolve() for p in os.environ.get(TASK_PATH, "").split(os.pathsep) if p.strip()]
    for root in roots:
        if not root.is_dir():
            raise BenchError(f"{TASK_PATH} lists {root}, which is not a folder")
    return roots


def load(target: str) -> Any:
    """Import the object a "module:attr" string names."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _package(root: Path, folder: Path, origin: str) -> str:
    """The package a ``BENCH_TASK_PATH`` task folder imports as: its own name, with the listed
    folder on ``sys.path``; a module of that name found elsewhere first is an error."""
    if str(root) not in sys.path:
        sys.path.append(str(root))
    spec = importlib.util.find_spec(folder.name)
    places = [Path(p).resolve() for p in (spec.submodule_search_locations or [])] if spec else []
    if folder.resolve() not in places:
        taken = spec.origin if spec and spec.origin else places
        raise BenchError(f"{origin}: the name {folder.name!r} is taken by {taken}: rename the folder")
    return folder.name


def _add(
    out: dict[str, Found], module_name: str, name: str, origin: str, presets: Path | None = None
) -> None:
    """Register the ``TASK`` of ``module_name``, which must be named ``name``."""
    module = importlib.import_module(module_name)
    task = getattr(module, "TASK", None)
    where = Path(module.__file__ or "").resolve().parent
    if not isinstance(task, Task):
        raise BenchError(f"{origin}: {where / 'task.py'} defines no TASK (a bench.task.Task)")
    if task.name != name or not NAME.match(name):
        raise BenchError(f"{origin}: task {task.name!r} must be named {name!r}, in a-z, 0-9 and _")
    if name in out:
        raise BenchError(f"{origin}: task {name!r} is already registered from {out[name].origin}")
    out[name] = Found(task, where, presets or where / "configs", origin, module_name.rpartition(".")[0])


def _add_method(out: dict[str, Found], entry: str, target: str) -> None:
    """Add the method an entry point ``<task>.<method> = "pkg.mod:Class"`` declares to its task."""
    origin = f"entry point {entry} = {target!r} ({METHOD_GROUP})"
    task_name, _, name = entry.partition(".")
    if not NAME.match(name) or ":" not in target:
        raise BenchError(f'{origin}: write <task>.<method> = "pkg.module:Class", names in a-z, 0-9 and _')
    if task_name not in out:
        raise BenchError(f"{origin}: no task {task_name!r} is registered")
    found_task = out[task_name]
    task = found_task.task
    if name in {m.name for m in task.methods}:
        raise BenchError(f"{origin}: task {task_name!r} already has a method {name!r}")
    method = Method(name=name, target=target, description=f"from {target}")
    out[task_name] = dataclasses.replace(
        found_task, task=dataclasses.replace(task, methods=(*task.methods, method))
    )
