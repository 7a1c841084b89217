"""Sweeps: a task's methods x seeds (x any swept key) as ``bench run`` processes.

The grid (``grid.py``) comes from the task and the preset: the methods of the preset's ``sweep:``
section (every method of the task without one) and the seeds of its ``seeds:``, narrowed by the
command line. Any other key may be a W&B parameter spec (``space.py``: ``values``, or a
distribution such as ``log_uniform_values``); a grid enumerates ``values``, a random search
(``search.py``, ``--search random --trials N``) samples every spec N times and runs each trial on
every method and seed. It runs in one of four ways:

- locally (``pool.py``, ``bench sweep``): one process per run, on slots made of the visible GPUs
  (``--gpus-per-run N`` GPUs per run, ``--runs-per-gpu K`` runs packed on each) or, without GPUs,
  ``--jobs`` CPU workers that divide the cores (``slots.py``), with one line per finished run and a
  live bar on a terminal (``display.py``). A killed or timed-out run gets a ``failed`` record;
  rerunning the sweep skips ``ok`` runs and resumes the others from their last checkpoint;
- printed (``--print``): one ``bench run`` line per run, for job arrays or GNU parallel;
- as a SLURM job array through submitit (``--launcher submitit``);
- on W&B agents (``--wandb``): a W&B sweep spec generated from the task, its parameters as
  written (``--wandb-spec`` prints it), searched by W&B's grid, random or bayes method.

The last three are ``launchers.py``.
"""

from bench.sweep.grid import axes, expand, parameters
from bench.sweep.launchers import command_lines, create_wandb_sweep, parse_slurm, submit, wandb_spec
from bench.sweep.pool import Options, run_args, sweep
from bench.sweep.search import Search, plan, points, read_spec
from bench.sweep.slots import slots, visible_gpus
from bench.sweep.space import Param

__all__ = [
    "Options",
    "Param",
    "Search",
    "axes",
    "command_lines",
    "create_wandb_sweep",
    "expand",
    "parameters",
    "parse_slurm",
    "plan",
    "points",
    "read_spec",
    "run_args",
    "slots",
    "submit",
    "sweep",
    "visible_gpus",
    "wandb_spec",
]
