"""The fine-tuned language models: the character GPT and SmolLM2-135M, pretrained or from scratch.

Training follows the paper's GPT-3 fine-tuning: the loss is on prompt + completion tokens with
the prompt's weighted by ``optim.prompt_loss_weight`` (OpenAI's default 0.01). With
``optim.pack`` each training sequence is filled up to the model context with the next groove of
the batch (full weight), so every position generation can reach is trained. The learning rate is
the method's own (``methods.<name>.lr``, chosen on the validation bits per character, logged as
``val/bits_per_char``) or ``optim.lr``, and so is the fine-tuning budget (``methods.<name>.steps``,
else ``model.<family>.max_steps``; the trainer's ``max_steps`` caps both). Test: the bits per
character of the held-out completions (teacher forced), then sampling at
``generate.temperature`` (0.9, no top-k / top-p) from the 2-bar prompt until END.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from transformers import StoppingCriteria, StoppingCriteriaList

from bench.errors import BenchError
from bench.tasks.drumlm import notation
from bench.tasks.drumlm.data import Groove
from bench.tasks.drumlm.method import GrooveMethod
from bench.tasks.drumlm.model import CharTokenizer, chargpt
from bench.tasks.drumlm.pretrain import pretrained_chargpt, smollm_folder, vocabulary


class UntilEnd(StoppingCriteria):
    """Stops each sequence once its generated text holds END."""

    def __init__(self, decode, start: int) -> None:
        self.decode, self.start = decode, start

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.Tensor:
        tail = input_ids[:, max(self.start, input_ids.shape[1] - 8) :]
        return torch.tensor(
            [notation.END in self.decode(row.tolist()) for row in tail], device=input_ids.device
        )


class LanguageModel(GrooveMethod):
    """``family`` chargpt | smollm; ``pretrained`` loads the English-pretrained weights (else the
    same architecture starts from random weights and is trained fully); ``corpus`` (chargpt) the
    pretraining text: english, or shuffled (the same characters in a random order)."""

    def __init__(
        self,
        cfg: dict,
        family: str,
        pretrained: bool,
        lr: float | None = None,
        steps: int | None = None,
        corpus: str = "english",
    ) -> None:
        super().__init__(cfg)
        self.family, self.pretrained = family, pretrained
        self.lr = float(lr if lr is not None else cfg["optim"]["lr"])
        m = cfg["model"][family]
        # this method's cap on optimiser steps (None: the trainer's max_steps, which caps it too)
        self.steps = steps or m["max_steps"]
        if family == "chargpt":
            self.tok = CharTokenizer(vocabulary())
            self.lm = chargpt(m, len(self.tok))
            if pretrained:
                self.lm.load_state_dict(pretrained_chargpt(cfg, corpus))
            self.context, self.pad = m["context"], 0
        elif family == "smollm":
            self.lm, self.tok = smollm(m, pretrained)
            self.context, self.pad = m["context"], self.tok.pad_token_id or 0
        else:
            raise BenchError(f"unknown model family {family!r}: chargpt or smollm")
        self.lm.train()  # from_pretrained returns eval mode, which Lightning would keep
        self.bits = MeanMetric()
        self.val_bits = MeanMetric()
        self.tested = 0
        self.trained_tokens = 0

    def encode(self, text: str) -> list[int]:
        if isinstance(self.tok, CharTokenizer):
            return self.tok.encode(text)
        return self.tok(text, add_special_tokens=False).input_ids

    def decode(self, ids: list[int]) -> str:
        if isinstance(self.tok, CharTokenizer):
            return self.tok.decode(ids)
        return self.tok.decode(ids, skip_special_tokens=True)

    def token_nll(
        self, grooves: list[Groove], pack: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-token NLL of right-padded prompt + completion sequences (cut to the context) and
        masks of the predicted tokens that belong to the completion (or to the filler: ``pack``
        appends the batch's next grooves up to the context) / to a sequence at all."""
        seqs = [(self.encode(g.prompt), self.encode(g.completion)) for g in grooves]
        if pack:
            nxt = [self.encode("\n" + g.text) for g in grooves[1:] + grooves[:1]] * 2
            seqs = [(p, (c + nxt[i] + nxt[i + 1])[: self.context - len(p)]) for i, (p, c) in enumerate(seqs)]
        n = min(max(len(p) + len(c) for p, c in seqs), self.context)
        ids = torch.full((len(seqs), n), self.pad, dtype=torch.long)
        mask, part = torch.zeros_like(ids), torch.zeros(len(seqs), n)
        for i, (p, c) in enumerate(seqs):
            s = (p + c)[:n]
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
            part[i, len(p) : len(s)] = 1.0
        ids, mask, part = ids.to(self.device), mask.to(self.device), part.to(self.device)
        logits = self.lm(input_ids=ids, attention_mask=mask).logits[:, :-1]
        nll = F.cross_entropy(logits.transpose(1, 2).float(), ids[:, 1:], reduction="none")
        return nll, part[:, 1:], mask[:, 1:].float()

    def training_step(self, batch: tuple[list[Groove]], batch_idx: int) -> torch.Tensor:
        (grooves,) = batch
        m = self.cfg["model"][self.family]
        grooves = grooves[: m["batch_size"] or None]
        if self.steps and self.global_step + 1 >= self.steps:
            self.trainer.should_stop = True
        nll, completion, real = self.token_nll(grooves, pack=self.cfg["optim"]["pack"])
        w = completion + self.cfg["optim"]["prompt_loss_weight"] * (real - completion)
        loss = (nll * w).sum() / w.sum()
        self.trained_tokens += int(real.sum().item()) + len(grooves)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch))
        return loss

    def completion_bits(self, grooves: list[Groove]) -> tuple[torch.Tensor, int]:
        """Bits per character of the completions, teacher forced (and their character count)."""
        with torch.no_grad():
            nll, completion, _ = self.token_nll(grooves)
        chars = sum(len(g.completion) for g in grooves)
        return (nll * completion).sum() / chars / math.log(2), chars

    def validation_step(self, batch: tuple[list[Groove]], batch_idx: int) -> None:
        bits, chars = self.completion_bits(batch[0])
        self.val_bits.update(bits, weight=chars)

    def on_validation_epoch_end(self) -> None:
        self.log("val/bits_per_char", self.val_bits.compute())
        self.val_bits.reset()

    def test_step(self, batch: tuple[list[Groove]], batch_idx: int) -> None:
        (grooves,) = batch
        limit = self.cfg["model"][self.family]["test_grooves"]
        grooves = grooves[: max(limit - self.tested, 0)] if limit else grooves
        if not grooves:
            return
        self.tested += len(grooves)
        batch = (grooves,)
        bits, chars = self.completion_bits(grooves)
        self.bits.update(bits, weight=chars)
        super().test_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        self.log("test/bits_per_char", self.bits.compute())
        self.log("test/finetune_tokens", float(self.trained_tokens))
        self.log("test/pretrain_tokens", float(self.pretrain_tokens()))
        super().on_test_epoch_end()

    def pretrain_tokens(self) -> int:
        """Characters the weights saw before fine-tuning (the char GPT's English pretraining;
        SmolLM2's own pretraining is not counted here: 2T tokens per its model card)."""
        if self.family != "chargpt" or not self.pretrained:
            return 0
        p = self.cfg["pretrain"]
        return p["steps"] * p["batch_size"] * self.cfg["model"]["chargpt"]["context"]

    def complete(self, grooves: list[Groove]) -> list[tuple[str, str]]:
        """Sample from each 2-bar prompt (left-padded batch) until END or the token budget."""
        g = self.cfg["generate"]
        prompts = [self.encode(x.prompt) for x in grooves]
        n = max(len(p) for p in prompts)
        ids = torch.full((len(grooves), n), self.pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompts):
            ids[i, n - len(p) :], mask[i, n - len(p) :] = torch.tensor(p), 1
        # A runaway that never writes END stops at length_factor x the longest human completion.
        longest = max(len(self.encode(x.completion)) for x in grooves)
        budget = min(g["max_new_tokens"], self.context - n, math.ceil(g["length_factor"] * longest))
        if budget <= 0:
            raise BenchError(
                f"the prompt ({n} tokens) fills the model context ({self.context}): raise model.context"
            )
        with torch.no_grad():
            out = self.lm.generate(
                input_ids=ids.to(self.device),
                attention_mask=mask.to(self.device),
                do_sample=True,
                temperature=g["temperature"],
                top_k=0,
                top_p=1.0,
                max_new_tokens=budget,
                pad_token_id=self.pad,
                stopping_criteria=StoppingCriteriaList([UntilEnd(self.decode, n)]),
            )
        texts = [self.decode(row[n:].tolist()) for row in out]
        return [
            (x.prompt, t.split(notation.END, 1)[0] + notation.END if notation.END in t else t)
            for x, t in zip(grooves, texts, strict=True)
        ]

    def configure_optimizers(self):
        o = self.cfg["optim"]
        params = [p for p in self.lm.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=o["weight_decay"])
        steps = min(self.trainer.estimated_stepping_batches, self.steps or math.inf)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, self.lr, total_steps=max(int(steps), 1), pct_start=o["warmup"]
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def cost(self) -> dict:
        return {
            "params": sum(p.numel() for p in self.lm.parameters()),
            "trainable_params": sum(p.numel() for p in self.lm.parameters() if p.requires_grad),
        }


def smollm(m: dict, pretrained: bool):
    """SmolLM2-135M (converted once from the package's GGUF) with its tokenizer: the English
    weights fine-tuned with LoRA or fully (``model.smollm.finetune``), or the same config from
    random weights."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder = smollm_folder()
    tok = AutoTokenizer.from_pretrained(folder)
    if not pretrained:
        return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder)), tok
    model = AutoModelForCausalLM.from_pretrained(folder)
    if m["finetune"] == "lora":
        from peft import LoraConfig, get_peft_model

        lora = m["lora"]
        config = LoraConfig(
            r=lora["r"],
            lora_alpha=lora["alpha"],
            lora_dropout=lora["dropout"],
            target_modules=lora["modules"],
        )
        model = get_peft_model(model, config)
    elif m["finetune"] != "full":
        raise BenchError(f"model.smollm.finetune={m['finetune']!r}: choose lora or full")
    return model, tok
