"""The paper preset's real-format fixture: a CSV of points."""

import numpy as np


def fixture(root):
    x = np.linspace(-1, 1, 20)
    np.savetxt(root / "points.csv", np.stack([x, 2 * x], 1), delimiter=",")
    return [f"data.root={root}"]
