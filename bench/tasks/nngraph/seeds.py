"""What an nngraph run's seed draws (bench/seeds.py): the population (its networks' draws,
training and summaries, with ``population.seed``) and its split into the cross-validation folds
("data"), and the random state of the predictors' forests ("init"). A predictor is fit on whole
folds at once, so there is no order (``Task.seed_fixed``)."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold

from bench.seeds import build, digest, set_up
from bench.tasks.nngraph import predict


def draws(cfg: dict, method: str) -> dict[str, str]:
    datamodule, module = build(cfg)
    set_up(datamodule, module)
    p, seed, good = cfg["predictor"], cfg["seed"], module.good
    # the folds predict.out_of_fold deals (by the labels and the seed alone)
    folds = StratifiedKFold(p["folds"], shuffle=True, random_state=seed)
    held = [h for _, h in folds.split(np.zeros((len(good), 1)), good)]
    plain = (int, float, str, bool, type(None))
    models = [
        {k: v for k, v in m.get_params().items() if isinstance(v, plain)} for m in predict.models(p, seed)
    ]
    return {"data": digest(datamodule.tables, held), "init": digest(models)}
