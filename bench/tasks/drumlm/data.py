"""Grooves as (prompt, completion) texts, read from MIDI files by the paper's encoder.

``data.source=generated`` (offline default): the groove generator writes MIDI files once per
generator config (a cached stage); the grooves of the styles in ``data.test_styles`` are the test
split (their template never occurs in training, so a test prompt has no near-copy there), the
others are split at random into train / val (``data.test_styles: null``: all three at random).
``data.source=real``: the Groove MIDI Dataset under ``data.root`` (``info.csv`` +
``drummerN/sessionM/*.mid``): its x/4 ``beat`` files in the csv's own train / validation / test
split. Every file is encoded as the official scripts do (``notation.trim``: the first ``data.bars``
bars, leading empty bars dropped, kept when more than ``data.min_bars`` bars remain) and
de-duplicated.

A batch is ``(grooves,)``, a one-tuple holding a list of ``Groove``: each method tokenizes them its
own way (the harness counts test samples as the length of a batch's first element).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from bench.artifacts import cached
from bench.errors import BenchError
from bench.tasks.drumlm import grooves, notation

GMD_URL = "https://magenta.tensorflow.org/datasets/groove"


@dataclass
class Groove:  # not frozen: Lightning moves batches with apply_to_collection
    name: str
    prompt: str
    completion: str

    @property
    def text(self) -> str:
        return self.prompt + self.completion

    @property
    def style(self) -> str:
        """The style in a generated groove's name (``<i>_<style>_<bpm>_beat_4-4``)."""
        parts = self.name.split("_")
        return parts[1] if len(parts) > 1 else ""


def encode_files(paths: list[Path], bars: int, min_bars: int) -> list[Groove]:
    """Encode, trim and de-duplicate (identical texts kept once, as the official
    split_data_legacy.py does; split_data.py, whose info.csv split the real data follows, keeps
    them)."""
    out, seen = [], set()
    for path in paths:
        grid, beats = notation.read_midi_meter(path)
        grid = notation.trim(grid, bars, min_bars, beats)
        if grid is None:
            continue
        g = Groove(path.stem, *notation.to_example(grid))
        if g.text not in seen:
            seen.add(g.text)
            out.append(g)
    return out


def encode_generated(folder: Path, gen: dict, min_bars: int) -> None:
    """The generator's MIDI files (a stage of their own) read by the encoder, saved as texts:
    reading 240 files with mido takes seconds, and every run needs them."""
    midi = cached("drumlm", "grooves", gen, lambda f: grooves.write_dataset(f, gen))
    paths = sorted(midi.glob("*.mid"), key=lambda p: int(p.stem.split("_")[0]))
    items = encode_files(paths, gen["bars"], min_bars)
    (folder / "grooves.json").write_text(json.dumps([[g.name, g.prompt, g.completion] for g in items]))


def generated(d: dict) -> dict[str, list[Groove]]:
    gen = {**d["generator"], "bars": d["bars"]}
    encoding = {**gen, "min_bars": d["min_bars"], "voices": list(notation.VOICES)}
    folder = cached("drumlm", "groove_texts", encoding, lambda f: encode_generated(f, gen, d["min_bars"]))
    items = [Groove(*x) for x in json.loads((folder / "grooves.json").read_text())]
    order = np.random.default_rng(gen["generator_seed"]).permutation(len(items))
    pick = [items[i] for i in order]
    n_val, n_test = d["val_size"], d["test_size"]
    held = set(d["test_styles"] or ())
    if held:
        unknown = held - set(grooves.STYLES)
        if unknown:
            raise BenchError(
                f"data.test_styles names unknown styles {sorted(unknown)}: choose of {sorted(grooves.STYLES)}"
            )
        test = [g for g in pick if g.style in held]
        pick = [g for g in pick if g.style not in held]
        n_test = 0
    if n_val + n_test >= len(pick):
        raise BenchError(
            f"data.val_size + data.test_size = {n_val + n_test} leaves no training grooves of {len(pick)}"
        )
    if not held:
        test = pick[n_val : n_val + n_test]
    return {"val": pick[:n_val], "test": test, "train": pick[n_val + n_test :]}


