"""The task family served to the methods: training tasks with their nominal distribution p0 and
held-out tasks, each behind an environment of the batched interface in ``envs.py``.

``data.source=pointnav`` (the offline default): 2-D navigation, pure torch. ``data.source=cheetah``:
MuJoCo HalfCheetah velocity/direction tasks through gymnasium (nothing to read from disk: the
simulator is the data; MuJoCo missing is one clear error).
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch

from bench.errors import BenchError
from bench.tasks.girl import envs


def rare(p: torch.Tensor) -> torch.Tensor:
    """Indices of the rare tasks of distribution ``p``: those below its largest weight."""
    return torch.nonzero(p < p.max() * (1 - 1e-9))[:, 0]


@dataclass
class Family:
    """Environments of the training and held-out tasks and their nominal distributions (the
    held-out tasks weighted as the training tasks of their kind)."""

    train: object
    heldout: object
    p0: torch.Tensor
    heldout_p0: torch.Tensor

    @property
    def rare(self) -> torch.Tensor:
        return rare(self.p0)

    @property
    def heldout_rare(self) -> torch.Tensor:
        return rare(self.heldout_p0)


def _normalised(w: list, n: int, key: str) -> torch.Tensor:
    if len(w) != n or min(w) <= 0:
        raise BenchError(f"data.{key} must give one positive weight per velocity ({n})")
    return torch.tensor(w, dtype=torch.float64) / sum(w)


def build(d: dict, horizon: int) -> Family:
    if d["source"] == "pointnav":
        goals, p0, held, held_p0 = envs.point_goals(d)

        def nav(g):
            return envs.PointNav(g, horizon, d["max_step"], d["ctrl_cost"])

        return Family(nav(goals), nav(held), p0, held_p0)
    if d["source"] == "cheetah":
        v, hv = d["velocities"], d["heldout_velocities"]
        p0 = _normalised(d["weights"], len(v), "weights")
        held_p0 = _normalised(d["heldout_weights"], len(hv), "heldout_weights")

        def cheetah(g):
            return envs.CheetahVel(torch.tensor(g, dtype=torch.float32), horizon, d["ctrl_cost"], d["env_id"])

        return Family(cheetah(v), cheetah(hv), p0, held_p0)
    raise BenchError(f"unknown data.source {d['source']!r}: choose pointnav or cheetah")


class TaskFamilyModule(L.LightningDataModule):
    """Holds ``self.family``, the task family the method trains and tests on."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.cfg = cfg
        self.family: Family | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.family is None:
            self.family = build(self.cfg["data"], self.cfg["optim"]["horizon"])
