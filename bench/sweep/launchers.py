"""A sweep's grid launched elsewhere: printed as ``bench run`` lines, submitted as a SLURM job array
(submitit), or registered as a W&B sweep whose spec is generated from the task (its primary metric
and direction) and the grid."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from bench import config
from bench.errors import BenchError
from bench.registry import get_task
from bench.run import record_failure


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


class ArrayJob:
    """A job of the array: ``bench run`` in a subprocess (its ranks are Lightning's own).

    submitit's checkpointing interface: on a time limit or a preemption submitit calls
    ``checkpoint``, and the job is requeued as what it returns: the same run with
    ``resume=true``, so it continues from its newest checkpoint instead of starting over."""

    def __call__(self, task: str, args: list[str]) -> int:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
        proc = subprocess.run([sys.executable, "-m", "bench", "run", task, *args], env=env, text=True)
        if proc.returncode < 0:
            run_args = [a for a in args if a not in ("resume=true", "--force")]
            record_failure(task, run_args, f"killed by signal {-proc.returncode}")
        return proc.returncode

    def checkpoint(self, task: str, args: list[str]):
        from submitit.helpers import DelayedSubmission

        resumed = [a for a in args if a != "resume=true"] + ["resume=true"]
        return DelayedSubmission(ArrayJob(), task, resumed)


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
    return executor.map_array(ArrayJob(), [task] * len(runs), [[*a, *tail] for a in runs])


def wandb_spec(task: str, axes: dict[str, list]) -> dict:
    """The W&B sweep spec of this grid: agents run ``bench run TASK`` with each point's arguments,
    log to W&B, and the sweep's metric is the task's primary one in its direction."""
    declared = get_task(task)
    params = {k: ({"values": v} if len(v) > 1 else {"value": v[0]}) for k, v in axes.items()}
    params["logger"] = {"value": "wandb"}
    return {
        "program": "bench",
        "command": ["bench", "run", task, "${args_no_hyphens}"],
        "method": "grid",
        "metric": {"name": declared.primary, "goal": "maximize" if declared.higher_is_better else "minimize"},
        "parameters": params,
    }


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
