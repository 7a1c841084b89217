"""drumlm: the paper's notation (MIDI <-> text, exact round trip), the groove generator, the
structural metrics, the Groove MIDI Dataset layout on a hand-written fixture, and its errors."""

from __future__ import annotations

from pathlib import Path

import mido
import numpy as np
import pytest

from bench.config import resolve
from bench.errors import BenchError
from bench.tasks.drumlm import grooves, notation
from bench.tasks.drumlm.data import GrooveDataModule, nearest_cells
from bench.tasks.drumlm.fixture import gmd, rock
from bench.tasks.drumlm.metrics import (
    BarForm,
    Duplication,
    Stability,
    Validity,
    levenshtein,
    sep_bars,
    stabilities,
    two_means,
)

ROCK = "x-x-x-x-x-x-x-x-"  # hi-hat eighths


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))


def midi_file(
    path: Path, notes: list[tuple[int, int]], tpb: int = 96, sig: tuple[int, int] = (4, 4), end: int = 0
) -> Path:
    """A GMD-like type-1 file written by hand: (absolute tick, note) onsets on channel 10."""
    mid = mido.MidiFile(type=1, ticks_per_beat=tpb)
    meta, drums = mido.MidiTrack(), mido.MidiTrack()
    meta.append(mido.MetaMessage("time_signature", numerator=sig[0], denominator=sig[1], time=0))
    last = 0
    for tick, note in sorted(notes):
        drums.append(mido.Message("note_on", channel=9, note=note, velocity=90, time=tick - last))
        drums.append(mido.Message("note_off", channel=9, note=note, velocity=0, time=0))
        last = tick
    drums.append(mido.MetaMessage("end_of_track", time=max(0, end - last)))
    mid.tracks += [meta, drums]
    mid.save(path)
    return path


def test_text_format_is_the_papers() -> None:
    prompt, completion = notation.to_example(rock(4))
    lines = prompt.split("\n")
    assert lines[0] == "o-o-o-" and lines[1] == "------" and lines[4] == "--oo--"
    assert prompt.endswith("SEP\n") and prompt.count("SEP") == 2 and len(lines) == 2 * 17 + 1
    assert completion.endswith("------\nEND") and completion.count("SEP") == 1  # no SEP before END
    assert all(notation.is_valid(x) for x in notation.completion_lines(completion))
    assert (notation.text_to_grid(prompt + completion) == rock(4)).all()


def test_midi_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    grid = rng.random((64, 6)) < 0.3
    notation.write_midi(grid, tmp_path / "g.mid")
    back = notation.read_midi(tmp_path / "g.mid")
    assert back.shape == grid.shape and (back == grid).all()
    assert notation.to_example(back) == notation.to_example(grid)


def test_reader_snaps_merges_and_drops(tmp_path: Path) -> None:
    s = 24  # a 16th at 96 ticks per beat
    notes = [
        (0, 57),  # crash 2 -> crash
        (s - 11, 46),  # open hi-hat, 11 ticks early -> step 1, hi-hat
        (2 * s + 11, 40),  # rimshot, 11 ticks late -> step 2, snare
        (3 * s + 12, 43),  # floor tom exactly half a 16th late -> the later step (4)
        (5 * s, 44),  # pedal hi-hat: not one of the six voices, dropped
        (6 * s, 36),
    ]
    grid = notation.read_midi(midi_file(tmp_path / "a.mid", notes, end=16 * s))
    assert grid.shape == (16, 6)
    hits = {(int(a), int(b)) for a, b in zip(*np.nonzero(grid), strict=True)}
    assert hits == {(0, 0), (1, 2), (2, 3), (4, 5), (6, 4)}


def test_reader_rejects_other_meters_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="3/4"):
        notation.read_midi(midi_file(tmp_path / "w.mid", [(0, 36)], sig=(3, 4)))
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    with pytest.raises(BenchError, match="not a readable MIDI"):
        notation.read_midi(tmp_path / "bad.mid")


def test_trim_strips_leading_empty_quarters_and_drops_short() -> None:
    grid = np.concatenate([np.zeros((8, 6), dtype=bool), rock(2)])
    assert (notation.trim(grid, 2) == rock(2)).all()
    assert notation.trim(rock(2), 3) is None


