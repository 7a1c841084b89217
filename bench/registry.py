"""Tasks by name. A task is registered by having ``bench/tasks/<name>/task.py`` define ``TASK``.

Entries point at their code with lazy "module:attr" strings; nothing heavy is imported until a
run needs it.
"""

from __future__ import annotations

import importlib
from functools import cache
from pathlib import Path
from typing import Any

from bench.errors import lookup
from bench.task import Task

TASKS_DIR = Path(__file__).parent / "tasks"


@cache
def tasks() -> dict[str, Task]:
    """All registered tasks, by name."""
    found = {}
    for folder in sorted(TASKS_DIR.iterdir()):
        if (folder / "task.py").is_file():
            task = importlib.import_module(f"bench.tasks.{folder.name}.task").TASK
            assert task.name == folder.name, f"{folder}/task.py declares {task.name!r}"
            found[task.name] = task
    return found


def get_task(name: str) -> Task:
    return lookup(name, tasks(), "task")


def folder(name: str) -> Path:
    """The folder holding the task's code (its ``task.py``): what its records fingerprint."""
    get_task(name)
    return Path(importlib.import_module(f"bench.tasks.{name}.task").__file__).resolve().parent


def load(target: str) -> Any:
    """Import the object a "module:attr" string names."""
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
