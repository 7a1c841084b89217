"""Sweeps: a task's methods x seeds (x any swept key) as ``bench run`` processes.

The grid is the task's W&B sweep spec (``configs/sweeps/<task>.yaml``) narrowed by the command
line, with the seeds of the preset's ``seeds:`` unless ``--seeds``. It runs in one of four ways:

- locally (``bench sweep``): one process per run, on slots made of the visible GPUs
  (``--gpus-per-run N`` GPUs per run, ``--runs-per-gpu K`` runs packed on each) or, without GPUs,
  ``--jobs`` CPU workers that divide the cores. A killed or timed-out run gets a ``failed`` record;
  rerunning the sweep skips ``ok`` runs and resumes the others from their last checkpoint;
- printed (``--print``): one ``bench run`` line per run, for job arrays or GNU parallel;
- as a SLURM job array through submitit (``--launcher submitit``);
- on W&B agents (``--wandb``): the same grid registered as a W&B sweep.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench import config
from bench.errors import BenchError
from bench.run import env_threads, locate, record_failure


def _cfg(task: str, args: list[str]) -> dict:
    """The resolved run config (``config.resolve`` returns (task, cfg) or, before issue 28, cfg)."""
    out = config.resolve(task, args)
    return out[1] if isinstance(out, tuple) else out


def _seeds(task: str, preset: str, spec_seeds: list | None, seeds: str | None) -> list[int]:
    if seeds:
        try:
            return [int(s) for s in seeds.split(",")]
        except ValueError:
            raise BenchError(f"--seeds takes comma-separated integers, got {seeds!r}") from None
    preset_seeds = getattr(config, "preset_seeds", None)
    found = preset_seeds(task, preset) if preset_seeds else None
    return list(found or spec_seeds or [0])


def grid(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> dict[str, list]:
    """The sweep's axes, ``{key: [values]}`` in order: preset, method, seed, then the rest.

    The spec's ``logger`` is the agents' (W&B); a local sweep uses the preset's unless told.
    """
    params = config.sweep_spec(task).get("parameters", {})
    fixed = config.parse_overrides(overrides)
    axes: dict[str, list] = {}
    for key, spec in params.items():
        if key in ("seed", "logger"):
            continue
        values = spec["values"] if "values" in spec else [spec["value"]]
        axes[key] = [fixed.pop(key)] if key in fixed else list(values)
    axes.setdefault("preset", [fixed.pop("preset", "cpu")])
    if methods:
        axes["method"] = methods.split(",")
    spec_seed = params.get("seed", {})
    spec_seeds = spec_seed.get("values", [spec_seed["value"]] if "value" in spec_seed else None)
    axes["seed"] = _seeds(task, str(axes["preset"][0]), spec_seeds, seeds)
    for key, value in fixed.items():
        axes[key] = [value]
    return axes


def expand(
    task: str, overrides: list[str], methods: str | None = None, seeds: str | None = None
) -> list[list[str]]:
    """The grid as ``bench run`` argument lists; every one is resolved (a bad sweep is refused
    before any run starts)."""
    axes = grid(task, overrides, methods, seeds)
    runs = []
    for combo in itertools.product(*axes.values()):
        args = [f"{k}={_arg(v)}" for k, v in zip(axes, combo, strict=True)]
        _cfg(task, args)
        runs.append(args)
    return runs


def _arg(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


# -- where runs go: GPU slots ---------------------------------------------------------------------


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


# -- running them locally -------------------------------------------------------------------------


@dataclass
class Options:
    devices: str | None = None  # comma-separated GPU ids; None: detect
    jobs: int = 1  # CPU workers when no GPU
    gpus_per_run: int | None = None  # None: 1, and trainer.devices left as the preset has it
    runs_per_gpu: int = 1
    timeout: float | None = None  # seconds per run
    force: bool = False
    progress: bool | None = None  # None: a live display when stdout is a terminal


_WARNING = re.compile(r"warn", re.IGNORECASE)


def _label(args: list[str]) -> str:
    keep = [a for a in args if a.split("=", 1)[0] in ("method", "seed")]
    return " ".join(keep) or " ".join(args)


def run_args(args: list[str], opts: Options) -> list[str]:
    return args + ([f"trainer.devices={opts.gpus_per_run}"] if opts.gpus_per_run else [])


class _Display:
    """The sweep's output: one line per finished run and per new child warning, and (on a terminal)
    a live bar of done / running / failed runs with an ETA."""

    def __init__(self, task: str, total: int, live: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(highlight=False, soft_wrap=True)
        self.lock = threading.Lock()
        self.total, self.running, self.failed, self.count = total, 0, 0, 0
        self.seen: dict[str, int] = {}
        self.progress = None
        if live:
            self.progress = Progress(
                TextColumn(f"sweep {task}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[state]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar = self.progress.add_task("runs", total=total, state=self._state())
            self.progress.start()

    def _state(self) -> str:
        return f"running {self.running}, failed {self.failed}"

    def print(self, line: str) -> None:
        (self.progress.console if self.progress else self.console).print(line, markup=False)
        sys.stdout.flush()

    def started(self) -> None:
        with self.lock:
            self.running += 1
            self._update()

    def finished(self, label: str, line: str, ok: bool) -> None:
        with self.lock:
            self.running -= 1
            self.count += 1
            self.failed += not ok
            self.print(f"[{self.count}/{self.total}] {label}: {line}")
            self._update(advance=1)

    def warnings(self, label: str, stderr: str) -> None:
        with self.lock:
            for text in dict.fromkeys(ln.strip() for ln in stderr.splitlines() if _WARNING.search(ln)):
                self.seen[text] = self.seen.get(text, 0) + 1
                if self.seen[text] == 1:
                    self.print(f"  warning ({label}): {text}")

    def _update(self, advance: int = 0) -> None:
        if self.progress:
            self.progress.update(self.bar, advance=advance, state=self._state())

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
        repeated = sum(n - 1 for n in self.seen.values())
        if repeated:
            self.print(f"({repeated} repeats of these warnings in other runs: each run's sweep.log has all)")


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
) -> int:
    """Run the expanded sweep locally; returns 0 if every run ended ``ok``, else 1."""
    opts = opts or Options()
    runs = [run_args(a, opts) for a in expand(task, overrides, methods, seeds)]
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
    display = _Display(task, len(runs), live)
    display.print(f"sweep {task}: {len(runs)} runs on {where}")
    free: queue.Queue = queue.Queue()
    for env in envs:
        free.put(env)

    def one(args: list[str]) -> int:
        path, has_ckpt = _checkpoint_for(task, args)
        if not _needs_run(path, opts.force):
            display.started()
            display.finished(_label(args), f"ok (record exists) -> {path}", True)
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
        display.warnings(_label(args), err)
        display.finished(_label(args), line, code == 0)
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


# -- printed, SLURM, W&B --------------------------------------------------------------------------


def command_lines(task: str, runs: list[list[str]], force: bool = False) -> list[str]:
    """One ``bench run`` line per run (resume=true: a rerun continues from a checkpoint if any)."""
    tail = ["--force"] if force else ["resume=true"]
    return [shlex.join(["bench", "run", task, *args, *tail]) for args in runs]


def parse_slurm(pairs: list[str]) -> dict:
    """``["slurm_partition=gpu", "timeout_min=60"]`` -> submitit parameters (values as YAML)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BenchError(f"--slurm takes key=value (a submitit parameter), got {pair!r}")
        out[key] = config.parse_overrides([f"x={value}"])["x"]
    return out