def test_generator_is_deterministic_with_fills_and_crashes(tmp_path: Path) -> None:
    # No mutations: plain bars are the style template, fills replace at most the last 8 steps.
    cfg = {
        "grooves": 4,
        "generator_seed": 3,
        "bars": 8,
        "core_flips": 0,
        "mutation_rate": 0.0,
        "fill_every": 4,
        "jitter": 0.4,
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    names = grooves.write_dataset(tmp_path / "a", cfg)
    assert names == grooves.write_dataset(tmp_path / "b", cfg)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        bars = notation.trim(notation.read_midi(tmp_path / "a" / name), 8).reshape(8, 16, 6)
        template = grooves.template(name.split("_")[1])
        assert bars[[0, 4], 0, 0].all() and not bars[[1, 2, 3, 5, 6, 7], 0, 0].any()  # crashes
        for b in (1, 2, 5, 6):
            assert (bars[b] == template).all()
        for b in (3, 7):  # fills: template up to step 8, no cymbal time-keeping in the last 4 steps
            assert (bars[b, :8] == template[:8]).all()
            assert not bars[b, 12:, :3].any() and bars[b, 12:, 3:].any()


def test_stability_and_two_means() -> None:
    a, b = rock(1), rock(1)
    b[1, 4] = True  # one cell differs: one character
    text = "\n".join(notation.grid_lines(np.concatenate([a, a, b, a, a])))
    assert stabilities(text) == [0.0, 1.0, 0.0]  # bars 2-4: each one's nearer neighbour
    assert two_means([0.0, 0.0, 4.0, 4.0]) == (4.0, 0.0)
    m = Stability()
    m.update([text])
    out = m.compute()
    assert out["stability"].item() == pytest.approx(1 / 3)
    assert out["stability_inter"].item() == pytest.approx(1.0) and out["stability_intra"].item() == 0.0


def test_levenshtein_is_exact() -> None:
    """The bit-parallel distance equals the textbook dynamic programme (torchmetrics'
    edit_distance is a beam-limited search: it overestimates some far-apart bar pairs)."""

    def table(a: str, b: str) -> int:
        prev = list(range(len(b) + 1))
        for i, x in enumerate(a, 1):
            cur = [i]
            for j, y in enumerate(b, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
            prev = cur
        return prev[-1]

    rng = np.random.default_rng(0)
    lines = ["------", "o-----", "--o-o-", "o-o-oo", "SEP"]
    for _ in range(300):
        a, b = ("\n".join(rng.choice(lines, rng.integers(0, 24))) for _ in range(2))
        assert levenshtein(a, b) == table(a, b)
    assert levenshtein("rain", "shine") == 3 and levenshtein("", "abc") == 3


def test_bar_aligned_stability_charges_an_extra_line_once() -> None:
    prompt, completion = notation.to_example(rock(6))
    text = prompt + completion
    assert stabilities(text, aligned=True) == stabilities(text) == [0.0] * 4
    lines = text.split("\n")
    shifted = "\n".join([*lines[:40], "------", *lines[40:]])  # one extra line in bar 3
    assert [len(b) for b in sep_bars(shifted)] == [16, 16, 17, 16, 16, 16]
    # bar 3 costs a line + newline; bar 2 falls back on bar 1 (its crash: one cell)
    assert stabilities(shifted, aligned=True) == [1.0, 7.0, 0.0, 0.0]
    assert sum(stabilities(shifted)) > 7.0  # the 16-line grouping shifts every later bar
    # a missed separator: 32 lines in one segment are cut into two bars
    merged = text.replace("SEP\n", "", 3)
    assert [len(b) for b in sep_bars(merged)][:2] == [16, 16]


def test_bar_form_counts_missing_and_malformed_bars() -> None:
    _, completion = notation.to_example(rock(6))  # 4 well-formed bars
    m = BarForm()
    m.update([completion], [4])
    assert m.compute().item() == 1.0
    lines = completion.split("\n")
    m = BarForm()
    m.update(["\n".join([*lines[:17], "END"]), "\n".join(["oo", *lines[1:]])], [4, 4])
    assert m.compute().item() == pytest.approx(4 / 8)  # 1 of 4 written; 3 of 4 (one bad line)


def test_held_out_styles_are_the_test_split() -> None:
    cfg = resolve("drumlm", ["preset=cpu", "data.generator.grooves=60", "data.val_size=4"])
    dm = GrooveDataModule(cfg)
    dm.setup()
    held = set(cfg["data"]["test_styles"])
    assert dm.splits["test"] and {g.style for g in dm.splits["test"]} <= held
    assert not held & {g.style for g in dm.splits["train"] + dm.splits["val"]}
    assert nearest_cells(dm.splits["test"], dm.splits["train"]) > 0
    assert nearest_cells(dm.splits["train"][:3], dm.splits["train"]) == 0
    with pytest.raises(BenchError, match="unknown styles"):
        GrooveDataModule(resolve("drumlm", ["preset=cpu", "data.test_styles=[polka]"])).setup()


def test_density_reference_keeps_the_prompt_and_matches_training_rates() -> None:
    from bench.tasks.drumlm.method import Reference

    cfg = resolve("drumlm", ["preset=smoke", "method=random_density"])
    ref = Reference(cfg, "density")
    grid = rock(3)
    ref.rates = np.repeat(grid[None].astype(float), 1, 0)[0]  # rates 0/1: the training groove itself
    g = notation.to_example(grid)
    from bench.tasks.drumlm.data import Groove

    ((prompt, completion),) = ref.complete([Groove("0_rock_100", *g)])
    assert prompt == g[0] and completion == g[1]


def test_packing_fills_training_sequences_to_the_context() -> None:
    from bench.tasks.drumlm.data import Groove
    from bench.tasks.drumlm.lm import LanguageModel

    cfg = resolve("drumlm", ["preset=cpu", "method=chargpt_scratch"])
    lm = LanguageModel(cfg, "chargpt", pretrained=False)
    grooves = [Groove(f"{i}_rock_100", *notation.to_example(rock(3))) for i in range(2)]
    nll, completion, real = lm.token_nll(grooves, pack=True)
    assert nll.shape[1] == cfg["model"]["chargpt"]["context"] - 1 and real.all()
    prompt = len(grooves[0].prompt)
    assert completion[:, prompt - 1 :].all() and not completion[:, : prompt - 1].any()
    nll, _, real = lm.token_nll(grooves)
    assert nll.shape[1] == len(grooves[0].text) - 1


def test_each_model_has_its_own_step_budget(bench_run) -> None:
    """``methods.<name>.steps`` caps a model's optimiser steps (the trainer's max_steps caps all);
    the cpu preset gives the long scratch row more steps than the equal-budget pair."""
    cfg = resolve("drumlm", ["preset=cpu", "method=chargpt_scratch_long"])
    steps = {m: cfg["methods"][m]["steps"] for m in ("chargpt", "chargpt_scratch", "chargpt_scratch_long")}
    assert steps["chargpt"] == steps["chargpt_scratch"] < steps["chargpt_scratch_long"]
    assert steps["chargpt_scratch_long"] <= cfg["trainer"]["max_steps"]
    args = ("preset=smoke", "trainer.max_steps=3", "methods.chargpt_scratch.steps=1")
    code, rec = bench_run("drumlm", "method=chargpt_scratch", *args)
    assert code == 0 and rec["status"] == "ok", rec["error"]
    context = rec["config"]["model"]["chargpt"]["context"]
    batch = rec["config"]["data"]["batch_size"]
    assert rec["metrics"]["test/finetune_tokens"] <= batch * context  # one step of one packed batch


def test_validity_and_duplication() -> None:
    v = Validity()
    v.update(["o-----\nSEP\noo\n------\nEND", ""])
    assert v.compute().item() == pytest.approx(3 / 5)  # 3 of 4 lines, and an empty completion
    train = "\n".join(notation.grid_lines(rock(2)))
    d = Duplication([train])
    _, completion = notation.to_example(rock(4))
    d.update([completion])
    out = d.compute()
    assert out["dup_rate"].item() == 1.0 and out["dup_mean"].item() == 1.0


def test_groove_midi_layout_is_read_in_its_split(tmp_path: Path) -> None:
    root = gmd(tmp_path / "groove")
    dm = GrooveDataModule(resolve("drumlm", ["preset=smoke", "data.source=real", f"data.root={root}"]))
    dm.setup()
    assert {k: len(v) for k, v in dm.splits.items()} == {"train": 2, "val": 1, "test": 2}
    assert all(len(notation.step_lines(g.text)) == 3 * 16 for gs in dm.splits.values() for g in gs)


def test_groove_midi_runs_end_to_end(bench_run, tmp_path: Path) -> None:
    root = gmd(tmp_path / "groove")
    code, record = bench_run(
        "drumlm", "method=human", "preset=smoke", "data.source=real", f"data.root={root}"
    )
    assert code == 0 and record["status"] == "ok", record["error"]
    assert record["metrics"]["test/round_trip_exact"] == 1.0
    assert record["metrics"]["test/valid_lines"] == 1.0


def test_bad_inputs_are_one_line_errors(tmp_path: Path) -> None:
    def setup(*args: str) -> None:
        GrooveDataModule(resolve("drumlm", ["preset=smoke", *args])).setup()

    with pytest.raises(BenchError, match="data.root"):
        setup("data.source=real")
    with pytest.raises(BenchError, match="info.csv"):
        setup("data.source=real", f"data.root={tmp_path}")
    root = gmd(tmp_path / "groove")
    (root / "drummer1" / "session1" / "1_rock_120_beat_4-4.mid").unlink()
    with pytest.raises(BenchError, match="missing"):
        setup("data.source=real", f"data.root={root}")
    with pytest.raises(BenchError, match="unknown data.source"):
        setup("data.source=youtube")
    with pytest.raises(BenchError, match="prompt bars"):
        setup("data.bars=2")
    with pytest.raises(BenchError, match="no training grooves"):
        setup("data.test_size=20")
