"""What a getup run's seed draws (bench/seeds.py): the training pool of fallen states (the held-out
test pool is the same for every seed), the agent's initial weights, and the first episodes (their
start states, strengths and warm-up actions), as a run starting from nothing draws them: the
method is built without continuing from a cached stage 1."""

from __future__ import annotations

from bench.seeds import build, digest


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    datamodule.prepare_data()
    datamodule.setup("fit")
    module.build(datamodule)
    init = digest(module.agent.state_dict())
    o = cfg["optim"]
    # the random-action warm-up, no SAC update yet: two episodes where the warm-up allows
    for _ in range(min(o["start_steps"] - 1, o["horizon"] + 1)):
        module.env_step(module.phases[0])
    return {
        "data": digest(datamodule.train_pool, datamodule.test_pool),
        "init": init,
        "order": digest(module.replay.state_dict()),
    }
