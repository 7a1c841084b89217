"""Sweeps: a task's methods x seeds (x any swept key) as ``bench run`` processes.

The grid (``grid.py``) comes from the task and the preset: the methods of the preset's ``sweep:``
section (every method of the task without one) and the seeds of its ``seeds:``, narrowed by the
command line. It runs in one of four ways:

- locally (``pool.py``, ``bench sweep``): one process per run, on slots made of the visible GPUs
  (``--gpus-per-run N`` GPUs per run, ``--runs-per-gpu K`` runs packed on each) or, without GPUs,
  ``--jobs`` CPU workers that divide the cores (``slots.py``), with one line per finished run and a
  live bar on a terminal (``display.py``). A killed or timed-out run gets a ``failed`` record;
  rerunning the sweep skips ``ok`` runs and resumes the others from their last checkpoint;
- printed (``--print``): one ``bench run`` line per run, for job arrays or GNU parallel;
- as a SLURM job array through submitit (``--launcher submitit``);
- on W&B agents (``--wandb``): the same grid as a W&B sweep spec generated from the task
  (``--wandb-spec`` prints it).

The last three are ``launchers.py``.
"""

from bench.sweep.grid import axes, expand
from bench.sweep.launchers import command_lines, create_wandb_sweep, parse_slurm, submit, wandb_spec
from bench.sweep.pool import Options, run_args, sweep
from bench.sweep.slots import slots, visible_gpus

__all__ = [
    "Options",
    "axes",
    "command_lines",
    "create_wandb_sweep",
    "expand",
    "parse_slurm",
    "run_args",
    "slots",
    "submit",
    "sweep",
    "visible_gpus",
    "wandb_spec",
]
