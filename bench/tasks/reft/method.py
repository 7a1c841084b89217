"""The methods: one run loads the shared base model and fine-tunes it once per (protocol, K),
one fine-tuning step per ``training_step`` (manual optimization); the test evaluates every
fine-tuned model (and the base model) on the test images.

Protocols (the paper's three settings, TFA's K-shot files of the run's seed):
- ``fsis``: fine-tune on the novel classes' K shots; evaluated on the novel classes (nAP).
- ``gfsis``: fine-tune on K shots of every class; evaluated on all classes (nAP and bAP).
- ``ifsis``: like fsis (no base data), evaluated on all classes; RefT adds its base knowledge
  distillation from the frozen base model, and its base references come from the base stage.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.method import BenchMethod
from bench.tasks.reft.base import base_stage, chunks, draw_batch
from bench.tasks.reft.evaluate import draw, new_metric, split_ap, targets_for_map
from bench.tasks.reft.model import FewShotMask2Former

PROTOCOLS = ("fsis", "gfsis", "ifsis")


def base_distillation(student: tuple, teacher: tuple, num_base: int) -> torch.Tensor:
    """RefT's class-enhanced base knowledge distillation (our reading of it): per object query,
    KL from the frozen base model's distribution over base classes + no-object to the student's,
    weighted by 1 + the teacher's base-class confidence; plus mask BCE towards the teacher's masks
    on queries the teacher holds to be a base object (confidence > 0.5)."""
    cols = list(range(num_base)) + [-1]
    t = teacher[0][-1][..., cols].softmax(-1)
    log_s = student[0][-1][..., cols].log_softmax(-1)
    kl = (t * (t.clamp_min(1e-8).log() - log_s)).sum(-1)
    conf = t[..., :-1].max(-1).values
    loss = ((1 + conf) * kl).mean()
    fg = conf > 0.5
    if fg.any():
        loss = loss + F.binary_cross_entropy_with_logits(student[1][-1][fg], teacher[1][-1][fg].sigmoid())
    return loss


def finetune_step(model, data, f: dict, gen, opt, params, teacher, num_base: int) -> torch.Tensor:
    """One fine-tuning step: (with references) a support episode moves the dynamic class centres
    and support queries, then Mask2Former's loss (+ base distillation) on a K-shot batch."""
    device = model.centres.device
    if model.refs:
        support = draw_batch(data, f["support_batch"], gen, device)
        model.update_bank(*model.encode_support(*support), f["momentum"])
    images, targets = draw_batch(data, f["batch_size"], gen, device)
    out = model(images)
    loss = sum(model.loss(images, targets, out).values())
    if teacher is not None:
        with torch.no_grad():
            t_out = teacher(images, use_refs=False)
        loss = loss + f["distill_weight"] * base_distillation(out, t_out, num_base)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, f["clip"])
    opt.step()
    return loss


