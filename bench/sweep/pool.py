"""Running a sweep locally: one ``bench run`` process per run, as many at once as there are slots
(bench/sweep/slots.py). A run past ``--timeout`` or killed by a signal gets a ``failed`` record; a
rerun skips runs with an ``ok`` record and resumes the others from their checkpoint. Each run's
output goes to ``sweep.log`` in its folder."""

from __future__ import annotations

import contextlib
import os
import queue
import shlex
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.run import locate, record_failure
from bench.sweep.display import Display
from bench.sweep.search import Search, plan
from bench.sweep.slots import slots, visible_gpus


@dataclass
class Options:
    """Where a local sweep's runs go and how long each may take."""

    devices: str | None = None  # comma-separated GPU ids; None: detect
    jobs: int = 1  # CPU workers when no GPU
    gpus_per_run: int | None = None  # None: 1, and trainer.devices left as the preset has it
    runs_per_gpu: int = 1
    timeout: float | None = None  # seconds per run
    force: bool = False
    progress: bool | None = None  # None: a live display when stdout is a terminal


def _label(args: list[str], varying: set[str]) -> str:
    """A run's name in the sweep's lines: its method, seed and the values that differ between runs
    (a random search's sampled ones)."""
    keep = [a for a in args if a.split("=", 1)[0] in {"method", "seed", *varying}]
    return " ".join(keep) or " ".join(args)


def _varying(runs: list[list[str]]) -> set[str]:
    """The keys whose values differ between the runs."""
    seen: dict[str, set[str]] = {}
    for args in runs:
        for arg in args:
            key, _, value = arg.partition("=")
            seen.setdefault(key, set()).add(value)
    return {k for k, values in seen.items() if len(values) > 1}


def run_args(args: list[str], opts: Options) -> list[str]:
    return args + ([f"trainer.devices={opts.gpus_per_run}"] if opts.gpus_per_run else [])


def _checkpoint_for(task: str, args: list[str]) -> tuple[Path, bool]:
    """The run's record path, and whether its folder holds a checkpoint to resume from."""
    _, _, _, path = locate(task, args)
    return path, any(path.parent.glob("**/*.ckpt"))


def _needs_run(path: Path, force: bool) -> bool:
    from bench import records

    if force or not path.exists():
        return True
    try:
        return records.read(path)["status"] != "ok"
    except records.RecordError:
        return True


def _kill_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def sweep(
    task: str,
    overrides: list[str],
    methods: str | None = None,
    seeds: str | None = None,
    opts: Options | None = None,
    search: Search | None = None,
) -> int:
    """Run the sweep's runs (the grid, or a random search's trials) locally; returns 0 if every
    run ended ``ok``, else 1."""
    opts = opts or Options()
    runs = [run_args(a, opts) for a in plan(task, overrides, methods, seeds, search)]
    varying = _varying(runs)
    if opts.devices is not None:
        gpus, source = [d for d in opts.devices.split(",") if d], "--devices"
    else:
        gpus = visible_gpus()
        source = "CUDA_VISIBLE_DEVICES" if "CUDA_VISIBLE_DEVICES" in os.environ else "detected"
    envs = slots(gpus, opts.gpus_per_run or 1, opts.runs_per_gpu, opts.jobs)
    if gpus:
        where = (
            f"{len(gpus)} GPU(s) ({source}: {','.join(gpus)}), {opts.gpus_per_run or 1} per run, "
            f"{opts.runs_per_gpu} run(s) per GPU: {len(envs)} worker(s)"
        )
    else:
        where = f"no GPU visible, {len(envs)} CPU worker(s) of {envs[0]['BENCH_THREADS']} thread(s)"
    live = sys.stdout.isatty() if opts.progress is None else opts.progress
    display = Display(task, len(runs), live)
    display.print(f"sweep {task}: {len(runs)} runs on {where}")
    free: queue.Queue = queue.Queue()
    for env in envs:
        free.put(env)

    def one(args: list[str]) -> int:
        path, has_ckpt = _checkpoint_for(task, args)
        if not _needs_run(path, opts.force):
            display.started()
            display.finished(_label(args, varying), f"ok (record exists) -> {path}", True)
            return 0
        resumed = has_ckpt and not opts.force
        cmd = [sys.executable, "-m", "bench", "run", task, *args, *(["resume=true"] if resumed else [])]
        cmd += ["--force"] if opts.force else []
        env = free.get()
        display.started()
        try:
            proc = subprocess.Popen(
                cmd,
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group: DDP ranks die with it
            )
            try:
                out, err = proc.communicate(timeout=opts.timeout)
                code, timed_out = proc.returncode, False
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                out, err = proc.communicate()
                code, timed_out = proc.returncode, True
            finally:
                _kill_group(proc)  # nothing of a run outlives it
        finally:
            free.put(env)
        if timed_out:
            line = f"failed: timed out after {opts.timeout:g} s -> " + str(
                record_failure(task, args, f"timed out after {opts.timeout:g} s (--timeout)")
            )
            code = code or 1
        elif code < 0:  # killed by a signal: it could not write its own record
            line = f"failed: killed by signal {-code} -> " + str(
                record_failure(task, args, f"worker killed by signal {-code}")
            )
        else:
            line = (out.strip().splitlines() or err.strip().splitlines() or [f"exit {code}"])[-1]
            if code and err.strip():
                line += f" ({err.strip().splitlines()[-1]})" if err.strip().splitlines()[-1] != line else ""
        if resumed:
            line += " (resumed from its checkpoint)"
        if path.parent.exists():
            (path.parent / "sweep.log").write_text(f"$ {shlex.join(cmd)}\n{out}\n--- stderr\n{err}")
        display.warnings(_label(args, varying), err)
        display.finished(_label(args, varying), line, code == 0)
        return code

    t0 = time.perf_counter()
    try:
        with ThreadPoolExecutor(len(envs)) as pool:
            codes = list(pool.map(one, runs))
    finally:
        display.close()
    failed = sum(c != 0 for c in codes)
    took = time.perf_counter() - t0
    display.print(f"sweep {task}: {len(runs) - failed} ok, {failed} not ok in {took:.0f} s")
    return 1 if failed else 0
