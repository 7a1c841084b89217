"""Stage 2: the strength curriculum of the official code. Every ``interval`` steps the policy runs
the fixed test states at the current base strength; if the MINIMUM test return clears the
threshold, base <- max(floor, decay * base). If no decrease came for longer than
``min(stall_max, max(stall_min, stall_factor * last gap))`` steps, the last decrease is undone and
the curriculum freezes there (the character is too weak for the policy to follow)."""

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
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (step, min return, strength)

    def update(self, min_return: float, t: int) -> bool:
        """One test result at step ``t``; returns whether the curriculum goes on."""
        self.history.append((t, float(min_return), self.strength))
        if not self.active:
            return False
        if min_return > self.threshold:
            self.strength = max(self.floor, self.decay * self.strength)
            self.last_gap, self.start = t - self.start, t
            self.active = self.strength > self.floor
        elif t - self.start > min(self.stall_max, max(self.stall_min, self.stall_factor * self.last_gap)):
            if self.strength < 1.0:
                self.strength = min(1.0, self.strength / self.decay)
            self.active, self.stalled = False, True
        return self.active

    def sample(self, rng: np.random.Generator, std: float) -> float:
        """A training episode's strength: clip(N(base, std), floor, 1)."""
        return float(np.clip(self.strength + std * rng.normal(), min(self.floor, self.strength), 1.0))
