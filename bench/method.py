"""The contract every method meets: a LightningModule built as ``Method(cfg, **kwargs)``.

``bench run`` fits it (when ``trains``), tests it, and records what ``test_step`` logged under
``test/...`` plus what ``cost()`` returns. Methods measure; the harness judges the claims.
"""

from __future__ import annotations

import lightning as L
from lightning.pytorch.utilities.data import extract_batch_size


class BenchMethod(L.LightningModule):
    """Base class of a task's methods. ``cfg`` is the resolved run config (a plain dict)."""

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
        return {"params": sum(p.numel() for p in self.parameters())}
