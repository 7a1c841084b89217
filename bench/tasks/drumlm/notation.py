"""The paper's drum notation: MIDI <-> a 16th-note grid <-> text.

A groove is a boolean grid (steps x 6 voices), a ``SEP`` every 16 steps. Its text has one line per
16th with a character per voice ('o' hit, '-' rest), a ``SEP`` line after every 16 lines; the
prompt is the first two bars, the completion the rest, ending with ``END`` (zharry29/drums-with-llm's
``text_to_data.py``). Voices in the official column order (``midi_to_text.py`` keeps the primary
notes in ``note_to_drum``'s key order): crash 49, ride 51, snare 38, kick 36, hi-hat 42, tom 50;
the other Groove MIDI Dataset articulations are merged into them as ``merge_articulations`` does.
"""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np

from bench.errors import BenchError

VOICES = (49, 51, 38, 36, 42, 50)  # crash, ride, snare, kick, hi-hat, tom
NAMES = ("crash", "ride", "snare", "kick", "hi-hat", "tom")
# Articulations folded into a primary voice (official merge_articulations): crash edges 55, 52 and
# crash 2 (57); ride edge 59 and bell 53; rimshot 40 and side stick 37; hi-hat edges 22, 26 and
# open 46; toms 48, 47, 45, 43 and the tom-3 rim 58. Anything else (pedal hi-hat 44, ...) is dropped.
MERGE = {57: 49, 55: 49, 52: 49, 53: 51, 59: 51, 40: 38, 37: 38, 46: 42, 22: 42, 26: 42}
MERGE |= {48: 50, 47: 50, 45: 50, 43: 50, 58: 50}
STEPS_PER_BAR = 16
SEP, END = "SEP", "END"
PROMPT_BARS = 2


def read_midi(path: str | Path) -> np.ndarray:
    """The full grid of a MIDI file: see ``read_midi_meter``."""
    return read_midi_meter(path)[0]


