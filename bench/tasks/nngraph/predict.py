"""Cross-validated predictions over networks: every prediction is for a network the fitted
predictor never saw.

``predictor.kind``: ``forest`` (random forests, the default: the relation of lr, degree change and
outcome is a window, not a line) or ``linear`` (standardized logistic + ridge regression).
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bench.errors import BenchError


def models(p: dict, seed: int) -> tuple:
    """(classifier, regressor) as ``predictor`` configures them."""
    if p["kind"] == "forest":
        f = {"n_estimators": p["trees"], "max_features": p["max_features"], "random_state": seed, "n_jobs": 1}
        return RandomForestClassifier(**f), RandomForestRegressor(**f)
    if p["kind"] == "linear":
        return (
            make_pipeline(StandardScaler(), LogisticRegression(C=p["classifier_c"], max_iter=5000)),
            make_pipeline(StandardScaler(), Ridge(alpha=p["ridge_alpha"])),
        )
    raise BenchError(f"unknown predictor.kind {p['kind']!r}: use forest or linear")


def out_of_fold(
    x: np.ndarray, good: np.ndarray, acc: np.ndarray, p: dict, seed: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """(good/bad probability, predicted final accuracy) per network, each from the fold holding it
    out, and the size of one fitted pair. Folds are stratified by good/bad, shuffled by ``seed``."""
    prob, reg = np.zeros(len(x)), np.zeros(len(x))
    folds = StratifiedKFold(p["folds"], shuffle=True, random_state=seed)
    for fit, held in folds.split(x, good):
        clf, regressor = models(p, seed)
        clf.fit(x[fit], good[fit])
        prob[held] = clf.predict_proba(x[held])[:, 1]
        regressor.fit(x[fit], acc[fit])
        reg[held] = regressor.predict(x[held])
    return prob, reg, size(clf, regressor, x.shape[1])


def size(clf, regressor, n_features: int) -> int:
    """Parameters of a fitted pair: tree nodes of forests, coefficients + intercepts of linear."""
    if hasattr(clf, "estimators_"):
        return sum(t.tree_.node_count for m in (clf, regressor) for t in m.estimators_)
    return 2 * (n_features + 1)
