"""The two shapes a method takes. Every method is built as ``Class(cfg, **kwargs)`` from its
``Method`` declaration (``cfg``: the resolved run config, a plain dict; ``kwargs``: the Method's
own arguments plus the preset's ``methods.<name>`` section) and recorded the same way: what it
measured on the test protocol under ``test/...``, plus ``cost()``. Methods measure; the harness
judges the claims.

- ``TrainedMethod``: a model with optimizers Lightning can own. ``bench run`` fits it (when
  ``trains``) and tests it with a Lightning Trainer: DDP, precision, checkpoints and resume come
  from Lightning.
- ``LoopMethod``: an algorithm the harness steps (a federated simulation, an RL loop, a search
  over networks): ``step()`` until it says it is done, then ``results()``. Its state is
  checkpointed between steps so a long run resumes.

Pick ``TrainedMethod`` when the method is "a model, a loss and an optimizer"; pick ``LoopMethod``
when its inner loop is the algorithm itself, not a dataloader's batches.
"""

from __future__ import annotations

import abc
import math
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.utilities.data import extract_batch_size


def count_params(modules) -> int:
    """Parameters of a module or of an iterable of modules/tensors."""
    if isinstance(modules, torch.nn.Module):
        return sum(p.numel() for p in modules.parameters())
    return sum(count_params(m) if isinstance(m, torch.nn.Module) else m.numel() for m in modules)


class TrainedMethod(L.LightningModule):
    """A LightningModule fitted and tested by a Lightning Trainer.

    Contract: ``training_step`` returns the loss (the run stops as ``diverged`` when it is not
    finite), ``configure_optimizers`` returns real optimizers, ``test_step`` logs ``test/<name>``
    metrics (torchmetrics, synced across ranks). ``trains = False`` for a method that only tests
    (a rule, a reference): the harness then skips ``fit``.
    """

    trains: bool = True

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg

    def samples_in(self, batch) -> int:
        """How many samples a test batch holds, for throughput (Lightning's own extraction;
        a method whose batch is not a tensor collection overrides it)."""
        return extract_batch_size(batch)

    def cost(self) -> dict:
        """Cost figures beyond time and memory (FLOPs, ...). Params are counted by default."""
        return {"params": count_params(self)}


class LoopMethod(abc.ABC):
    """An algorithm the harness steps, in one process, on ``self.device``.

    Contract, in the order the harness calls it:

    1. ``setup(datamodule)``: once, after the datamodule's ``prepare_data()`` and
       ``setup("fit")``; build what the steps need (create tensors on ``self.device``). The
       harness sets ``self.device`` and ``self.out_dir`` (the run folder, for figures) before.
    2. ``step() -> bool``: one unit of work (a server update, a training episode, a generation);
       True when the algorithm is done. ``self.loss``, when set to a number, is watched: a
       non-finite value stops the run as ``diverged``.
    3. ``results() -> {name: float}``: the test protocol's figures, recorded as ``test/<name>``.
    4. ``cost() -> dict``: figures beyond time and memory (params by default 0: a rule).

    ``state_dict()`` / ``load_state_dict()`` are the checkpointed state: the harness saves it
    (``save``) every ``CHECKPOINT_S`` seconds of stepping, and ``resume=true`` continues from it
    (``restore``). By default
    the whole instance (less ``cfg``, ``device`` and ``out_dir``) is the state; a method holding
    what cannot be pickled (a simulator handle) overrides both.
    """

    loss: float | None = None

    def __init__(self, cfg: dict) -> None:
        self.cfg = cfg
        self.device = torch.device("cpu")
        self.out_dir = Path(".")

    def setup(self, datamodule) -> None:  # noqa: B027 (optional hook)
        """Build what the steps need from the (set-up) datamodule."""

    @abc.abstractmethod
    def step(self) -> bool:
        """One unit of work; True when the algorithm is done."""

    @abc.abstractmethod
    def results(self) -> dict[str, float]:
        """The test protocol's figures, ``{name: value}`` (recorded as ``test/<name>``)."""

    def cost(self) -> dict:
        return {"params": 0}

    def state_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in ("cfg", "device", "out_dir")}

    def load_state_dict(self, state: dict) -> None:
        vars(self).update(state)

    def save(self, path: Path) -> None:
        """Write ``state_dict()`` to ``path`` atomically (a kill mid-write keeps the last one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.state_dict(), path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path)

    def restore(self, path: Path) -> None:
        """Continue from a ``save``: tensors come back to the devices they were saved from (a CPU
        generator stays on the CPU)."""
        self.load_state_dict(torch.load(path, weights_only=False))

    def diverged(self) -> float | None:
        """The non-finite loss that stops the run, or None."""
        loss = self.loss
        return float(loss) if loss is not None and not math.isfinite(float(loss)) else None
