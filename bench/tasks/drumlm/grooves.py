"""The offline groove generator: style templates, a per-groove core bar, per-bar mutations and a
fill every fourth bar, written as real (humanised) MIDI files that the paper's encoder then reads.

A template row is one voice over 16 steps ('x' hit). Each groove draws a style, a tempo and a core
bar (the template with a few extra / removed kick and snare notes); every bar copies the core with
a few random flips, bars 4, 8, ... end with a fill (snare/tom 16ths), and a crash opens the groove
and the bar after each fill. Notes are written with articulation variants (open hi-hat, rimshot,
floor tom) and timing jitter under half a 16th, so reading them back exercises the merging and the
snapping of the encoder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.tasks.drumlm.notation import NAMES, STEPS_PER_BAR, VOICES, save_events

# voice -> 16-step pattern
STYLES = {
    "rock": {"hi-hat": "x-x-x-x-x-x-x-x-", "snare": "----x-------x---", "kick": "x-------x-x-----"},
    "funk": {"hi-hat": "xxxxxxxxxxxxxxxx", "snare": "----x--x-x--x---", "kick": "x--x--x---x--x--"},
    "disco": {"hi-hat": "--x---x---x---x-", "snare": "----x-------x---", "kick": "x---x---x---x---"},
    "jazz": {"ride": "x---x--xx---x--x", "snare": "-------x-----x--", "kick": "x---------x-----"},
    "hiphop": {"hi-hat": "x-x-x-x-x-x-x-x-", "snare": "----x-------x---", "kick": "x------x-xx-----"},
    "halftime": {"ride": "x-x-x-x-x-x-x-x-", "snare": "--------x-------", "kick": "x-----x---x-----"},
}
COLUMN = {name: i for i, name in enumerate(NAMES)}
BPM = {
    "rock": (90, 130),
    "funk": (85, 110),
    "disco": (110, 130),
    "jazz": (110, 200),
    "hiphop": (70, 95),
    "halftime": (60, 80),
}
# Articulation variants written for a voice (the encoder folds them back): open hi-hat, rimshot,
# ride bell, floor / mid toms.
VARIANTS = {42: (42, 42, 46), 38: (38, 38, 40), 51: (51, 51, 53), 50: (50, 48, 43)}


def template(style: str) -> np.ndarray:
    bar = np.zeros((STEPS_PER_BAR, len(VOICES)), dtype=bool)
    for voice, row in STYLES[style].items():
        bar[:, COLUMN[voice]] = [c == "x" for c in row]
    return bar


def fill(rng: np.random.Generator, length: int) -> np.ndarray:
    """The last ``length`` steps of a fill bar: snare and tom 16ths (kick kept on the first)."""
    part = np.zeros((length, len(VOICES)), dtype=bool)
    voice = rng.choice([COLUMN["snare"], COLUMN["tom"]], size=length)
    keep = rng.random(length) < 0.8
    part[np.arange(length)[keep], voice[keep]] = True
    part[0, COLUMN["kick"]] = True
    return part


def groove(rng: np.random.Generator, bars: int, cfg: dict) -> tuple[np.ndarray, str, float]:
    """(grid, style, bpm) of one generated groove of ``bars`` bars."""
    style = str(rng.choice(sorted(STYLES)))
    core = template(style)
    for col in (COLUMN["kick"], COLUMN["snare"]):
        flips = rng.choice(STEPS_PER_BAR, size=rng.integers(0, cfg["core_flips"] + 1), replace=False)
        core[flips, col] ^= True
    out = []
    for b in range(bars):
        bar = core.copy()
        cells = rng.random(bar.shape) < cfg["mutation_rate"]
        cells[:, [COLUMN["crash"], COLUMN["tom"]]] = False
        bar ^= cells
        if (b + 1) % cfg["fill_every"] == 0:
            n = int(rng.choice([4, 8]))
            bar[-n:] = fill(rng, n)
        if b == 0 or b % cfg["fill_every"] == 0:
            bar[0, COLUMN["crash"]] = True
        out.append(bar)
    return np.concatenate(out), style, float(rng.uniform(*BPM[style]))


def write_humanised(
    grid: np.ndarray, path: Path, bpm: float, rng: np.random.Generator, jitter: float
) -> None:
    """A type-1 MIDI file like the Groove MIDI Dataset's: meta track + drum track, velocities and
    onsets varied (at most ``jitter`` of a 16th early or late), articulation variants."""
    tpb = 480
    step = tpb // 4
    events = []
    for s, v in zip(*np.nonzero(grid), strict=True):
        note = int(rng.choice(VARIANTS.get(VOICES[v], (VOICES[v],))))
        on = max(0, int(s) * step + int(rng.uniform(-jitter, jitter) * step))
        vel = int(rng.integers(40, 128))
        events += [(on, 1, note, vel), (on + step // 3, 0, note, 0)]
    save_events(events, path, bpm, tpb, len(grid) * step)


def write_dataset(folder: Path, cfg: dict) -> list[str]:
    """Write ``cfg['grooves']`` MIDI files named ``<i>_<style>_<bpm>_beat_4-4.mid``; returns the names."""
    rng = np.random.default_rng(cfg["generator_seed"])
    names = []
    for i in range(cfg["grooves"]):
        # One bar more than encoded: a performance runs past the window the encoder keeps.
        grid, style, bpm = groove(rng, cfg["bars"] + 1, cfg)
        name = f"{i}_{style}_{round(bpm)}_beat_4-4.mid"
        write_humanised(grid, folder / name, bpm, rng, cfg["jitter"])
        names.append(name)
    return names