def nearest_cells(grooves_a: list[Groove], grooves_b: list[Groove]) -> float:
    """Mean over ``grooves_a`` of the fewest grid cells in which its prompt differs from a prompt
    of ``grooves_b`` (how near a copy of a test prompt the training set holds)."""
    if not grooves_a or not grooves_b:
        return float("nan")
    a = np.stack([notation.text_to_grid(g.prompt).ravel() for g in grooves_a])
    b = np.stack([notation.text_to_grid(g.prompt).ravel() for g in grooves_b])
    return float((a[:, None, :] != b[None, :, :]).sum(-1).min(1).mean())


def groove_midi(d: dict) -> dict[str, list[Groove]]:
    """The Groove MIDI Dataset's x/4 beats in its own split (``info.csv``: split, beat_type,
    time_signature, midi_filename)."""
    if not d["root"]:
        raise BenchError(
            f"data.source=real needs data.root (or BENCH_DATA): the Groove MIDI Dataset from {GMD_URL}"
        )
    root = Path(d["root"])
    info = root / "info.csv"
    if not info.exists():
        raise BenchError(f"no info.csv under {root}: unzip groove-v1.0.0-midionly.zip there ({GMD_URL})")
    with open(info, newline="") as fh:
        rows = list(csv.DictReader(fh))
    need = {"split", "beat_type", "time_signature", "midi_filename"}
    if not rows or not need <= set(rows[0]):
        raise BenchError(f"{info} lacks the columns {sorted(need)}: not the Groove MIDI Dataset's info.csv")
    names = {"train": "train", "validation": "val", "test": "test"}
    splits = {}
    for split, key in names.items():
        paths = [
            root / r["midi_filename"]
            for r in rows
            if r["split"] == split and r["beat_type"] == "beat" and r["time_signature"].endswith("-4")
        ]
        missing = [p for p in paths if not p.exists()]
        if missing:
            raise BenchError(f"{len(missing)} MIDI files named in {info} are missing, e.g. {missing[0]}")
        splits[key] = encode_files(paths, d["bars"], d["min_bars"])
    for key in ("train", "test"):
        if not splits[key]:
            raise BenchError(f"no x/4 beat of more than {d['min_bars']} bars in the {key} split of {info}")
    return splits


def collate(items: list[Groove]) -> tuple[list[Groove]]:
    return (items,)


class GrooveDataModule(L.LightningDataModule):
    """Train / val / test grooves; the test split is capped at ``data.test_size``. The training
    order is drawn from a generator of the run's seed alone, so every method sees the same batches
    on one seed, whatever its initialisation drew."""

    def __init__(self, cfg: dict) -> None:
        super().__init__()
        self.d = cfg["data"]
        self.order = torch.Generator().manual_seed(cfg["seed"])
        if self.d["bars"] <= notation.PROMPT_BARS:
            raise BenchError(f"data.bars={self.d['bars']} must exceed the {notation.PROMPT_BARS} prompt bars")
        self.splits: dict[str, list[Groove]] | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is None:
            source = self.d["source"]
            if source not in ("generated", "real"):
                raise BenchError(f"unknown data.source {source!r}: choose generated or real")
            self.splits = generated(self.d) if source == "generated" else groove_midi(self.d)
            self.splits["test"] = self.splits["test"][: self.d["test_size"]]

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.splits["train"],
            batch_size=self.d["batch_size"],
            shuffle=True,
            generator=self.order,
            collate_fn=collate,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["val"], batch_size=self.d["batch_size"], collate_fn=collate)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.splits["test"], batch_size=self.d["test_batch_size"], collate_fn=collate)
