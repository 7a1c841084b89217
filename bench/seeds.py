"""What a run's seed draws, as digests: the helpers of every task's ``seeds.py``.

A task's ``seeds.py`` defines ``draws(cfg, method) -> {source: sha256 hex}``: for the resolved run
config, it builds what ``bench run`` would build (``build``: seeded and in the run's order; then
the datamodule's and a loop method's setup, as the run does them), trains nothing, and digests
each source of variation it draws ("data", "init", "order"; bench/task.py ``SEED_SOURCES``).
tests/test_seeds.py checks them against the Task's ``seed_varies`` and ``seed_fixed``.
"""

from __future__ import annotations

import hashlib
from itertools import islice

import numpy as np
import torch

from bench.registry import get_task
from bench.run import build as run_build

# Training batches a draw of the order digests: enough to tell two orders apart.
ORDER_BATCHES = 2


def build(cfg: dict) -> tuple:
    """The run's (datamodule, method), seeded and built as ``bench run`` builds them."""
    return run_build(get_task(cfg["task"]), cfg)


def set_up(datamodule, module) -> None:
    """What the run does next before its first step: the datamodule's ``prepare_data`` and
    ``setup("fit")``, and a loop method's ``setup`` (bench/run.py ``_step_loop``; a trained
    method's loaders are then built by Lightning's fit, which calls the same two)."""
    from bench.method import LoopMethod

    datamodule.prepare_data()
    datamodule.setup("fit")
    if isinstance(module, LoopMethod):
        module.setup(datamodule)


def batches(loader, n: int = ORDER_BATCHES) -> list:
    """The first ``n`` batches a loader yields: the order a run trains in."""
    return list(islice(iter(loader), n))


def digest(*parts) -> str:
    """sha256 of tensors, arrays, numbers, strings, and lists, tuples and dicts of them (by value:
    dtype, shape and bytes, so two equal draws give one digest whatever their device)."""
    h = hashlib.sha256()
    _feed(h, parts)
    return h.hexdigest()


def _feed(h, part) -> None:
    if isinstance(part, torch.Tensor):
        part = part.detach().cpu()
        part = (part.float() if part.dtype == torch.bfloat16 else part).contiguous().numpy()
    if isinstance(part, np.ndarray):
        part = np.ascontiguousarray(part)
        h.update(f"array{part.dtype}{part.shape}".encode() + part.tobytes())
    elif isinstance(part, dict):
        h.update(b"dict")
        for key in sorted(part, key=str):
            _feed(h, str(key))
            _feed(h, part[key])
    elif isinstance(part, (list, tuple)):
        h.update(f"seq{len(part)}".encode())
        for p in part:
            _feed(h, p)
    elif isinstance(part, (str, int, float, bool, np.generic)) or part is None:
        h.update(f"{type(part).__name__}:{part!r}".encode())
    else:
        raise TypeError(f"cannot digest a {type(part).__name__}: pass its tensors or ids")
