"""The contract every method meets: a LightningModule built as ``Method(cfg, **kwargs)``.

``bench run`` fits it (when ``trains``), tests it, and records what ``test_step`` logged under
``test/...`` plus what ``claims()`` and ``cost()`` return.
"""

from __future__ import annotations

import lightning as L


class BenchMethod(L.LightningModule):
    """Base class of a task's methods. ``cfg`` is the resolved run config (a plain dict)."""

    trains: bool = True

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg

    def claims(self) -> dict[str, dict]:
        """Verdicts of the run claims this run can judge: ``{id: {holds, value, bound}}``."""
        return {}

    def cost(self) -> dict:
        """Cost figures beyond time and memory (FLOPs, ...). Params are counted by default."""
        return {"params": sum(p.numel() for p in self.parameters())}
