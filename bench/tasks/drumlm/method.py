"""The methods: language models fine-tuned on groove texts, and the paper's reference rows.

Every method completes the test grooves from their 2-bar prompt; the test step scores what it
wrote with the structural metrics (``metrics.py``) and saves a few grooves as MIDI + piano roll.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.errors import BenchError
from bench.method import TrainedMethod
from bench.tasks.drumlm import notation
from bench.tasks.drumlm.data import Groove, nearest_cells
from bench.tasks.drumlm.metrics import BarForm, Duplication, Stability, Validity


class GrooveMethod(TrainedMethod):
    """Completes prompts (``complete``) and scores the grooves; subclasses say how they complete."""

    def __init__(self, cfg: dict) -> None:
        super().__init__(cfg)
        self.validity = Validity()
        self.stability = Stability()
        self.human = Stability()  # the held-out grooves themselves, for the gap to human stability
        self.stability_bars = Stability(aligned=True)  # bars as the separators delimit them
        self.human_bars = Stability(aligned=True)
        self.stability_formed = Stability(formed=True)  # the well-formed bars alone
        self.human_formed = Stability(formed=True)
        self.bar_form = BarForm()
        self.dup: Duplication | None = None
        self.samples: list[tuple[str, str]] = []

    def complete(self, grooves: list[Groove]) -> list[tuple[str, str]]:
        """(prompt, completion) per groove; the prompt is the groove's own but for ``random``."""
        raise NotImplementedError

    def samples_in(self, batch: tuple[list[Groove]]) -> int:
        return len(batch[0])

    def on_test_start(self) -> None:
        splits = self.trainer.datamodule.splits
        self.dup = Duplication([g.text for g in splits["train"]]).to(self.device)
        self.prompt_nn_cells = nearest_cells(splits["test"], splits["train"])

    def test_step(self, batch: tuple[list[Groove]], batch_idx: int) -> None:
        (grooves,) = batch
        done = self.complete(grooves)
        completions = [c for _, c in done]
        texts = [p + c for p, c in done]
        self.validity.update(completions)
        self.stability.update(texts)
        self.human.update([g.text for g in grooves])
        self.stability_bars.update(texts)
        self.human_bars.update([g.text for g in grooves])
        self.stability_formed.update(texts)
        self.human_formed.update([g.text for g in grooves])
        bars = [len(notation.step_lines(g.completion)) // notation.STEPS_PER_BAR for g in grooves]
        self.bar_form.update(completions, bars)
        self.dup.update(completions)
        keep = self.cfg["render"]["grooves"] - len(self.samples)
        self.samples += [(g.name, t) for g, t in zip(grooves, texts, strict=True)][: max(keep, 0)]

    def on_test_epoch_end(self) -> None:
        stab, human = self.stability.compute(), self.human.compute()
        values = {"valid_lines": self.validity.compute(), **stab, **self.dup.compute()}
        values["stability_gap"] = (stab["stability"] - human["stability"]).abs()
        values["human_stability"] = human["stability"]
        bars, human_bars = self.stability_bars.compute(), self.human_bars.compute()
        values["stability_bars"] = bars["stability"]
        values["stability_bars_gap"] = (bars["stability"] - human_bars["stability"]).abs()
        values["human_stability_bars"] = human_bars["stability"]
        formed, human_formed = self.stability_formed.compute(), self.human_formed.compute()
        values["stability_formed"] = formed["stability"]
        values["stability_formed_gap"] = (formed["stability"] - human_formed["stability"]).abs()
        values["bars_well_formed"] = self.bar_form.compute()
        values["prompt_nn_cells"] = self.prompt_nn_cells
        for k, v in values.items():
            self.log(f"test/{k}", float(v))
        self.render()

    def render(self) -> None:
        """A few completed grooves as text, MIDI and piano-roll PNG under the run folder."""
        from bench.tasks.drumlm.pianoroll import save_pianoroll

        folder = Path(self.trainer.default_root_dir) / "grooves"
        folder.mkdir(parents=True, exist_ok=True)
        for name, text in self.samples:
            grid = notation.text_to_grid(text)
            (folder / f"{name}.txt").write_text(text)
            notation.write_midi(grid, folder / f"{name}.mid")
            save_pianoroll(grid, folder / f"{name}.png", f"{self.cfg['method']}: {name}")

    def configure_optimizers(self):
        return None


KINDS = ("human", "repeat", "random", "density", "prompt_density", "repeat_mutate")


class Reference(GrooveMethod):
    """The paper's reference rows: ``human`` (the held-out continuation), ``repeat`` (bar 2 over
    and over) and ``random`` (every cell 'o' or '-' with probability 1/2, the whole groove); and
    this project's memoryless references, each after the real prompt: ``density`` (every cell a
    hit at the training grooves' rate at that step of the groove and that voice; the prompt
    unread), ``prompt_density`` (at the prompt's own rate at that step of the bar and voice,
    shrunk toward the training rate by the share that best predicts the training completions) and
    ``repeat_mutate`` (bar 2 repeated, each cell flipped at the rate a training groove's later bars
    differ from its bar 2)."""

    trains = False

    def __init__(self, cfg: dict, kind: str) -> None:
        super().__init__(cfg)
        if kind not in KINDS:
            raise BenchError(f"unknown reference {kind!r}: one of {', '.join(KINDS)}")
        self.kind = kind
        self.drawn = 0
        self.rates: np.ndarray | None = None
        self.shrink = self.flip_rate = 0.0

    def on_test_start(self) -> None:
        super().on_test_start()
        grids = [notation.text_to_grid(g.text) for g in self.trainer.datamodule.splits["train"]]
        steps = max(len(x) for x in grids)
        hits, seen = np.zeros((steps, len(notation.VOICES))), np.zeros((steps, 1))
        for x in grids:
            hits[: len(x)] += x
            seen[: len(x)] += 1
        self.rates = hits / np.maximum(seen, 1)
        if self.kind == "prompt_density":
            self.shrink = fit_shrink(grids, self.rates)
        if self.kind == "repeat_mutate":
            self.flip_rate = flip_rate(grids)

    def complete(self, grooves: list[Groove]) -> list[tuple[str, str]]:
        out = []
        cut = notation.PROMPT_BARS * notation.STEPS_PER_BAR
        for i, g in enumerate(grooves):
            n = len(notation.step_lines(g.text))
            rng = np.random.default_rng([self.cfg["seed"], self.drawn + i])
            prompt = notation.text_to_grid(g.prompt)
            if self.kind == "human":
                out.append((g.prompt, g.completion))
            elif self.kind == "random":
                out.append(notation.to_example(rng.random((n, len(notation.VOICES))) < 0.5))
            else:
                if self.kind == "repeat":
                    grid = tile(prompt[cut // 2 :], n)
                elif self.kind == "repeat_mutate":
                    grid = tile(prompt[cut // 2 :], n) ^ (rng.random((n, prompt.shape[1])) < self.flip_rate)
                elif self.kind == "density":
                    at = np.minimum(np.arange(n), len(self.rates) - 1)
                    grid = rng.random((n, prompt.shape[1])) < self.rates[at]
                else:
                    rates = prompt_rates(prompt, self.rates, self.shrink)
                    grid = rng.random((n, prompt.shape[1])) < tile(rates, n)
                grid[:cut] = prompt
                out.append((g.prompt, notation.to_example(grid)[1]))
        self.drawn += len(grooves)
        return out

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.kind == "human":
            self.log("test/round_trip_exact", round_trip(self.trainer.datamodule.splits))
        if self.kind == "prompt_density":
            self.log("test/shrink", self.shrink)
        if self.kind == "repeat_mutate":
            self.log("test/flip_rate", self.flip_rate)

    def cost(self) -> dict:
        return {"params": 0}  # a reference row is a rule: no weights


def tile(bars: np.ndarray, n: int) -> np.ndarray:
    """``bars`` (a multiple of 16 steps) repeated to ``n`` steps."""
    return np.resize(bars, (n, bars.shape[1])) if len(bars) else np.zeros((n, len(notation.VOICES)), bool)


def bar_rates(grid: np.ndarray) -> np.ndarray:
    """Per step of the bar and voice: the share of ``grid``'s whole bars with a hit there."""
    whole = len(grid) // notation.STEPS_PER_BAR * notation.STEPS_PER_BAR
    return grid[:whole].reshape(-1, notation.STEPS_PER_BAR, grid.shape[1]).mean(0)


def prompt_rates(prompt: np.ndarray, rates: np.ndarray, shrink: float) -> np.ndarray:
    """The prompt's per-step-of-the-bar rates, shrunk by ``shrink`` toward the training rates at
    that step of the bar (``rates``: per step of the groove)."""
    return (1 - shrink) * bar_rates(prompt) + shrink * bar_rates(rates)


def fit_shrink(grids: list[np.ndarray], rates: np.ndarray) -> float:
    """The shrink (grid of 0.01 .. 0.99) under which the prompt rates best predict the training
    grooves' own completions (Bernoulli log-likelihood of their cells)."""
    cut = notation.PROMPT_BARS * notation.STEPS_PER_BAR
    grids = [x for x in grids if len(x) > cut]
    grid = np.linspace(0.01, 0.99, 99)
    loglik = np.zeros_like(grid)
    for x in grids:
        rest = x[cut:]
        for j, lam in enumerate(grid):
            p = np.clip(tile(prompt_rates(x[:cut], rates, lam), len(rest)), 1e-6, 1 - 1e-6)
            loglik[j] += np.where(rest, np.log(p), np.log1p(-p)).sum()
    return float(grid[loglik.argmax()])


def flip_rate(grids: list[np.ndarray]) -> float:
    """The share of the training completions' cells that differ from their groove's bar 2."""
    cut = notation.PROMPT_BARS * notation.STEPS_PER_BAR
    diff = [x[cut:] ^ tile(x[cut // 2 : cut], len(x) - cut) for x in grids if len(x) > cut]
    return float(np.concatenate(diff).mean()) if diff else 0.0


def round_trip(splits: dict[str, list[Groove]]) -> float:
    """The share of grooves for which text -> grid -> MIDI file -> grid -> text gives the same
    text back."""
    import tempfile

    grooves = [g for gs in splits.values() for g in gs]
    exact = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "groove.mid"
        for g in grooves:
            notation.write_midi(notation.text_to_grid(g.text), path)
            exact += notation.to_example(notation.read_midi(path)) == (g.prompt, g.completion)
    return exact / max(len(grooves), 1)
