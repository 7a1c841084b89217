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
CYMBALS = [notation.NAMES.index(n) for n in ("crash", "ride", "hi-hat")]
DRUMS = [notation.NAMES.index(n) for n in ("snare", "kick", "tom")]


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
    # columns: crash ride snare kick hi-hat tom
    assert lines[0] == "o--oo-" and lines[1] == "------" and lines[4] == "--o-o-"
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
        (7 * s, 22),  # hi-hat edge -> hi-hat
        (8 * s, 26),  # open hi-hat edge -> hi-hat
        (9 * s, 55),  # crash edge -> crash
        (10 * s, 52),  # crash 2 edge -> crash
        (11 * s, 58),  # tom 3 rim -> tom
    ]
    grid = notation.read_midi(midi_file(tmp_path / "a.mid", notes, end=16 * s))
    assert grid.shape == (16, 6)
    hits = {(int(a), int(b)) for a, b in zip(*np.nonzero(grid), strict=True)}
    names = ("crash", "snare", "kick", "hi-hat", "tom")
    crash, snare, kick, hihat, tom = (notation.NAMES.index(n) for n in names)
    assert hits == {(0, crash), (1, hihat), (2, snare), (4, tom), (6, kick), (7, hihat), (8, hihat)} | {
        (9, crash),
        (10, crash),
        (11, tom),
    }


def test_reader_keeps_any_quarter_meter_and_rejects_others_and_garbage(tmp_path: Path) -> None:
    grid, beats = notation.read_midi_meter(midi_file(tmp_path / "w.mid", [(0, 36)], sig=(3, 4), end=96 * 3))
    assert beats == 3 and grid.shape == (12, 6)
    with pytest.raises(BenchError, match="6/8"):
        notation.read_midi(midi_file(tmp_path / "e.mid", [(0, 36)], sig=(6, 8)))
    (tmp_path / "bad.mid").write_bytes(b"not midi")
    with pytest.raises(BenchError, match="not a readable MIDI"):
        notation.read_midi(tmp_path / "bad.mid")


def test_trim_is_the_official_window_strip_and_length_rule() -> None:
    """A window of ``bars`` bars of the meter padded with rests; a whole 16-line bar dropped while
    the first quarter is empty (a hit later in that bar goes with it); kept when more than
    ``min_bars`` bars remain."""
    late = rock(3)
    late[:16] = False
    late[6, 0] = True  # bar 1: a hit after an empty first quarter
    assert (notation.trim(late, 3, 1) == rock(3)[16:]).all()
    assert notation.trim(late, 3, 2) is None
    short = notation.trim(rock(2), 3, 2)  # 2 bars of hits, padded to the 3-bar window
    assert short.shape == (48, 6) and (short[:32] == rock(2)).all() and not short[32:].any()
    assert notation.trim(rock(5), 3, 2).shape == (48, 6)
    assert notation.trim(rock(4), 3, 2, beats=3).shape == (36, 6)  # 3 bars of 3/4: 36 16ths


def official_text(path: Path) -> list[str]:
    """zharry29/drums-with-llm's midi_to_text.py, the encoding part, transcribed: 16 bars of the
    file's meter, each note-on in its 16th window, the articulations merged into the primary
    notes, the columns in note_to_drum's key order."""
    note_to_drum = [49, 55, 57, 52, 51, 59, 53, 38, 40, 37, 36, 42, 22, 46, 26, 44, 48, 50, 45, 47, 43, 58]
    note_to_drum += [54, 56, 39]
    merge = {38: (40, 37), 51: (53, 59), 49: (57, 55, 52), 42: (46, 22, 26), 50: (48, 47, 45, 43, 58)}
    primary = [49, 51, 42, 38, 36, 50]
    mid = mido.MidiFile(path, clip=True)
    sig = [0, 0]
    for m in mid.tracks[0]:
        if m.type == "time_signature":
            sig = [m.numerator, m.denominator]
    max_16ths = 16 * sig[0] * 4
    tpb = mid.ticks_per_beat
    q, e = tpb // 4, tpb // 8
    ranges = [range(0, e)] + [range(q - e + k * q, q + e + k * q) for k in range(max_16ths - 1)]
    seq = {k: ["-"] * max_16ths for k in note_to_drum}
    tick = 0
    for m in mid.tracks[0]:
        tick += m.time
        if m.type == "note_on" and m.velocity > 0:
            step = next((i for i, r in enumerate(ranges) if tick in r), -1)
            if step == -1:
                break
            seq[m.note][step] = "o"
    for key, others in merge.items():
        for i in range(max_16ths):
            if any(seq[o][i] == "o" for o in others):
                seq[key][i] = "o"
    notes = [k for k in note_to_drum if k in primary]
    return ["".join(seq[n][i] for n in notes) for i in range(max_16ths)]


