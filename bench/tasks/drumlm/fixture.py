"""drumlm's paper-preset fixture: the Groove MIDI Dataset's layout (info.csv and MIDI files per
drummer and session) with eight rock grooves."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from bench.tasks.drumlm import notation


def rock(bars: int) -> np.ndarray:
    """Hi-hat eighths, kick on 1 and 3, snare on 2 and 4, a crash on the first beat."""
    v = {name: i for i, name in enumerate(notation.NAMES)}
    bar = np.zeros((16, 6), dtype=bool)
    bar[::2, v["hi-hat"]] = True
    bar[[0, 8], v["kick"]] = True
    bar[[4, 12], v["snare"]] = True
    grid = np.concatenate([bar] * bars)
    grid[0, v["crash"]] = True
    return grid


def gmd(root: Path) -> Path:
    """The Groove MIDI Dataset's layout: info.csv + drummerN/session/*.mid, beats and fills,
    x/4 and 6/8, train / validation / test."""
    rows = []
    for i, (split, kind, sig, bars) in enumerate(
        [
            ("train", "beat", "4-4", 5),
            ("train", "beat", "4-4", 4),
            ("train", "fill", "4-4", 4),  # fills are not used
            ("train", "beat", "6-8", 4),  # meters other than x/4 are not used
            ("train", "beat", "4-4", -4),  # two empty bars first: too short for data.bars = 3
            ("validation", "beat", "4-4", 4),
            ("test", "beat", "4-4", 4),
            ("test", "beat", "4-4", 3),
        ]
    ):
        rel = Path("drummer1") / "session1" / f"{i + 1}_rock_120_{kind}_{sig}.mid"
        (root / rel.parent).mkdir(parents=True, exist_ok=True)
        grid = rock(abs(bars))
        grid[16 + i, 5] = True  # a tom in bar 2 makes every file distinct
        if bars < 0:
            grid[: 2 * 16] = False
        notation.write_midi(grid, root / rel)
        rows.append(
            {
                "drummer": "drummer1",
                "session": "drummer1/session1",
                "id": f"drummer1/session1/{i + 1}",
                "style": "rock",
                "bpm": 120,
                "beat_type": kind,
                "time_signature": sig,
                "midi_filename": str(rel),
                "audio_filename": "",
                "duration": 8.0,
                "split": split,
            }
        )
    with open(root / "info.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def fixture(root: Path) -> list[str]:
    """Writes the fixture under ``root``; returns the overrides that point the paper preset at it."""
    gmd(root)
    return [f"data.root={root}", "data.bars=3", "data.min_bars=2"]
