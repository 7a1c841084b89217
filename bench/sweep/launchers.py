"""A sweep's grid launched elsewhere: printed as ``bench run`` lines, submitted as a SLURM job array
(submitit), or registered as a W&B sweep whose spec is generated from the task (its primary metric
and direction) and the sweep's parameters (a grid, or W&B distributions for its random and
Bayesian search)."""

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
from bench.sweep.space import Param


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


def wandb_spec(
    task: str, params: dict[str, list | Param], method: str = "grid", extra: dict | None = None
) -> dict:
    """The W&B sweep spec of these parameters: agents run ``bench run TASK`` with each point's
    arguments, log to W&B, and the sweep's metric is the task's primary one in its direction.

    A list is a grid axis (``values``, or ``value`` when it has one); a ``Param`` goes as written,
    its distribution untouched, for W&B's own ``method`` (grid, random or bayes) to search.
    ``extra``: the keys of a ``--spec`` file W&B reads as they are (its ``metric`` replaces the
    task's)."""
    declared = get_task(task)
    if method == "grid":
        for p in params.values():
            if isinstance(p, Param):
                p.grid()  # a distribution is refused here, not by W&B after the sweep exists
    written = {
        k: p.wandb() if isinstance(p, Param) else ({"values": p} if len(p) > 1 else {"value": p[0]})
        for k, p in params.items()
    }
    written["logger"] = {"value": "wandb"}
    metric = {"name": declared.primary, "goal": "maximize" if declared.higher_is_better else "minimize"}
    return {
        "program": "bench",
        "command": ["bench", "run", task, "${args_no_hyphens}"],
        "method": method,
        "metric": metric,
        **(extra or {}),
        "parameters": written,
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