def test_encoder_matches_the_official_on_gmd_like_files(tmp_path: Path) -> None:
    """Type-0 files like the Groove MIDI Dataset's (meta and notes in one track, 480 ticks a
    beat): every GMD note, onsets jittered up to half a 16th, 4/4 and 3/4, shorter and longer than
    the window; the encoder's 16-bar window equals the official text line for line."""
    rng = np.random.default_rng(0)
    gmd_notes = [36, 37, 38, 40, 42, 22, 44, 46, 26, 43, 58, 47, 45, 50, 48, 49, 55, 57, 52, 51, 59, 53]
    for i, (beats, bars) in enumerate([(4, 6), (4, 20), (3, 9), (4, 17)]):
        tpb, steps = 480, bars * beats * 4
        onsets = sorted(
            [(0, 36)]  # a kick on the first 16th: nothing stripped, the window is the whole text
            + [
                (max(0, s * 120 + int(rng.integers(-60, 60))), int(rng.choice(gmd_notes)))
                for s in range(steps)
                for _ in range(int(rng.integers(0, 3)))
            ]
        )
        track = mido.MidiTrack([mido.MetaMessage("time_signature", numerator=beats, denominator=4, time=0)])
        last = 0
        for t, note in onsets:
            track.append(mido.Message("note_on", channel=9, note=note, velocity=80, time=t - last))
            track.append(mido.Message("note_off", channel=9, note=note, velocity=0, time=0))
            last = t
        mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
        mid.tracks.append(track)
        mid.save(tmp_path / f"{i}.mid")
        grid, read_beats = notation.read_midi_meter(tmp_path / f"{i}.mid")
        window = notation.trim(grid, 16, 0, read_beats)
        assert notation.grid_lines(window) == official_text(tmp_path / f"{i}.mid"), (beats, bars)


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
        bars = notation.trim(notation.read_midi(tmp_path / "a" / name), 8, 7).reshape(8, 16, 6)
        template = grooves.template(name.split("_")[1])
        assert bars[[0, 4], 0, 0].all() and not bars[[1, 2, 3, 5, 6, 7], 0, 0].any()  # crashes
        for b in (1, 2, 5, 6):
            assert (bars[b] == template).all()
        for b in (3, 7):  # fills: template up to step 8, no cymbal time-keeping in the last 4 steps
            assert (bars[b, :8] == template[:8]).all()
            assert not bars[b, 12:][:, CYMBALS].any() and bars[b, 12:][:, DRUMS].any()


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


def test_prompt_references_read_the_prompt_at_rates_fitted_on_training() -> None:
    """Training grooves that repeat their bar 2 exactly: no flips, and the prompt's rates need
    (almost) no shrink; with flips at a known rate the measured rate finds it. The prompt-density
    reference with shrink 0 on a 0/1-rate prompt writes the prompt's bar again; repeat_mutate with
    flip rate 0 is repeat."""
    from bench.tasks.drumlm.data import Groove
    from bench.tasks.drumlm.method import Reference, fit_shrink, flip_rate

    plain = rock(6)
    plain[0] = False  # no opening crash: every bar the same
    same = [plain, np.roll(plain, 1, axis=0)] * 2  # two grooves: the training rates are 0.5
    assert flip_rate(same) == 0.0
    rates = np.mean(same, 0)
    assert fit_shrink(same, rates) == pytest.approx(0.01)
    rng = np.random.default_rng(0)
    noisy = [x ^ np.concatenate([np.zeros((32, 6), bool), rng.random((64, 6)) < 0.1]) for x in same * 20]
    assert flip_rate(noisy) == pytest.approx(0.1, abs=0.01)
    assert fit_shrink(noisy, np.mean(noisy, 0)) > 0.05
    cfg = resolve("drumlm", ["preset=smoke", "method=prompt_density"])
    g = Groove("0_rock_100", *notation.to_example(rock(4)))
    for kind in ("prompt_density", "repeat_mutate", "repeat"):
        ref = Reference(cfg, kind)
        ref.rates, ref.shrink, ref.flip_rate = np.zeros((64, 6)), 0.0, 0.0
        ((prompt, completion),) = ref.complete([g])
        assert (prompt, completion) == (g.prompt, g.completion), kind


def test_shuffled_corpus_keeps_the_characters_not_the_order() -> None:
    from bench.tasks.drumlm.pretrain import corpus_text

    english, shuffled = corpus_text("english", 0), corpus_text("shuffled", 0)
    assert sorted(english) == sorted(shuffled) and english != shuffled
    assert shuffled == corpus_text("shuffled", 0) != corpus_text("shuffled", 1)
    assert " the " in english and shuffled.count(" the ") < english.count(" the ") / 10


def test_stability_on_well_formed_bars_drops_malformed_ones() -> None:
    bar = ["o-----"] * 15 + ["--o---"]
    other = ["--o---"] * 16
    broken = ["o-----"] * 9 + ["oo"]
    text = "\n".join(bar + ["SEP"] + bar + ["SEP"] + broken + ["SEP"] + bar + ["SEP"] + other + ["END"])
    assert stabilities(text, formed=True) == [0.0, 0.0]  # bars 1, 2, 4, 5: distances 0, 0, 30
    assert max(stabilities(text, aligned=True)) > 0


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
    the cpu preset gives the long scratch row more steps than chargpt's pretraining and
    fine-tuning together (its plateau), and the shuffled control chargpt's budget."""
    cfg = resolve("drumlm", ["preset=cpu", "method=chargpt_scratch_long"])
    names = ("chargpt", "chargpt_shuffled", "chargpt_scratch", "chargpt_scratch_long")
    steps = {m: cfg["methods"][m]["steps"] for m in names}
    assert steps["chargpt"] == steps["chargpt_scratch"] == steps["chargpt_shuffled"]
    assert steps["chargpt_scratch_long"] > steps["chargpt"] + cfg["pretrain"]["steps"]
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
