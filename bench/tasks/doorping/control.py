"""The control for ASR: a clean distillation of the same seed, a shared stage.

``test/asr_clean`` stamps a run's final trigger on nets trained on the clean distillation of its
seed: the part of the ASR an out-of-range patch earns on nets that never saw it, with no backdoor.
Every random draw of a run comes from its seed (``DistillAttack.gen``), so the clean distillation
does not depend on which run computes it: the ``clean`` method offers its own set to the stage, and
the attacks build it (``bench.artifacts.cached``) when no clean run of that seed has yet.
"""

from __future__ import annotations

import torch

from bench import artifacts, provenance
from bench.tasks.doorping.data import Images

VERSION = 2
FILE = "clean_set.pt"


def sub_config(cfg: dict) -> dict:
    """What the clean distillation depends on: data (not where it lives), network, distillation,
    inner training and the seed, and the code computing it (the task's fingerprint: a changed
    distillation builds a new set); not the attack, the evaluation or the defenses."""
    data = {k: v for k, v in cfg["data"].items() if k != "root"}
    code = {"code": provenance.fingerprint("doorping")}
    return {k: cfg[k] for k in ("model", "distill", "inner", "seed")} | {"data": data} | code


def _save(folder, syn: torch.Tensor, raw_lrs: torch.Tensor) -> None:
    torch.save({"syn": syn.detach().cpu(), "raw_lrs": raw_lrs.detach().cpu()}, folder / FILE)


def offer(cfg: dict, syn: torch.Tensor, raw_lrs: torch.Tensor) -> None:
    """The clean run's distilled set (and DD step sizes) as the stage's content, unless present."""
    artifacts.cached("doorping", "clean", sub_config(cfg), lambda f: _save(f, syn, raw_lrs), VERSION)


def clean_set(cfg: dict, images: Images, device: torch.device) -> dict[str, torch.Tensor]:
    """{syn, raw_lrs} of the clean distillation of ``cfg``'s seed, built here if no run has."""
    from bench.tasks.doorping.method import DistillAttack  # the method imports this module

    def build(folder) -> None:
        run = DistillAttack(cfg, "clean")
        run.device = device
        run.prepare(images)
        for it in range(cfg["distill"]["iterations"]):
            run.distill_step(it)
        _save(folder, run.syn, run.raw_lrs)

    folder = artifacts.cached("doorping", "clean", sub_config(cfg), build, VERSION)
    return torch.load(folder / FILE, map_location=device)
