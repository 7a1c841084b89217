"""Stage 2: the strength curriculum of the official code (``Trainer.update_power``). Every
``interval`` steps the policy runs the fixed gate states at the current base strength; if the gate
return (their mean or minimum, ``curriculum.gate``) exceeds the threshold, base <- max(floor,
decay * base), and the curriculum ends at the floor. Below full strength, if no decrease came for
longer than ``min(stall_max, max(stall_min, stall_factor * last gap))`` steps, the last decrease
is undone and the curriculum freezes there (the character is too weak for the policy to follow).
At full strength there is nothing to undo and the official code never freezes: it keeps testing."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Curriculum:
    strength: float
    floor: float
    threshold: float
    decay: float
    stall_min: int
    stall_max: int
    stall_factor: float
    start: int = 0  # step of the last decrease (or of the curriculum's start)
    last_gap: float = float("inf")
    active: bool = True
    stalled: bool = False
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, gate return, strength)

    def update(self, gate_return: float, t: int) -> bool:
        """One test result at step ``t``; returns whether the curriculum goes on."""
        self.history.append((t, float(gate_return), self.strength))
        if not self.active:
            return False
        if gate_return > self.threshold:
            self.strength = max(self.floor, self.decay * self.strength)
            self.last_gap, self.start = t - self.start, t
            self.active = self.strength > self.floor
        elif self.strength < 1.0 and t - self.start > min(
            self.stall_max, max(self.stall_min, self.stall_factor * self.last_gap)
        ):
            self.strength = min(1.0, self.strength / self.decay)
            self.active, self.stalled = False, True
        return self.active

    def sample(self, rng: np.random.Generator, std: float) -> float:
        """A training episode's strength: clip(N(base, std), floor, 1)."""
        return float(np.clip(self.strength + std * rng.normal(), min(self.floor, self.strength), 1.0))
