"""Callbacks every run gets."""

from __future__ import annotations

import math
import statistics
import time

import torch
from lightning.pytorch.callbacks import Callback


class Watch(Callback):
    """Stops training on a non-finite loss (the run is then `diverged`); times training steps
    (start to start, so data loading counts) and test batches.

    The loss is checked on its device each step and read on the host only every
    ``trainer.log_every_n_steps`` steps and at the end of each epoch: reading it every step would
    stall a GPU's queue once per step."""

    def __init__(self) -> None:
        self.diverged: float | None = None
        self._bad = None  # the first non-finite loss seen since the last read, else 0, on the loss's device
        self.test_s, self.test_samples, self._t = 0.0, 0, 0.0
        self.step_starts: list[float] = []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.step_starts.append(time.perf_counter())

    @property
    def step_s(self) -> float | None:
        """Median seconds per training step."""
        gaps = [b - a for a, b in zip(self.step_starts, self.step_starts[1:], strict=False)]
        return statistics.median(gaps) if gaps else None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = torch.as_tensor(loss).detach().float()
        if self._bad is None:
            self._bad = torch.zeros((), device=loss.device)
        fresh = (self._bad == 0) & ~torch.isfinite(loss)
        self._bad = torch.where(fresh, loss, self._bad)
        if (trainer.global_step + 1) % max(1, trainer.log_every_n_steps) == 0:
            self._read(trainer)

    def on_train_epoch_end(self, trainer, module):
        self._read(trainer)

    def on_train_end(self, trainer, module):
        self._read(trainer)

    def _read(self, trainer) -> None:
        if self._bad is not None and self.diverged is None:
            value = float(self._bad)  # the one host sync
            if not math.isfinite(value):
                self.diverged = value
                trainer.should_stop = True

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self._t = time.perf_counter()

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self.test_s += time.perf_counter() - self._t
        self.test_samples += module.samples_in(batch)