class FewShotMethod(BenchMethod):
    """Mask2Former fine-tuning with the references in ``refs`` (none: the mask2former_ft baseline)."""

    def __init__(self, cfg: dict, refs: tuple[str, ...] = (), distill: bool = False) -> None:
        super().__init__(cfg)
        self.automatic_optimization = False
        self.refs, self.distill = tuple(refs), distill
        f = cfg["finetune"]
        if unknown := set(f["shots"]) - set(PROTOCOLS):
            raise BenchError(f"finetune.shots has unknown protocols {sorted(unknown)}: use {PROTOCOLS}")
        self.todo = [(p, k) for p in PROTOCOLS for k in f["shots"].get(p) or []]
        if not self.todo:
            raise BenchError("finetune.shots lists no K for any protocol")
        if any(k < 1 for _, k in self.todo) or f["steps"] < 1:
            raise BenchError("finetune.shots and finetune.steps must be positive")
        if cfg["figure"]["phase"] not in {"base"} | {f"{p}_k{k}" for p, k in self.todo}:
            raise BenchError(f"figure.phase={cfg['figure']['phase']!r} is not one of this run's phases")
        self.states: dict[str, dict] = {}
        self.phase: dict | None = None
        self.maps = nn.ModuleDict()
        self.rates: list[float] = []

    # --- setup -------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if hasattr(self, "model"):
            return
        dm = self.trainer.datamodule
        dm.setup(stage)
        self.dm = dm
        self.model = FewShotMask2Former(self.cfg["model"], dm.num_classes, self.refs)
        folder = base_stage(self.cfg, dm)
        self.base_state = torch.load(folder / "model.pt", weights_only=True)
        self.base_bank = torch.load(folder / "bank.pt", weights_only=True)
        self.model.load_state_dict(self.base_state, strict=False)
        self.states["base"] = self._snapshot()
        self.allowed = {"base": torch.ones(dm.num_classes, dtype=torch.bool)}
        for p, k in self.todo:
            self.allowed[f"{p}_k{k}"] = torch.arange(dm.num_classes) >= (dm.num_base if p == "fsis" else 0)
        for name in self.allowed:
            self.maps[name] = new_metric()

    def _snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # --- one fine-tuning phase ---------------------------------------------------------------
    def _start(self, protocol: str, k: int) -> None:
        f, dm, model = self.cfg["finetune"], self.dm, self.model
        model.load_state_dict(self.base_state, strict=False)
        for ref in (model.feature_ref, model.instance_ref):
            if ref is not None:
                ref.reset()
        # TFA's randinit: the novel classes' classifier rows start afresh.
        cls = model.head.cls_embed
        nn.init.normal_(cls.weight[dm.num_base : dm.num_classes], std=0.01)
        nn.init.zeros_(cls.bias[dm.num_base : dm.num_classes])
        frozen = tuple(f["freeze"])
        for name, p in model.named_parameters():
            p.requires_grad = not name.startswith(frozen)
        data = dm.kshot(k, self.cfg["seed"], novel_only=protocol != "gfsis")
        if len(data) == 0:
            raise BenchError(f"the {k}-shot set of seed {self.cfg['seed']} is empty")
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=f["lr"], weight_decay=f["weight_decay"])
        teacher = None
        if protocol == "ifsis" and self.distill:
            teacher = copy.deepcopy(model).eval().requires_grad_(False)
        gen = torch.Generator().manual_seed(self.cfg["seed"] * 1000 + len(self.states))
        self.phase = dict(name=f"{protocol}_k{k}", protocol=protocol, data=data, opt=opt, params=params)
        self.phase |= dict(teacher=teacher, gen=gen, step=0, frozen=frozen)
        self._fill_bank()

    def _fill_bank(self) -> None:
        """References from the whole support set (base rows from the base stage in iFSIS)."""
        model = self.model
        if not self.refs:
            return
        model.filled.zero_()
        device = model.centres.device
        if self.phase["protocol"] == "ifsis":
            b = self.base_bank
            model.update_bank(*(b[k].to(device) for k in ("centres", "squeries", "count")), 0.0)
        sums = None
        for images, targets in chunks(self.phase["data"], 16, device):
            part = model.encode_support(images, targets)
            sums = part if sums is None else tuple(a + p for a, p in zip(sums, part, strict=True))
        model.update_bank(*sums, 0.0)

    def _train_mode(self) -> None:
        self.model.train()
        for name, mod in self.model.named_modules():
            if name and name.startswith(self.phase["frozen"]):
                mod.eval()

    def training_step(self, batch, batch_idx):
        if self.phase is None:
            self._start(*self.todo[len(self.states) - 1])
        f, ph = self.cfg["finetune"], self.phase
        t0 = time.perf_counter()
        self._train_mode()
        loss = finetune_step(
            self.model, ph["data"], f, ph["gen"], ph["opt"], ph["params"], ph["teacher"], self.dm.num_base
        )
        self.rates.append(f["batch_size"] / (time.perf_counter() - t0))
        ph["step"] += 1
        if ph["step"] == f["steps"]:
            self._fill_bank()
            self.states[ph["name"]] = self._snapshot()
            self.phase = None
            if len(self.states) == len(self.todo) + 1:
                self.trainer.should_stop = True
        return {"loss": loss.detach()}

    def configure_optimizers(self):
        return None

    # --- test --------------------------------------------------------------------------------
    def test_step(self, batch, batch_idx):
        images, targets = batch
        truth = targets_for_map(targets)
        for name, state in self.states.items():
            self.model.load_state_dict(state)
            self.model.eval()
            self.maps[name].update(self.model.predict(images, self.allowed[name].to(self.device)), truth)
            if batch_idx == 0 and name == self.cfg["figure"]["phase"]:
                self._figure(images, targets)

    def _figure(self, images, targets) -> None:
        n = self.cfg["figure"]["images"]
        preds = self.model.predict(images[:n], self.allowed[self.cfg["figure"]["phase"]].to(self.device))
        images, preds = images[:n].cpu(), [{k: v.cpu() for k, v in p.items()} for p in preds]
        path = Path(self.trainer.default_root_dir) / "predictions.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path, images, preds, self.dm.class_names, self.cfg["data"], self.cfg["figure"]["score"])

    def on_test_epoch_end(self) -> None:
        nb, nc = self.dm.num_base, self.dm.num_classes
        ap = {name: split_ap(m.compute(), nb, nc) for name, m in self.maps.items()}
        for name, vals in ap.items():
            for key, v in vals.items():
                if name.startswith("fsis") and key.startswith("bap"):
                    continue  # FSIS predicts novel classes only
                self.log(f"test/{name}_{key}", v)
        drops = {}
        for name in (n for n in ap if n.startswith("gfsis")):
            drops[name] = ap["base"]["bap_segm"] - ap[name]["bap_segm"]
            self.log(f"test/{name}_bap_drop_segm", drops[name])
        if drops:
            self.log("test/gfsis_worst_bap_drop_segm", max(drops.values()))

    def cost(self) -> dict:
        out = {"params": sum(p.numel() for p in self.model.parameters())}
        if self.rates:
            out["train_images_per_s"] = round(sorted(self.rates)[len(self.rates) // 2], 2)
        return out
