"""Callbacks every run gets."""

from __future__ import annotations

import math
import time

from lightning.pytorch.callbacks import Callback


class Watch(Callback):
    """Stops training on a non-finite loss (the run is then `diverged`); times test batches."""

    def __init__(self) -> None:
        self.diverged: float | None = None
        self.test_s, self.test_samples, self._t = 0.0, 0, 0.0

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = float(loss)
            trainer.should_stop = True

    def on_test_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self._t = time.perf_counter()

    def on_test_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self.test_s += time.perf_counter() - self._t
        first = batch[0] if isinstance(batch, (list, tuple)) else batch
        self.test_samples += len(first)
