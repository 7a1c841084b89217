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


class Reference(GrooveMethod):
    """The paper's reference rows: ``human`` (the held-out continuation), ``repeat`` (bar 2 over
    and over) and ``random`` (every cell 'o' or '-' with probability 1/2, the whole groove); and
    ``density``: the real prompt, then every cell a hit with the training grooves' rate at that
    step of the groove and that voice (a memoryless groove with the data's density profile)."""

    trains = False

    def __init__(self, cfg: dict, kind: str) -> None:
        super().__init__(cfg)
        if kind not in ("human", "repeat", "random", "density"):
            raise BenchError(f"unknown reference {kind!r}")
        self.kind = kind
        self.drawn = 0
        self.rates: np.ndarray | None = None

    def on_test_start(self) -> None:
        super().on_test_start()
        grids = [notation.text_to_grid(g.text) for g in self.trainer.datamodule.splits["train"]]
        steps = max(len(x) for x in grids)
        hits, seen = np.zeros((steps, len(notation.VOICES))), np.zeros((steps, 1))
        for x in grids:
            hits[: len(x)] += x
            seen[: len(x)] += 1
        self.rates = hits / np.maximum(seen, 1)

    def complete(self, grooves: list[Groove]) -> list[tuple[str, str]]:
        out = []
        for i, g in enumerate(grooves):
            n = len(notation.step_lines(g.text))
            if self.kind == "human":
                out.append((g.prompt, g.completion))
            elif self.kind == "repeat":
                lines = notation.step_lines(g.prompt)
                bar = lines[notation.STEPS_PER_BAR :]
                text = "\n".join(lines + bar * (n // notation.STEPS_PER_BAR))
                out.append(notation.to_example(notation.text_to_grid(text)[:n]))
            elif self.kind == "density":
                rng = np.random.default_rng([self.cfg["seed"], self.drawn + i])
                rates = self.rates[np.minimum(np.arange(n), len(self.rates) - 1)]
                grid = rng.random(rates.shape) < rates
                cut = notation.PROMPT_BARS * notation.STEPS_PER_BAR
                grid[:cut] = notation.text_to_grid(g.prompt)
                out.append((g.prompt, notation.to_example(grid)[1]))
            else:
                rng = np.random.default_rng([self.cfg["seed"], self.drawn + i])
                out.append(notation.to_example(rng.random((n, len(notation.VOICES))) < 0.5))
        self.drawn += len(grooves)
        return out

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self.kind == "human":
            self.log("test/round_trip_exact", round_trip(self.trainer.datamodule.splits))

    def cost(self) -> dict:
        return {"params": 0}  # a reference row is a rule: no weights


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
