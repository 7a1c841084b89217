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
from bench.run import record_failure


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
    jobs: int,
    force: bool,
) -> int:
    """Run the expanded sweep; returns 0 if every run ended ``ok``, else 1."""
    runs = expand(task, overrides, methods, seeds)
    if devices:
        slots = [{"CUDA_VISIBLE_DEVICES": d} for d in devices.split(",")]
    else:
        threads = max(1, (os.cpu_count() or 1) // max(1, jobs))
        slots = [{"CUDA_VISIBLE_DEVICES": "", "BENCH_THREADS": str(threads)}] * max(1, jobs)
    free: queue.Queue = queue.Queue()
    for slot in slots:
        free.put(slot)
    done = itertools.count(1)
    print(f"sweep {task}: {len(runs)} runs on {len(slots)} worker(s)", flush=True)

    def one(args: list[str]) -> int:
        slot = free.get()
        try:
            cmd = [sys.executable, "-m", "bench", "run", task, *args] + (["--force"] if force else [])
            proc = subprocess.run(cmd, env={**os.environ, **slot}, capture_output=True, text=True)
            if proc.returncode < 0:  # killed by a signal: it could not write its own record
                path = record_failure(task, args, f"worker killed by signal {-proc.returncode}")
                line = f"failed: killed by signal {-proc.returncode} -> {path}"
            else:
                line = (proc.stdout.strip().splitlines() or proc.stderr.strip().splitlines() or [""])[-1]
            print(f"[{next(done)}/{len(runs)}] {' '.join(args)}: {line}", flush=True)
            return proc.returncode
        finally:
            free.put(slot)

    with ThreadPoolExecutor(len(slots)) as pool:
        codes = list(pool.map(one, runs))
    failed = sum(c != 0 for c in codes)
    print(f"sweep {task}: {len(runs) - failed} ok, {failed} not ok", flush=True)
    return 1 if failed else 0


def create_wandb_sweep(task: str) -> str:
    """Register the task's sweep spec with W&B; returns the `wandb agent` command to run per GPU."""
    import wandb

    try:
        sweep_id = wandb.sweep(config.sweep_spec(task), project=f"bench-{task}")
    except Exception as e:  # no network, no API key: say so in one line
        raise BenchError(
            f"could not create the W&B sweep ({type(e).__name__}: {e}); "
            "log in with `wandb login` and check the network"
        ) from None
    return f"wandb agent {sweep_id}"
