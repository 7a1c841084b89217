"""What a girl run's seed draws (bench/seeds.py): the first policy's initial weights and the
episodes of the first meta-update (their exploration noise), from the population's generator. The
task family is the config's (``Task.seed_fixed``), digested to show it stays so."""

from __future__ import annotations

import torch

from bench.seeds import build, digest, set_up
from bench.tasks.girl import maml


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    fam, o, learner = datamodule.family, cfg["optim"], module.pop.learner
    gen = torch.Generator().manual_seed(0)
    gen.set_state(learner.gen.get_state())  # a copy: the run's own stream is left as it is
    k = len(fam.p0)
    n = o["episodes"] if learner.meta else 2 * o["episodes"]  # as Learner.step's first rollout
    with torch.no_grad():
        first = maml.rollout(
            fam.train, maml.expand(learner.params, k), learner.std, torch.arange(k), n, o["horizon"], gen
        )
    return {
        "data": digest(fam.p0, fam.heldout_p0, fam.train.goals, fam.heldout.goals),
        "init": digest(learner.params),
        "order": digest(first.reward),
    }
