"""A groove's piano roll as a PNG: voices down, 16ths across, bar lines, the prompt shaded."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.tasks.drumlm.notation import NAMES, PROMPT_BARS, STEPS_PER_BAR  # noqa: E402


def save_pianoroll(grid: np.ndarray, path: Path, title: str) -> None:
    steps = max(len(grid), 1)
    fig, ax = plt.subplots(figsize=(max(4.0, steps / 16 * 1.6), 2.2))
    ax.axvspan(-0.5, PROMPT_BARS * STEPS_PER_BAR - 0.5, color="0.92", zorder=0)
    if len(grid):
        ax.imshow(grid.T, aspect="auto", cmap="Greys", interpolation="nearest", vmin=0, vmax=1.4, alpha=0.9)
    for b in range(0, steps + 1, STEPS_PER_BAR):
        ax.axvline(b - 0.5, color="tab:blue", lw=0.6)
    ax.set_yticks(range(len(NAMES)), NAMES, fontsize=7)
    ax.set_xlabel("16th notes (shaded: prompt)", fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
