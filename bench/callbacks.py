"""Callbacks every run gets."""

from __future__ import annotations

import math
import statistics
import time

from lightning.pytorch.callbacks import Callback


class Watch(Callback):
    """Stops training on a non-finite loss (the run is then `diverged`); times training steps
    (start to start, so data loading counts) and test batches."""

    def __init__(self) -> None:
        self.diverged: float | None = None
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
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = float(loss)
            trainer.should_stop = True

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self._t = time.perf_counter()

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self.test_s += time.perf_counter() - self._t
        self.test_samples += module.samples_in(batch)
