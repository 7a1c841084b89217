"""The virtual clock: per-device mean durations, idle/busy flags, and a min-heap of completion events.

A device has a fixed mean duration (its speed); every participation draws its own duration around
that mean, as FLSim's simulator draws one per participation. Clients are integers; the per-client
state is three flat arrays (mean duration, busy, dispatch count), so a million clients cost a few
tens of MB. Training is not done here: the algorithms ask for the deltas of the clients they
launched (see ``algorithms.py``).
"""

from __future__ import annotations

import heapq
import math

import numpy as np

# A half-normal draw scaled to mean 1: FLSim's FedBuff example draws every participation's duration
# from a half-normal (examples/configs/sent140_fedbuff_config.json: PerUserHalfNormalDurationDistribution).
HALF_NORMAL_MEAN = math.sqrt(2.0 / math.pi)


def device_durations(sizes: np.ndarray, epochs: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Mean time of one local run per device: a fixed per-device speed (log-normal seconds per
    example, median 1) times its example count and epochs."""
    return rng.lognormal(0.0, sigma, len(sizes)) * np.maximum(sizes, 1) * epochs


def participation(means: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One participation's duration per device: its mean times a half-normal factor of mean 1
    (coefficient of variation 0.76), so equal mean speeds (sigma 0) still spread the reports."""
    return means * (np.abs(rng.standard_normal(len(means))) / HALF_NORMAL_MEAN)


class Fleet:
    """All devices: how long each takes on average, which are training, how often each was launched."""

    def __init__(self, durations: np.ndarray, rng: np.random.Generator) -> None:
        self.durations = durations
        self.busy = np.zeros(len(durations), dtype=bool)
        self.serial = np.zeros(len(durations), dtype=np.int64)
        self.rng = rng

    def __len__(self) -> int:
        return len(self.durations)

    def pick_idle(self, k: int) -> np.ndarray:
        """``k`` distinct idle devices, uniformly (rejection sampling: cheap while most are idle)."""
        if k == 1:  # the async hot path: same draws as below, without the set
            while True:
                for c in self.rng.integers(0, len(self), 6).tolist():
                    if not self.busy[c]:
                        return np.array([c], dtype=np.int64)
        chosen: list[int] = []
        seen = set()
        while len(chosen) < k:
            for c in self.rng.integers(0, len(self), 2 * (k - len(chosen)) + 4).tolist():
                if not self.busy[c] and c not in seen:
                    seen.add(c)
                    chosen.append(c)
                    if len(chosen) == k:
                        break
        return np.asarray(chosen, dtype=np.int64)

    def draw(self, clients: np.ndarray) -> np.ndarray:
        """This participation's duration of each of ``clients``."""
        return participation(self.durations[clients], self.rng)


class EventClock:
    """Virtual time and the heap of (finish time, seq, client, model version at launch, serial)."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.now = 0.0
        self.heap: list[tuple[float, int, int, int, int]] = []
        self.seq = 0

    def launch(self, clients: np.ndarray, version: int) -> np.ndarray:
        """Start ``clients`` now on model ``version``; returns their launch serials."""
        f = self.fleet
        if len(clients) == 1:  # the async hot path, in scalars
            c = int(clients[0])
            s = int(f.serial[c])
            f.serial[c] = s + 1
            f.busy[c] = True
            d = float(f.durations[c]) * abs(float(f.rng.standard_normal())) / HALF_NORMAL_MEAN
            heapq.heappush(self.heap, (self.now + d, self.seq, c, version, s))
            self.seq += 1
            return np.array([s], dtype=np.int64)
        serials = f.serial[clients].copy()
        f.serial[clients] += 1
        f.busy[clients] = True
        for c, s, d in zip(clients.tolist(), serials.tolist(), f.draw(clients).tolist(), strict=True):
            heapq.heappush(self.heap, (self.now + d, self.seq, c, version, s))
            self.seq += 1
        return serials

    def pop(self) -> tuple[int, int, int]:
        """Advance to the next completion; returns (client, version at launch, serial)."""
        t, _, c, v, s = heapq.heappop(self.heap)
        self.now = t
        self.fleet.busy[c] = False
        return c, v, s


def sync_round(cohort: np.ndarray, d: np.ndarray, goal: int) -> tuple[np.ndarray, float]:
    """A synchronous round with over-selection: ``cohort`` starts together and takes durations
    ``d`` (drawn for this round), the round ends at the ``goal``-th report; returns (the first
    ``goal`` reporters, round duration). The rest are cut."""
    first = np.argsort(d, kind="stable")[:goal]
    return cohort[np.sort(first)], float(d[first].max())