def _child(task: str, args: list[str]) -> int:
    """A job of the array: ``bench run`` in a subprocess (its ranks are Lightning's own)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run([sys.executable, "-m", "bench", "run", task, *args], env=env, text=True)
    if proc.returncode < 0:
        record_failure(task, [a for a in args if a != "resume=true"], f"killed by signal {-proc.returncode}")
    return proc.returncode


def submit(task: str, runs: list[list[str]], slurm: dict, folder: Path, force: bool = False) -> list:
    """Submit the runs as one job array (submitit); returns the jobs. ``cluster`` (slurm, local,
    debug) picks submitit's executor; the other keys go to ``update_parameters``."""
    try:
        import submitit
    except ImportError:
        raise BenchError("--launcher submitit needs submitit: pip install submitit") from None
    params = dict(slurm)
    params.setdefault("name", f"bench-{task}")
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=params.pop("cluster", None))
        executor.update_parameters(**params)
    except (ValueError, TypeError, NameError, AssertionError, RuntimeError) as e:
        raise BenchError(f"bad --slurm parameters: {e}".splitlines()[0]) from None
    tail = ["--force"] if force else ["resume=true"]
    return executor.map_array(_child, [task] * len(runs), [[*a, *tail] for a in runs])


def wandb_spec(task: str, axes: dict[str, list]) -> dict:
    """The W&B sweep spec of this grid: the task's spec with these parameters; runs log to W&B."""
    spec = {k: v for k, v in config.sweep_spec(task).items() if k != "parameters"}
    params = {k: ({"values": v} if len(v) > 1 else {"value": v[0]}) for k, v in axes.items()}
    params["logger"] = {"value": "wandb"}
    return {**spec, "parameters": params}


def create_wandb_sweep(task: str, spec: dict, entity: str | None, project: str | None) -> str:
    """Register the spec with W&B; returns the exact ``wandb agent ENTITY/PROJECT/ID`` command."""
    import wandb

    project = project or f"bench-{task}"
    try:
        sweep_id = wandb.sweep(spec, entity=entity, project=project)
        entity = entity or wandb.Api().default_entity
    except Exception as e:  # no network, no API key: say so in one line
        raise BenchError(
            f"could not create the W&B sweep ({type(e).__name__}: {e}".splitlines()[0][:300]
            + "); log in with `wandb login` and check the network"
        ) from None
    if not sweep_id:
        raise BenchError("could not create the W&B sweep: W&B returned no id; run `wandb login`")
    return f"wandb agent {entity}/{project}/{sweep_id}"
