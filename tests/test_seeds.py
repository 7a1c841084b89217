"""Seeds vary every source of variation, and methods compared on one seed share them (Bouthillier
et al., "Accounting for variance in machine learning benchmarks", MLSys 2021).

Per registered task, at its smoke preset, for the first two methods that train (a reference that
only tests draws nothing): two seeds of the first give different digests of every source the Task's
``seed_varies`` names and equal ones of every source its ``seed_fixed`` names; both methods on one
seed get the same data, and the same order where both draw one. The digests come from the task's
``seeds.py`` (bench/seeds.py)."""

from __future__ import annotations

import importlib

import pytest

from bench.config import config_hash, presets, resolve_run
from bench.registry import load, package, tasks

TASKS = sorted(tasks())


def _trained(task) -> list[str]:
    """The task's methods that train, in declaration order."""
    return [m.name for m in task.methods if getattr(load(m.target), "trains", True)]


def _draws(name: str, method: str, seed: int) -> dict[str, str]:
    _, cfg = resolve_run(name, [f"method={method}", "preset=smoke", f"seed={seed}"])
    return importlib.import_module(f"{package(name)}.seeds").draws(cfg, method)


@pytest.mark.parametrize("name", TASKS)
def test_seeds_vary_every_source_and_pairs_share_them(name: str) -> None:
    task = tasks()[name]
    a, b = _trained(task)[:2]
    a0, a1, b0 = _draws(name, a, 0), _draws(name, a, 1), _draws(name, b, 0)
    for source in task.seed_varies:
        assert a0[source] != a1[source], f"{name}: seeds 0 and 1 of {a} draw the same {source}"
    for source in task.seed_fixed:
        if source in a0:
            assert a0[source] == a1[source], f"{name}: {source} is declared fixed but varies with the seed"
    assert a0["data"] == b0["data"], f"{name}: {a} and {b} see different data on seed 0"
    if "order" in a0 and "order" in b0:
        assert a0["order"] == b0["order"], f"{name}: {a} and {b} draw different orders on seed 0"


@pytest.mark.parametrize("name", TASKS)
def test_the_seeds_of_one_config_share_its_hash(name: str) -> None:
    """A seed varies a run through the seed itself, never through a config value it interpolates
    (``${seed}``): otherwise every seed of the standard config would be a config of its own, and
    a board could not pair or average them."""
    for preset in presets(name):
        for method in (m.name for m in tasks()[name].methods):
            hashes = {
                config_hash(resolve_run(name, [f"method={method}", f"preset={preset}", f"seed={s}"])[1])
                for s in (0, 1)
            }
            assert len(hashes) == 1, f"{name}/{preset}/{method}: seeds 0 and 1 give different config hashes"
