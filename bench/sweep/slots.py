"""Where a local sweep's runs go: the visible GPUs, split into disjoint groups (one per concurrent
run, or shared by several small runs), or CPU workers; each slot's environment says which devices
and how many threads its run takes."""

from __future__ import annotations

import os

from bench.errors import BenchError
from bench.run import env_threads


def visible_gpus(env: dict | None = None) -> list[str]:
    """The GPUs a sweep may use: ``CUDA_VISIBLE_DEVICES`` if set (ids or UUIDs), else every GPU
    torch sees (none without CUDA)."""
    env = os.environ if env is None else env
    if "CUDA_VISIBLE_DEVICES" in env:
        return [d.strip() for d in env["CUDA_VISIBLE_DEVICES"].split(",") if d.strip() and d.strip() != "-1"]
    try:
        import torch
    except ImportError:
        return []
    return [str(i) for i in range(torch.cuda.device_count())]


def slots(gpus: list[str], gpus_per_run: int = 1, runs_per_gpu: int = 1, jobs: int = 1) -> list[dict]:
    """One environment per concurrent run: disjoint groups of ``gpus_per_run`` GPUs, each group
    shared by ``runs_per_gpu`` runs; without GPUs, ``jobs`` CPU workers. Threads divide the cores."""
    if gpus_per_run < 1 or runs_per_gpu < 1 or jobs < 1:
        raise BenchError("--gpus-per-run, --runs-per-gpu and --jobs take positive integers")
    if gpus:
        if gpus_per_run > len(gpus):
            raise BenchError(f"--gpus-per-run {gpus_per_run} but only {len(gpus)} GPU(s): {','.join(gpus)}")
        if len(gpus) % gpus_per_run:
            raise BenchError(
                f"{len(gpus)} GPUs do not split into groups of {gpus_per_run}: list --devices to use"
            )
        groups = [gpus[i : i + gpus_per_run] for i in range(0, len(gpus), gpus_per_run)]
        envs = [{"CUDA_VISIBLE_DEVICES": ",".join(g)} for g in groups for _ in range(runs_per_gpu)]
    else:
        envs = [{"CUDA_VISIBLE_DEVICES": ""} for _ in range(jobs)]
    # a BENCH_THREADS already set (a node shared with other jobs) caps every worker's threads
    threads = env_threads() or max(1, (os.cpu_count() or 1) // len(envs))
    return [{**e, "BENCH_THREADS": str(threads)} for e in envs]
