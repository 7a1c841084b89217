"""Local sweeps: expand the task's W&B sweep spec and run it without a W&B server.

Each run is its own ``bench run`` process, so a crash or a killed worker loses only that run;
records already written stay, and a rerun of the sweep skips the runs that have an ``ok`` record.
One worker per GPU (``CUDA_VISIBLE_DEVICES``) or, on CPU, workers that divide the cores.
"""

from __future__ import annotations

import itertools
import os
import queue
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from bench import config
from bench.errors import BenchError


def expand(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> list[list[str]]:
    """The grid of the sweep spec as ``bench run`` argument lists; CLI overrides win."""
    params = config.sweep_spec(task).get("parameters", {})
    fixed = config.parse_overrides(overrides)
    axes = {}
    for key, spec in params.items():
        values = spec["values"] if "values" in spec else [spec["value"]]
        axes[key] = [fixed.pop(key)] if key in fixed else values
    if methods:
        axes["method"] = methods.split(",")
    if seeds:
        try:
            axes["seed"] = [int(s) for s in seeds.split(",")]
        except ValueError:
            raise BenchError(f"--seeds takes comma-separated integers, got {seeds!r}") from None
    runs = []
    for combo in itertools.product(*axes.values()):
        args = [f"{k}={v}" for k, v in zip(axes, combo, strict=True)] + [f"{k}={v}" for k, v in fixed.items()]
        config.resolve(task, args)  # refuse a bad sweep before any run starts
        runs.append(args)
    return runs


def sweep(
    task: str,
    overrides: list[str],
    methods: str | None,
    seeds: str | None,
    devices: str | None,
    workers: int,
    force: bool,
) -> int:
    """Run the expanded sweep; returns 0 if every run ended ``ok``, else 1."""
    runs = expand(task, overrides, methods, seeds)
    if devices:
        slots = [{"CUDA_VISIBLE_DEVICES": d} for d in devices.split(",")]
    else:
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        slots = [{"CUDA_VISIBLE_DEVICES": "", "BENCH_THREADS": str(threads)}] * max(1, workers)
    free: queue.Queue = queue.Queue()
    for slot in slots:
        free.put(slot)
    print(f"sweep {task}: {len(runs)} runs on {len(slots)} worker(s)", flush=True)

    def one(args: list[str]) -> int:
        slot = free.get()
        try:
            cmd = [sys.executable, "-m", "bench", "run", task, *args] + (["--force"] if force else [])
            done = subprocess.run(cmd, env={**os.environ, **slot}, capture_output=True, text=True)
            last = (done.stdout.strip().splitlines() or [""])[-1]
            err = (done.stderr.strip().splitlines() or [""])[-1] if done.returncode else ""
            print(f"[{' '.join(args)}] {last or err or f'exit {done.returncode}'}", flush=True)
            return done.returncode
        finally:
            free.put(slot)

    with ThreadPoolExecutor(len(slots)) as pool:
        codes = list(pool.map(one, runs))
    failed = sum(c != 0 for c in codes)
    print(f"sweep {task}: {len(runs) - failed} ok, {failed} not ok", flush=True)
    return 1 if failed else 0
