"""Cross-validated predictions over networks: every prediction is for a network the fitted
predictor never saw.

``predictor.kind``: ``forest`` (random forests, the default: the relation of lr, degree change and
outcome is a window, not a line) or ``linear`` (standardized logistic + ridge regression).

A forest's ``max_features`` is chosen per method and per outer fold from the grid
``predictor.max_features`` (the same grid for every method): each value's classifier is fit on
the training folds and scored out of bag there, so the choice never sees the held-out fold it is
judged on; the regressor of that fold tries the same number. Values that try the same number of
features on a design matrix are fit once.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.errors import BenchError


def models(p: dict, seed: int, max_features: float | str = 1.0, oob: bool = False) -> tuple:
    """(classifier, regressor) as ``predictor`` configures them; a forest tries ``max_features``
    per split and, with ``oob``, scores itself out of bag."""
    if p["kind"] == "forest":
        f = {
            "n_estimators": p["trees"],
            "max_features": max_features,
            "oob_score": oob,
            "random_state": seed,
            "n_jobs": 1,
        }
        return RandomForestClassifier(**f), RandomForestRegressor(**f)
    if p["kind"] == "linear":
        return (
            make_pipeline(StandardScaler(), LogisticRegression(C=p["classifier_c"], max_iter=5000)),
            make_pipeline(StandardScaler(), Ridge(alpha=p["ridge_alpha"])),
        )
    raise BenchError(f"unknown predictor.kind {p['kind']!r}: use forest or linear")


def tried(max_features: float | str, n_features: int) -> int:
    """Features a forest tries per split (sklearn's rule): ``sqrt``, a fraction, or an integer."""
    if max_features == "sqrt":
        return max(1, int(math.sqrt(n_features)))
    if isinstance(max_features, float):
        return max(1, int(max_features * n_features))
    if isinstance(max_features, int):
        return min(max_features, n_features)
    raise BenchError(f"predictor.max_features has {max_features!r}: use sqrt, a fraction or an integer")


def candidates(grid: list | float | str, n_features: int) -> list[int]:
    """The distinct numbers of features per split the grid (or one value) tries on ``n_features``
    features, ascending."""
    values = grid if isinstance(grid, list | tuple) else [grid]
    return sorted({tried(v, n_features) for v in values})


def tuned(p: dict, seed: int, x: np.ndarray, good: np.ndarray) -> tuple:
    """The classifier fit on (x, good) with the candidate whose out-of-bag accuracy is best (the
    fewest features on a tie), and the features it tries per split."""
    counts = candidates(p["max_features"], x.shape[1])
    best, best_count = None, 0
    for count in counts:
        model = models(p, seed, count, oob=len(counts) > 1)[0]
        model.fit(x, good)
        if best is None or model.oob_score_ > best.oob_score_:
            best, best_count = model, count
    return best, best_count


def out_of_fold(
    x: np.ndarray, good: np.ndarray, acc: np.ndarray, p: dict, seed: int
) -> tuple[np.ndarray, np.ndarray, int, dict[str, float]]:
    """(good/bad probability, predicted final accuracy) per network, each from the fold holding it
    out, the size of one fitted pair, and the forests' choices of ``max_features``: their mean
    fraction of the features, and the share of choices on an edge of the grid that is not the
    edge of what a forest can try (fewer than all features, more than one), where a wider grid
    might score better. Folds are stratified by good/bad, shuffled by ``seed``."""
    prob, reg = np.zeros(len(x)), np.zeros(len(x))
    folds = StratifiedKFold(p["folds"], shuffle=True, random_state=seed)
    n, chosen = x.shape[1], []
    for fit, held in folds.split(x, good):
        if p["kind"] == "forest":
            clf, count = tuned(p, seed, x[fit], good[fit])
            regressor = models(p, seed, count)[1]
            chosen.append(count)
        else:
            clf, regressor = models(p, seed)
            clf.fit(x[fit], good[fit])
        regressor.fit(x[fit], acc[fit])
        prob[held] = clf.predict_proba(x[held])[:, 1]
        reg[held] = regressor.predict(x[held])
    return prob, reg, size(clf, regressor, n), choices(chosen, candidates(p["max_features"], n), n)


def choices(chosen: list[int], counts: list[int], n_features: int) -> dict[str, float]:
    """Mean chosen fraction of the features and the share of choices on an open edge of the grid
    (none for a linear predictor, which has no grid)."""
    if not chosen:
        return {}
    low = counts[0] if counts[0] > 1 else None
    high = counts[-1] if counts[-1] < n_features else None
    edge = [c in (low, high) for c in chosen] if len(counts) > 1 else [False]
    return {
        "max_features": float(np.mean(chosen)) / n_features,
        "max_features_open_edge": float(np.mean(edge)),
    }


def size(clf, regressor, n_features: int) -> int:
    """Parameters of a fitted pair: tree nodes of forests, coefficients + intercepts of linear."""
    if hasattr(clf, "estimators_"):
        return sum(t.tree_.node_count for m in (clf, regressor) for t in m.estimators_)
    return 2 * (n_features + 1)
