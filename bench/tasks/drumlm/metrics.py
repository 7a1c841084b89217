"""The paper's structural evaluation (official ``analysis.py`` / ``duplication_analysis.py``) as
torchmetrics objects, so their sums sync across ranks.

- validity: the share of generated lines that are a 6-voice line of 'o'/'-' or a SEP;
- stability: for each bar but the first and last (of the first 16), the smaller Levenshtein
  distance (characters, as torchmetrics' ``edit_distance``; computed bit-parallel here) to its
  previous or next bar; its mean over all bars, and per groove a 2-means
  clustering of those values (sklearn's KMeans, as the official code): ``inter`` = distance between
  the two centres, ``intra`` = mean distance of a bar to its own centre (the official script labels
  these two the other way round);
- bar-aligned stability (``aligned=True``): the same measure on the bars as the text's ``SEP``
  lines delimit them (a segment of 32 lines or more, a missed separator, is cut into 16-line
  bars), so one extra or missing line costs one bar's edit instead of shifting every later bar;
  ``BarForm``: the share of a completion's bars that are 16 valid lines;
- duplication: how often each generated non-empty bar occurs verbatim in the training grooves.
"""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import torch
from sklearn.cluster import KMeans
from torchmetrics import Metric

from bench.tasks.drumlm import notation

MAX_BARS = 16


def sep_bars(text: str) -> list[list[str]]:
    """The lines of each bar as the ``SEP`` lines delimit them (up to END, empty lines dropped);
    a segment of 2 bars' lines or more (a separator missed) is cut every 16 lines, the remainder
    joining the last piece."""
    out, bar = [], []
    for line in text.split(notation.END, 1)[0].split("\n") + [notation.SEP]:
        if line and line != notation.SEP:
            bar.append(line)
        elif line == notation.SEP and bar:
            n = notation.STEPS_PER_BAR
            k = len(bar) // n if len(bar) >= 2 * n else 1
            out += [bar[j * n : (j + 1) * n] for j in range(k - 1)] + [bar[(k - 1) * n :]]
            bar = []
    return out


def levenshtein(a: str, b: str) -> int:
    """Character edit distance (insert, delete, substitute at cost 1), by Myers' bit-parallel
    algorithm in Hyyrö's form: one pass over ``a`` with ``b``'s columns as the bits of an int."""
    if len(b) > len(a):
        a, b = b, a
    if not b:
        return len(a)
    peq: dict[str, int] = {}
    for i, c in enumerate(b):
        peq[c] = peq.get(c, 0) | 1 << i
    mask, high = (1 << len(b)) - 1, 1 << (len(b) - 1)
    pv, mv, score = mask, 0, len(b)
    for c in a:
        eq = peq.get(c, 0)
        xv = eq | mv
        xh = (((eq & pv) + pv) ^ pv) | eq
        ph = mv | ~(xh | pv) & mask
        mh = pv & xh
        score += bool(ph & high) - bool(mh & high)
        ph = (ph << 1 | 1) & mask
        mh = (mh << 1) & mask
        pv = mh | ~(xv | ph) & mask
        mv = ph & xv
    return score


def well_formed(bar: list[str]) -> bool:
    return len(bar) == notation.STEPS_PER_BAR and all(map(notation.is_valid, bar))


def stabilities(text: str, aligned: bool = False, formed: bool = False) -> list[float]:
    """Per-bar stability of a groove (prompt + completion text): bars of 16 lines as the official
    code groups them, or (``aligned``) bars as the separators delimit them, or (``formed``) those
    of them that are well formed."""
    if aligned or formed:
        bars = ["\n".join(b) for b in sep_bars(text) if not formed or well_formed(b)][:MAX_BARS]
    else:
        bars = notation.bars(notation.step_lines(text))[:MAX_BARS]
    if len(bars) < 3:
        return []
    d = [levenshtein(x, y) for x, y in zip(bars[:-1], bars[1:], strict=True)]  # dist(bar i, bar i+1)
    return [float(min(d[i - 1], d[i])) for i in range(1, len(bars) - 1)]


def two_means(values: list[float]) -> tuple[float, float]:
    """(distance between the two cluster centres, mean distance to the own centre)."""
    x = np.asarray(values, dtype=float).reshape(-1, 1)
    if len(np.unique(x)) < 2:
        return 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        km = KMeans(n_clusters=2, random_state=0, n_init=10).fit(x)
    c = km.cluster_centers_[:, 0]
    return float(abs(c[0] - c[1])), float(np.mean(np.abs(x[:, 0] - c[km.labels_])))


class Validity(Metric):
    """Share of valid lines among the generated ones (a completion with no line counts one invalid)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("valid", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, completions: list[str]) -> None:
        for c in completions:
            lines = notation.completion_lines(c)
            self.valid += sum(notation.is_valid(x) for x in lines)
            self.total += max(len(lines), 1)

    def compute(self) -> torch.Tensor:
        return self.valid / self.total.clamp(min=1)


class Stability(Metric):
    """Mean bar stability and mean per-groove 2-means inter / intra distances."""

    def __init__(self, aligned: bool = False, formed: bool = False) -> None:
        super().__init__()
        self.aligned, self.formed = aligned, formed
        for name in ("bar_sum", "bars", "inter_sum", "intra_sum", "grooves"):
            self.add_state(name, torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, texts: list[str]) -> None:
        for text in texts:
            s = stabilities(text, self.aligned, self.formed)
            if not s:
                continue
            inter, intra = two_means(s)
            self.bar_sum += sum(s)
            self.bars += len(s)
            self.inter_sum += inter
            self.intra_sum += intra
            self.grooves += 1

    def compute(self) -> dict[str, torch.Tensor]:
        g = self.grooves.clamp(min=1)
        return {
            "stability": self.bar_sum / self.bars.clamp(min=1),
            "stability_inter": self.inter_sum / g,
            "stability_intra": self.intra_sum / g,
        }


class BarForm(Metric):
    """The share of well-formed bars (16 valid step lines) among a completion's bars, counted
    against at least the number of bars the human completion has (a bar not written is not
    well formed)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_state("good", torch.tensor(0.0), dist_reduce_fx="sum")
        self.add_state("total", torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, completions: list[str], expected: list[int]) -> None:
        for c, n in zip(completions, expected, strict=True):
            bars = sep_bars(c)
            self.good += sum(map(well_formed, bars))
            self.total += max(len(bars), n)

    def compute(self) -> torch.Tensor:
        return self.good / self.total.clamp(min=1)


class Duplication(Metric):
    """Of the generated non-empty bars: the share found verbatim in training, mean occurrences."""

    def __init__(self, train_texts: list[str]) -> None:
        super().__init__()
        self.counts = Counter(b for t in train_texts for b in notation.bars(notation.step_lines(t)))
        for name in ("found", "occurrences", "bars"):
            self.add_state(name, torch.tensor(0.0), dist_reduce_fx="sum")

    def update(self, completions: list[str]) -> None:
        for c in completions:
            for bar in notation.bars(notation.step_lines(c)):
                if "o" not in bar:
                    continue
                n = self.counts.get(bar, 0)
                self.found += n > 0
                self.occurrences += n
                self.bars += 1

    def compute(self) -> dict[str, torch.Tensor]:
        b = self.bars.clamp(min=1)
        return {"dup_rate": self.found / b, "dup_mean": self.occurrences / b}
