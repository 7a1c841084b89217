"""System datasets: real data the OS package manager installs, read offline by the cpu and smoke
presets. A task names those it reads in ``Task.datasets``.

``python -m bench.datasets.system [TASK]`` prints the Debian packages of TASK's system datasets
(every task's without TASK) that are not installed yet, one per line: ``make bench`` and
``make install`` install what it prints.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from bench.datasets import fashion_mnist


@dataclass(frozen=True)
class SystemDataset:
    """A dataset a Debian package installs, and a file that exists once it is installed."""

    debian: str
    probe: Path


DATASETS = {
    "fashion-mnist": SystemDataset(
        "dataset-fashion-mnist", fashion_mnist.ROOT / "train-images-idx3-ubyte.gz"
    ),
}


def missing(names: list[str]) -> list[str]:
    """The Debian packages of these datasets that are not installed, in order, once each."""
    return list(dict.fromkeys(DATASETS[n].debian for n in names if not DATASETS[n].probe.exists()))


def main(argv: list[str]) -> int:
    from bench.errors import BenchError
    from bench.registry import get_task, tasks

    try:
        chosen = [get_task(argv[0])] if argv else list(tasks().values())
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    for package in missing([name for task in chosen for name in task.datasets]):
        print(package)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
