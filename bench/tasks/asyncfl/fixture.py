"""asyncfl's paper-preset fixture: LEAF's FEMNIST in its published JSON layout, six writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_leaf(root: Path, users: int = 6, per_user: int = 12) -> Path:
    """LEAF FEMNIST layout: root/{train,test}/*.json with users, num_samples, user_data."""
    rng = np.random.default_rng(0)
    for split, n in (("train", per_user), ("test", per_user // 2)):
        (root / split).mkdir(parents=True)
        names = [f"f{i:04d}_{i:02d}" for i in range(users)]
        blob = {
            "users": names,
            "num_samples": [n] * users,
            "user_data": {
                u: {"x": rng.random((n, 784)).round(3).tolist(), "y": rng.integers(0, 62, n).tolist()}
                for u in names
            },
        }
        (root / split / f"all_data_0_niid_0_keep_0_{split}_9.json").write_text(json.dumps(blob))
    return root


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    write_leaf(root / "femnist", users=6)
    fixture = [f"data.root={root / 'femnist'}", "data.num_clients=6", "data.val_size=5"]
    return [*fixture, "sim.concurrency=[2,4]"]  # at most the fixture's 6 clients
