"""asyncfl's figure: simulator bookkeeping throughput (client updates per second, training stubbed
by a fixed delta) and peak memory at 10^6 clients, FedBuff with C = 1000, K = 10.

Ours (clients as indices, a min-heap of completions) against a naive per-client-object simulator
(a Python object per device holding its example list, the next completion found by scanning the
clients in flight), as FLSim could not be installed here. Goal: >= 10x, < 2 GB.
"""

from __future__ import annotations

import random
import time
import tracemalloc

import numpy as np

from bench.tasks.asyncfl.simulator import EventClock, Fleet, device_durations

CLIENTS, EXAMPLES, CONCURRENCY, BUFFER = 1_000_000, 30, 1000, 10
DELTA = np.full(10, 1e-3)  # the stubbed client update


def ours(events: int, clients: int) -> float:
    """Client updates per second of FedBuff's bookkeeping on our simulator."""
    rng = np.random.default_rng(0)
    fleet = Fleet(device_durations(np.full(clients, EXAMPLES), 1, 1.0, rng), rng)
    clock = EventClock(fleet)
    version, count, buffer = 0, 0, np.zeros_like(DELTA)
    clock.launch(fleet.pick_idle(CONCURRENCY), version)
    t0 = time.perf_counter()
    for _ in range(events):
        _, v, _ = clock.pop()
        buffer += (1.0 + version - v) ** -0.5 * DELTA
        count += 1
        if count == BUFFER:
            version, count, buffer = version + 1, 0, np.zeros_like(DELTA)
        clock.launch(fleet.pick_idle(1), version)
    return events / (time.perf_counter() - t0)


class Client:
    """The naive design: one object per device with its own data and state."""

    def __init__(self, cid: int, speed: float, examples: list[int]) -> None:
        self.cid, self.speed, self.examples = cid, speed, examples
        self.busy, self.finish, self.version = False, 0.0, 0


def naive(events: int, count: int) -> float:
    rnd = random.Random(0)
    clients = [
        Client(i, rnd.lognormvariate(0.0, 1.0), list(range(i * EXAMPLES, (i + 1) * EXAMPLES)))
        for i in range(count)
    ]
    now, version, count, buffer, flight = 0.0, 0, 0, [0.0] * len(DELTA), []

    def launch():
        c = rnd.choice(clients)
        while c.busy:
            c = rnd.choice(clients)
        c.busy, c.finish, c.version = True, now + c.speed * len(c.examples), version
        flight.append(c)

    for _ in range(CONCURRENCY):
        launch()
    t0 = time.perf_counter()
    for _ in range(events):
        c = min(flight, key=lambda k: k.finish)
        flight.remove(c)
        now, c.busy = c.finish, False
        w = (1.0 + version - c.version) ** -0.5
        buffer = [b + w * d for b, d in zip(buffer, DELTA.tolist(), strict=True)]
        count += 1
        if count == BUFFER:
            version, count, buffer = version + 1, 0, [0.0] * len(DELTA)
        launch()
    return events / (time.perf_counter() - t0)


def measured(fn, events: int, clients: int) -> tuple[float, float]:
    """(updates/s, peak traced memory in MB with the federation built); tracing slows Python down,
    so the rate comes from a second, untraced run."""
    tracemalloc.start()
    fn(events // 10, clients)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return fn(events, clients), peak


def main(tiny: bool = False) -> None:
    """Prints the figure; ``tiny``: 2,000 clients and a hundred events each (seconds, for the test
    that every perf.py runs; its numbers mean nothing)."""
    clients, ours_events, naive_events = (2 * CONCURRENCY, 100, 100) if tiny else (CLIENTS, 100_000, 10_000)
    fast, fast_mb = measured(ours, ours_events, clients)
    slow, slow_mb = measured(naive, naive_events, clients)
    print(
        f"asyncfl simulator, FedBuff C={CONCURRENCY} K={BUFFER} over {clients:,} clients, training stubbed: "
        f"ours {fast:,.0f} updates/s, peak {fast_mb:.0f} MB; naive per-client objects {slow:,.0f} "
        f"updates/s, peak {slow_mb:.0f} MB; ratio {fast / slow:.1f}x (goal >= 10x, < 2 GB)"
    )


if __name__ == "__main__":
    main()