def read_midi_meter(path: str | Path) -> tuple[np.ndarray, int]:
    """(grid, beats per bar) of an x/4 MIDI file: each note-on snapped to the nearest 16th (a
    note half a step early or later goes to the later step, as the official windows do); the meter
    is the last time signature (the official script's), 4/4 without one."""
    try:
        mid = mido.MidiFile(path, clip=True)
    except (OSError, EOFError, ValueError, KeyError, IndexError) as e:
        raise BenchError(f"{path} is not a readable MIDI file ({e})") from None
    sixteenth = mid.ticks_per_beat / 4
    hits, tick, beats = [], 0, 4
    for msg in mido.merge_tracks(mid.tracks):
        tick += msg.time
        if msg.type == "time_signature":
            if msg.denominator != 4:
                meter = f"{msg.numerator}/{msg.denominator}"
                raise BenchError(f"{path} is in {meter}: only x/4 grooves are encoded")
            beats = msg.numerator
        if msg.type == "note_on" and msg.velocity > 0:
            note = MERGE.get(msg.note, msg.note)
            if note in VOICES:
                hits.append((int((tick + sixteenth / 2) // sixteenth), VOICES.index(note)))
    # A groove lasts until its last hit or the end of its track, whichever is later.
    steps = max(max((s for s, _ in hits), default=-1) + 1, int(tick // sixteenth))
    grid = np.zeros((steps, len(VOICES)), dtype=bool)
    for s, v in hits:
        grid[s, v] = True
    return grid, beats


def trim(grid: np.ndarray, bars: int, min_bars: int, beats: int = 4) -> np.ndarray | None:
    """The official clean-up (``midi_to_text.py``, ``text_to_data.py``): the first ``bars`` bars of
    the file's meter (``beats`` quarters a bar), rests after its end; then, while the first quarter
    is empty, 16 lines dropped; None unless more than ``min_bars`` x 16 lines remain."""
    need = bars * beats * 4
    grid = np.concatenate([grid[:need], np.zeros((max(need - len(grid), 0), grid.shape[1]), bool)])
    while len(grid) >= 4 and not grid[:4].any():
        grid = grid[STEPS_PER_BAR:]
    return grid if len(grid) > min_bars * STEPS_PER_BAR else None


def save_events(
    events: list[tuple[int, int, int, int]], path: str | Path, bpm: float, tpb: int, end: int
) -> None:
    """Write (tick, is_on, note, velocity) events as a type-1 file: a meta track (tempo, 4/4) and a
    drum track on channel 10 ending at tick ``end``. The Groove MIDI Dataset's files are type 0 (one
    track); ``read_midi_meter`` merges the tracks, where the official encoder reads ``tracks[0]``
    only and would find no notes here."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    meta, drums = mido.MidiTrack(), mido.MidiTrack()
    meta.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm), time=0))
    meta.append(mido.MetaMessage("time_signature", numerator=4, denominator=4, time=0))
    last = 0
    for t, on, note, vel in sorted(events):
        drums.append(
            mido.Message("note_on" if on else "note_off", channel=9, note=note, velocity=vel, time=t - last)
        )
        last = t
    drums.append(mido.MetaMessage("end_of_track", time=max(0, end - last)))
    mid.tracks += [meta, drums]
    mid.save(path)


def write_midi(grid: np.ndarray, path: str | Path, bpm: float = 120.0, tpb: int = 480) -> None:
    """One note per grid hit, on its 16th, the file lasting exactly the grid's length."""
    step = tpb // 4
    events = []
    for s, v in zip(*np.nonzero(grid), strict=True):
        events += [(int(s) * step, 1, VOICES[v], 100), (int(s) * step + step // 2, 0, VOICES[v], 0)]
    save_events(events, path, bpm, tpb, len(grid) * step)


def grid_lines(grid: np.ndarray) -> list[str]:
    return ["".join("o" if h else "-" for h in row) for row in grid]


def with_separators(lines: list[str]) -> list[str]:
    out = []
    for i, line in enumerate(lines, 1):
        out.append(line)
        if i % STEPS_PER_BAR == 0:
            out.append(SEP)
    return out


def to_example(grid: np.ndarray) -> tuple[str, str]:
    """(prompt, completion) text of a groove: the first two bars, then the rest ending with END."""
    lines = grid_lines(grid)
    cut = PROMPT_BARS * STEPS_PER_BAR
    prompt = "\n".join(with_separators(lines[:cut])) + "\n"
    rest = with_separators(lines[cut:])
    if rest and rest[-1] == SEP:
        rest = rest[:-1]
    return prompt, "\n".join([*rest, END])


def step_lines(text: str) -> list[str]:
    """The 16th lines of a prompt + completion, separators and everything after END removed."""
    lines = text.split(END, 1)[0].split("\n")
    return [x for x in lines if x and x != SEP]


def is_valid(line: str) -> bool:
    return line == SEP or (len(line) == len(VOICES) and set(line) <= {"o", "-"})


def completion_lines(completion: str) -> list[str]:
    """The generated lines up to END (empty lines dropped), to judge validity."""
    return [x for x in completion.split(END, 1)[0].split("\n") if x]


def text_to_grid(text: str) -> np.ndarray:
    """The grid of a text groove; invalid lines become rests (as the official converter plays
    only the 'o' characters in the first six columns)."""
    lines = step_lines(text)
    grid = np.zeros((len(lines), len(VOICES)), dtype=bool)
    for i, line in enumerate(lines):
        for v, ch in enumerate(line[: len(VOICES)]):
            grid[i, v] = ch == "o"
    return grid


def bars(lines: list[str]) -> list[str]:
    """Lines grouped into bars of 16, each bar one string (the unit of stability and duplication)."""
    return ["\n".join(lines[i : i + STEPS_PER_BAR]) for i in range(0, len(lines), STEPS_PER_BAR)]
