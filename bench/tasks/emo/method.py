"""Image classification with the paper's recipe: AdamW, warm-up + cosine, label smoothing, EMA."""

from __future__ import annotations

import math
import time
from functools import cache
from itertools import islice

import torch
from lightning.pytorch.callbacks import EMAWeightAveraging
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from bench import cost
from bench.method import TrainedMethod
from bench.optim import scaled_lr
from bench.tasks.emo.model import EMO_VARIANTS, build_model
from bench.tasks.emo.task import LOGGED

PAPER_SIZE = 224


@cache
def _paper_scale(arch: str) -> tuple[int, float]:
    """(params, MACs) of the 1000-class model at 224x224, as the paper counts them."""
    model = build_model(arch, num_classes=1000)
    return cost.params(model), cost.flops(model, (3, PAPER_SIZE, PAPER_SIZE)) / 2


@torch.no_grad()
def images_per_s(model: nn.Module, size: int, batch: int) -> float:
    """Eval-mode forward throughput on random images: one warm-up pass, then max(1, 8 // batch)
    timed passes (one thread of a shared machine: a rough figure)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=torch.channels_last)
    model(x)
    reps = max(1, 8 // batch)
    t0 = time.perf_counter()
    for _ in range(reps):
        model(x)
    model.train(was_training)
    return batch * reps / (time.perf_counter() - t0)


class ImageClassifier(TrainedMethod):
    """One architecture (``arch``, a name known to ``build_model``) trained from scratch. From the
    preset's ``methods.<name>`` section: ``lr`` (per ``optim.lr_batch`` images; null: ``optim.lr``),
    ``drop_path_rate`` (null: ``model.drop_path_rate``; the official one differs by size) and
    ``width_mult`` (MobileNetV2)."""

    def __init__(
        self,
        cfg: dict,
        arch: str,
        lr: float | None = None,
        width_mult: float | None = None,
        drop_path_rate: float | None = None,
    ) -> None:
        super().__init__(cfg)
        self.arch = arch
        self.base_lr = cfg["optim"]["lr"] if lr is None else lr
        classes = cfg["data"]["num_classes"]
        m = cfg["model"]
        kwargs = dict(m["arch_kwargs"].get(arch) or {})
        if width_mult is not None:
            kwargs["width_mult"] = width_mult
        if arch in EMO_VARIANTS:
            kwargs.setdefault("pad_small_maps", m["pad_small_maps"])
        drop_path = m["drop_path_rate"] if drop_path_rate is None else drop_path_rate
        self.model = build_model(arch, num_classes=classes, drop_path_rate=drop_path, **kwargs)
        # channels_last: 15-50% faster convolutions on CPU (measured), same numbers.
        self.model.to(memory_format=torch.channels_last)
        self.loss = nn.CrossEntropyLoss(label_smoothing=cfg["optim"]["label_smoothing"])
        self.val_acc = MulticlassAccuracy(classes, average="micro")
        self.test_acc = MulticlassAccuracy(classes, average="micro")
        self.test_acc5 = MulticlassAccuracy(classes, top_k=min(5, classes), average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x.contiguous(memory_format=torch.channels_last))

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss(self(x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.val_acc(self(x), y)
        self.log("val/acc", self.val_acc, prog_bar=True)

    def test_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x)
        self.test_acc(logits, y)
        self.test_acc5(logits, y)
        self.log_dict({"test/acc": self.test_acc, "test/acc5": self.test_acc5})

    def on_test_epoch_end(self) -> None:
        """Validation accuracy of the final weights (what the lr grid is chosen on), the lr,
        throughput, and for EMO the size checks against the official logs."""
        metrics = {"test/val_acc": self._val_acc(), "test/lr": self.base_lr}
        speed = self.cfg["speed"]
        for size in (self.cfg["data"]["image_size"], speed["size"]):
            for batch in speed["batches"]:
                metrics[f"test/img_s_{size}_b{batch}"] = images_per_s(self.model, size, batch)
        if self.arch in LOGGED:
            params_1k, macs_1k = _paper_scale(self.arch)
            metrics["test/params_vs_log"] = abs(params_1k / LOGGED[self.arch]["params"] - 1)
            metrics["test/macs_vs_paper"] = abs(macs_1k / LOGGED[self.arch]["flops"] - 1)
        self.log_dict(metrics)

    @torch.no_grad()
    def _val_acc(self) -> float:
        was_training = self.training
        self.eval()
        correct = total = 0
        for x, y in self.trainer.datamodule.val_dataloader():
            correct += int((self(x.to(self.device)).argmax(-1) == y.to(self.device)).sum())
            total += len(y)
        self.train(was_training)
        return correct / max(1, total)

    def configure_optimizers(self):
        o = self.cfg["optim"]
        # As timm does for the paper: no weight decay on norms and biases.
        decay = [p for p in self.parameters() if p.ndim > 1]
        no_decay = [p for p in self.parameters() if p.ndim <= 1]
        lr = scaled_lr(
            self.base_lr,
            o["lr_batch"],
            self.cfg["data"]["batch_size"],
            self.cfg["trainer"],
            self.trainer.world_size,
        )
        opt = torch.optim.AdamW(
            [{"params": decay, "weight_decay": o["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
            lr=lr,
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(total * o["warmup_frac"])

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(1, total - warmup)
            return o["min_lr_ratio"] + (1 - o["min_lr_ratio"]) * 0.5 * (1 + math.cos(math.pi * progress))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_end(self) -> None:
        # Short schedules leave BN running statistics behind the weights: MobileNetV2 tested at
        # chance level at the cpu preset (0.64 with batch statistics). Recompute them over the
        # training set with the final weights ("precise BN"), for every model alike; over the first
        # ``precise_bn_images`` of a shuffled pass (null: all).
        o = self.cfg["optim"]
        if o["precise_bn"]:
            loader = self.trainer.datamodule.train_dataloader()
            n = o["precise_bn_images"]
            batches = loader if n is None else islice(loader, math.ceil(n / self.cfg["data"]["batch_size"]))
            self.precise_bn(batches)

    @torch.no_grad()
    def precise_bn(self, batches) -> None:
        """Every BatchNorm's running statistics recomputed as the cumulative average over
        ``batches``, the rest of the model in eval mode. Not torch's ``update_bn``: it puts the whole
        model in train mode, so DropPath and Dropout would drop while the statistics are collected."""
        bns = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        momenta = [bn.momentum for bn in bns]
        was_training = self.training
        self.eval()
        for bn in bns:
            bn.reset_running_stats()
            bn.momentum = None
            bn.train()
        for x, _ in batches:
            self(x.to(self.device))
        for bn, momentum in zip(bns, momenta, strict=True):
            bn.momentum = momentum
        self.train(was_training)

    def configure_callbacks(self):
        decay = self.cfg["optim"]["ema_decay"]
        return [EMAWeightAveraging(decay=decay)] if decay else []

    def cost(self) -> dict:
        size = self.cfg["data"]["image_size"]
        params_1k, macs_1k = _paper_scale(self.arch)
        return {
            "params": cost.params(self.model),
            "flops": cost.flops(self.model, (3, size, size)),
            "input_size": size,
            "params_paper_scale": params_1k,
            "macs_224": macs_1k,
        }
