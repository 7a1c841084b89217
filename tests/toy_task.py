"""The toy task of tests/toy/ (a task that lives outside bench), copied where a test needs it."""

from __future__ import annotations

import shutil
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "toy"


def write_toy(folder: Path, package: str = "toy") -> Path:
    """The toy task as the package ``package`` in ``folder/package`` (its presets in configs/);
    its declarations point at ``package``'s modules. The task keeps its name, ``toy``."""
    root = folder / package
    shutil.copytree(SOURCE, root, ignore=shutil.ignore_patterns("__pycache__"))
    for path in root.glob("*.py"):
        path.write_text(path.read_text().replace('"toy.', f'"{package}.'))
    return root
