"""Shared stages: the character-level GPT pretrained on English (or on its characters shuffled, the
control), and SmolLM2 converted from its GGUF file. Each is built once per sub-config
(``bench.artifacts.cached``)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

from bench.artifacts import cached
from bench.errors import BenchError
from bench.tasks.drumlm.model import CharTokenizer, chargpt, convert_smollm


def english() -> str:
    """English prose that ships with Python: the help topics of ``pydoc_data`` (~465k chars)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def shuffled(text: str, seed: int) -> str:
    """``text`` with its characters in a random order: its character frequencies, no language."""
    import numpy as np

    chars = np.array(list(text))
    return "".join(chars[np.random.default_rng(seed).permutation(len(chars))])


CORPORA = ("english", "shuffled")


def corpus_text(corpus: str, seed: int) -> str:
    """The pretraining text: English, or English shuffled by ``seed`` (the pretraining seed)."""
    return english() if corpus == "english" else shuffled(english(), seed)


def vocabulary() -> str:
    """Printable ASCII: covers the drum notation ('o', '-', newline, SEP, END) and most of the prose."""
    return "\n" + string.printable[:95]


def pretrain_chargpt(folder: Path, m: dict, p: dict, corpus: str = "english") -> None:
    """Next-character prediction on random windows of the ``corpus`` text, seeded by
    ``pretrain.seed`` on a forked generator: the run that builds the stage goes on drawing from its
    own seed's stream, as the runs that find it built do."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p["seed"])
        _pretrain(folder, m, p, corpus_text(corpus, p["seed"]))


def _pretrain(folder: Path, m: dict, p: dict, text: str) -> None:
    tok = CharTokenizer(vocabulary())
    data = torch.tensor(tok.encode(text))
    model = chargpt(m, len(tok))
    opt = torch.optim.AdamW(model.parameters(), lr=p["lr"], weight_decay=p["weight_decay"])
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, p["lr"], total_steps=p["steps"], pct_start=0.1)
    model.train()
    log = []
    for step in range(p["steps"]):
        start = torch.randint(0, len(data) - m["context"] - 1, (p["batch_size"],))
        x = torch.stack([data[s : s + m["context"]] for s in start])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 50 == 0 or step == p["steps"] - 1:
            log.append({"step": step, "loss": round(loss.item(), 4)})
    torch.save(model.state_dict(), folder / "model.pt")
    (folder / "log.json").write_text(json.dumps(log))


def pretrained_chargpt(cfg: dict, corpus: str = "english") -> dict:
    """The state dict of the character GPT pretrained on ``corpus`` (english | shuffled; cached per
    architecture)."""
    if corpus not in CORPORA:
        raise BenchError(f"unknown pretraining corpus {corpus!r}: one of {', '.join(CORPORA)}")
    m = {k: cfg["model"]["chargpt"][k] for k in ("layers", "heads", "width", "context", "dropout")}
    p = cfg["pretrain"]
    name = "chargpt_english" if corpus == "english" else f"chargpt_{corpus}"
    folder = cached(
        "drumlm", name, {"model": m, "pretrain": p}, lambda f: pretrain_chargpt(f, m, p, corpus), 1
    )
    return torch.load(folder / "model.pt", weights_only=True)


def smollm_folder() -> Path:
    """A folder holding SmolLM2-135M as a plain checkpoint and its tokenizer (cached)."""
    from bench.tasks.drumlm.model import gguf_path

    # A subfolder: the cache keeps its own config.json beside the checkpoint.
    stage = cached(
        "drumlm", "smollm2_135m", {"gguf": gguf_path().name}, lambda f: convert_smollm(f / "model"), 2
    )
    return stage / "model"
