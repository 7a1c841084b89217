"""Shared stages: the character-level GPT pretrained on English, and SmolLM2 converted from its
GGUF file. Both are built once per sub-config (``bench.artifacts.cached``)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import torch

from bench.artifacts import cached
from bench.tasks.drumlm.model import CharTokenizer, chargpt, convert_smollm


def english() -> str:
    """English prose that ships with Python: the help topics of ``pydoc_data`` (~465k chars)."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def vocabulary() -> str:
    """Printable ASCII: covers the drum notation ('o', '-', newline, SEP, END) and most of the prose."""
    return "\n" + string.printable[:95]


def pretrain_chargpt(folder: Path, m: dict, p: dict) -> None:
    """Next-character prediction on random windows of the English corpus, seeded by
    ``pretrain.seed`` on a forked generator: the run that builds the stage goes on drawing from its
    own seed's stream, as the runs that find it built do."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(p["seed"])
        _pretrain(folder, m, p)


def _pretrain(folder: Path, m: dict, p: dict) -> None:
    tok = CharTokenizer(vocabulary())
    data = torch.tensor(tok.encode(english()))
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


def pretrained_chargpt(cfg: dict) -> dict:
    """The state dict of the English-pretrained character GPT (cached per architecture)."""
    m = {k: cfg["model"]["chargpt"][k] for k in ("layers", "heads", "width", "context", "dropout")}
    p = cfg["pretrain"]
    folder = cached(
        "drumlm", "chargpt_english", {"model": m, "pretrain": p}, lambda f: pretrain_chargpt(f, m, p), 1
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
