"""What a doorping run's seed draws (bench/seeds.py): the synthetic set's (and trigger's) initial
values, and the stream every later draw comes from (the poisoned images, the real batches, the
networks). The real pool and test split are a fixed subset (``Task.seed_fixed``), digested to show
it stays so."""

from __future__ import annotations

from bench.seeds import build, digest, set_up


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    im = datamodule.images
    return {
        "data": digest(im.x, im.y, im.x_test, im.y_test),
        "init": digest(module.syn, module.trigger, module.raw_lrs),
        "order": digest(module.poison, module.gen.get_state()),
    }
