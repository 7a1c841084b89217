"""Every task's ``paper`` preset end to end on CPU, on its real-format fixture, with size overrides
only: the path a GPU user runs, exercised here (and by ``make gpu-check`` on CUDA).

Size overrides: every integer (or list of integers) of the paper preset that the smoke preset
sets differently takes the smoke value (steps, epochs, widths, depths, counts, batch sizes,
workers, image sizes), as do shorter grids of numbers and the budgets in ``BUDGETS``, plus the
counts the fixture has (classes, clients, datasets). Everything
else (data source and format, losses, schedules, precision, methods) is the paper preset's.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from bench.config import _leaves, read_preset
from bench.registry import tasks
from tests.formats import write_cifar10

# keys that stay the paper's even though they are integers: what a run is, not how big
KEEP = {"seed", "data.subset_seed", "data.seed", "data.scene_seed", "base.seed", "pretrain.seed"}
KEEP |= {"data.channels", "data.num_classes", "data.frame_skip"}  # the data's format, physics' step
# sizes that are not integers: a simulated time budget; and grids (a shorter list of numbers)
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
        if key.startswith(("claims.", "seeds")) or key in KEEP or key not in smoke:
            continue
        small = smoke[key]
        grid = _numbers(value) and _numbers(small) and len(small) < len(value)
        if (key in BUDGETS or grid or (_intlike(value) and _intlike(small))) and small != value:
            out.append(f"{key}={_yaml(small)}")
    return out


def _asyncfl(root: Path) -> list[str]:
    from tests.tasks.test_asyncfl import write_leaf

    write_leaf(root / "femnist", users=6)
    fixture = [f"data.root={root / 'femnist'}", "data.num_clients=6", "data.val_size=5"]
    return [*fixture, "sim.concurrency=[2,4]"]  # at most the fixture's 6 clients


def _cmt(root: Path) -> list[str]:
    from tests.tasks.test_cmt import write_nuscenes

    write_nuscenes(root)
    shutil.move(root / "v1.0-mini", root / "v1.0-trainval")  # the paper's version, as the fixture
    return [f"data.root={root}", "data.cameras=[CAM_FRONT]", "data.batch_size=1", "data.sweeps=1"]


def _doorping(root: Path) -> list[str]:
    write_cifar10(root, per_batch=30)
    return [f"data.root={root}", "data.train_per_class=12", "data.image_size=32", "data.test_size=30"] + [
        "distill.batch_real=4"
    ]


def _drumlm(root: Path) -> list[str]:
    from tests.tasks.test_drumlm import gmd

    gmd(root)
    return [f"data.root={root}", "data.bars=3"]


def _emo(root: Path) -> list[str]:
    from tests.tasks.test_emo import imagefolder

    imagefolder(root, classes=2)
    return [f"data.root={root}", "data.num_classes=2", "data.batch_size=2"]


def _nngraph(root: Path) -> list[str]:
    write_cifar10(root)
    return [f"data.root={root}", "data.val_size=12", "data.test_size=12", "data.train_size=0"]


def _reft(root: Path) -> list[str]:
    from tests.tasks import test_reft

    writer = getattr(test_reft.coco_root, "__wrapped__", test_reft.coco_root)
    writer(root)
    # the shrunk shots are smoke's [10]: the figure shows a phase that runs
    return [f"data.root={root}", "data.novel=[cat,dining table]", "figure.phase=gfsis_k10"]


def _reliant(root: Path) -> list[str]:
    from tests.tasks.test_reliant import nifty

    nifty(root)
    return [f"data.root={root}", "data.datasets=[bail]"]


def _none(root: Path) -> list[str]:
    return []  # simulated: getup's MuJoCo humanoid, girl's HalfCheetah


FIXTURES: dict[str, Callable[[Path], list[str]]] = {
    "asyncfl": _asyncfl,
    "cmt": _cmt,
    "doorping": _doorping,
    "drumlm": _drumlm,
    "emo": _emo,
    "getup": _none,
    "girl": _none,
    "nngraph": _nngraph,
    "reft": _reft,
    "reliant": _reliant,
}


def paper_args(task: str, root: Path) -> list[str]:
    """``bench run TASK`` arguments for the paper preset on the fixture written under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    return ["preset=paper", "logger=none", *shrunk(task), *FIXTURES[task](root)]


def test_every_task_has_a_fixture() -> None:
    assert set(FIXTURES) == set(tasks())


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(FIXTURES))
def test_paper_preset_runs_end_to_end(task: str, bench_run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    args = paper_args(task, tmp_path / "data")
    method = tasks()[task].methods[0].name
    code, record = bench_run(task, f"method={method}", *args)
    assert code == 0 and record["status"] == "ok", record and record["error"]
    assert record["preset"] == "paper"
    assert record["metrics"] and all(v is not None and math.isfinite(v) for v in record["metrics"].values())
