"""The methods: one run loads the shared base model and fine-tunes it once per (protocol, K),
each phase from the base weights with its own optimiser, one fine-tuning step per ``step``; the
results evaluate every fine-tuned model (and the base model) on the test images.

Protocols (the paper's three settings, TFA's K-shot files of the run's seed):
- ``fsis``: fine-tune on the novel classes' K shots; evaluated on the novel classes (nAP).
- ``gfsis``: fine-tune on K shots of every class; evaluated on all classes (nAP and bAP).
- ``ifsis``: like fsis (no base data), evaluated on all classes; RefT adds its base knowledge
  distillation from the frozen base model, and its base references come from the base stage.
"""

from __future__ import annotations

import copy
import time

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.method import LoopMethod
from bench.tasks.reft.base import Episodes, base_stage, episode, on, own_stream, support_sums
from bench.tasks.reft.evaluate import draw, new_metric, split_ap, targets_for_map
from bench.tasks.reft.model import REFS, FewShotMask2Former

PROTOCOLS = ("fsis", "gfsis", "ifsis")
SUPPORT_STREAM = 2**32  # the supports' generator seed: the query stream's plus this
GLOBAL_STREAM = 2**33  # the global random state's seed at a phase's start: the query stream's plus this


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


def finetune_step(
    model, data, episodes, f: dict, gen, opt, params, teacher, num_base: int, extra=None, support_gen=None
):
    """One fine-tuning step: a K-shot query batch and (with references) a support episode of
    other K-shot images whose per-class means (plus the stored base sums ``extra`` in iFSIS) are
    the references; Mask2Former's loss (+ base distillation from ``teacher``). With
    ``support_gen``, the support draws from it alone (``base.episode``)."""
    images, targets, out, _ = episode(
        model, data, episodes, f["batch_size"], f["support_batch"], model.refs, gen, extra, support_gen
    )
    loss = sum(model.loss(images, targets, out).values())
    if teacher is not None:
        with torch.no_grad():
            t_out = teacher(images)
        loss = loss + f["distill_weight"] * base_distillation(out, t_out, num_base)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, f["clip"])
    opt.step()
    return loss


def ref_move(model, start: dict) -> float:
    """Relative change of the used reference modules' weights from ``start``: ||w - w0|| / ||w0||."""
    names = [f"{r}_ref." for r in model.refs]
    num = den = 0.0
    for name, p in model.named_parameters():
        if name.startswith(tuple(names)):
            num += float((p.detach() - start[name]).pow(2).sum())
            den += float(start[name].pow(2).sum())
    return (num / den) ** 0.5 if den else float("nan")


class FewShotMethod(LoopMethod):
    """Mask2Former fine-tuning with the references in ``refs`` (none: the mask2former_ft baseline),
    RefT's base distillation in iFSIS if ``distill``, over the ``protocols`` it runs (a control
    method may run one). A loop method: a run is several fine-tunings of one base model, each
    with its own optimiser (and teacher), all evaluated at the end."""

    def __init__(
        self,
        cfg: dict,
        refs: tuple[str, ...] = (),
        distill: bool = False,
        protocols: tuple[str, ...] = PROTOCOLS,
        *,
        lr: float,
        steps: int,
    ) -> None:
        super().__init__(cfg)
        self.refs, self.distill = tuple(refs), distill
        # fine-tuning settings: the shared ones, with the method's own lr and steps (the preset's
        # ``methods.<name>``)
        f = self.f = cfg["finetune"] | {"lr": lr, "steps": steps}
        for key in ("shots", "freeze"):
            if unknown := set(f[key]) - set(PROTOCOLS):
                raise BenchError(f"finetune.{key} has unknown protocols {sorted(unknown)}: use {PROTOCOLS}")
        every = self.every = [(p, k) for p in PROTOCOLS for k in f["shots"].get(p) or []]
        self.todo = [(p, k) for p, k in every if p in protocols]
        if not self.todo:
            raise BenchError("finetune.shots lists no K for any protocol this method runs")
        if any(k < 1 for _, k in every) or f["steps"] < 1:
            raise BenchError("finetune.shots and the method's steps must be positive")
        phases = {f"{p}_k{k}" for p, k in every}
        if cfg["figure"]["phase"] not in {"base"} | phases:
            raise BenchError(f"figure.phase={cfg['figure']['phase']!r} is not one of this run's phases")
        # a control running fewer protocols draws its last phase instead
        run = ["base"] + [f"{p}_k{k}" for p, k in self.todo]
        self.figure_phase = cfg["figure"]["phase"] if cfg["figure"]["phase"] in run else run[-1]
        self.moves: dict[str, float] = {}
        self.states: dict[str, dict] = {}
        self.phase: dict | None = None
        self.rates: list[float] = []

    # --- setup -------------------------------------------------------------------------------
    def setup(self, datamodule) -> None:
        dm = self.dm = datamodule
        model = FewShotMask2Former(self.cfg["model"], dm.num_classes, self.refs)
        folder = base_stage(self.cfg, dm)
        self.base_state = torch.load(folder / "model.pt", weights_only=True)
        self.base_bank = torch.load(folder / "bank.pt", weights_only=True)
        self.model = model.to(self.device)
        self.model.load_state_dict(self.base_state)
        self.states["base"] = self._snapshot()
        self.allowed = {"base": torch.ones(dm.num_classes, dtype=torch.bool, device=self.device)}
        for p, k in self.todo:
            classes = torch.arange(dm.num_classes, device=self.device)
            self.allowed[f"{p}_k{k}"] = classes >= (dm.num_base if p == "fsis" else 0)

    def _snapshot(self) -> dict:
        return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # --- one fine-tuning phase ---------------------------------------------------------------
    def _start(self, protocol: str, k: int) -> None:
        f, dm, model = self.f, self.dm, self.model
        # The phase's streams, numbered by its place among every protocol's phases (a control
        # running iFSIS alone numbers it as RefT does): the query batches' generator, the
        # supports' own (base.episode), and the global random state (the fresh classifier rows,
        # the flips, the loss's point samples), reseeded here. Every method of a seed starts a
        # phase from the same rows and fine-tunes on the same query batches, with references or
        # without.
        stream = self.cfg["seed"] * 1000 + 1 + self.every.index((protocol, k))
        torch.manual_seed(stream + GLOBAL_STREAM)
        model.load_state_dict(self.base_state)
        # TFA's randinit: the novel classes' classifier rows start afresh.
        cls = model.head.cls_embed
        nn.init.normal_(cls.weight[dm.num_base : dm.num_classes], std=0.01)
        nn.init.zeros_(cls.bias[dm.num_base : dm.num_classes])
        frozen = tuple(f["freeze"].get(protocol) or ())
        for name, p in model.named_parameters():
            p.requires_grad = not name.startswith(frozen)
        data = dm.kshot(k, self.cfg["seed"], novel_only=protocol != "gfsis")
        if len(data) == 0:
            raise BenchError(f"the {k}-shot set of seed {self.cfg['seed']} is empty")
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=f["lr"], weight_decay=f["weight_decay"])
        extra = teacher = None
        if protocol == "ifsis":
            extra = tuple(self.base_bank[key].to(self.device) for key in ("centres", "squeries", "count"))
        if protocol == "ifsis" and self.distill:
            teacher = copy.deepcopy(model).eval().requires_grad_(False)
            # finetune.teacher_refs: the frozen base model teaches with the method's references
            # over the stored base references; otherwise it is plain Mask2Former
            if f["teacher_refs"]:
                teacher.set_bank(model.bank_from(*extra))
            else:
                teacher.refs = ()
        gen = torch.Generator().manual_seed(stream)
        support_gen = torch.Generator().manual_seed(stream + SUPPORT_STREAM)
        self.phase = dict(name=f"{protocol}_k{k}", protocol=protocol, data=data, opt=opt, params=params)
        self.phase |= dict(teacher=teacher, gen=gen, support_gen=support_gen, step=0, frozen=frozen)
        self.phase |= dict(extra=extra, episodes=Episodes(data), start=self._snapshot())

    def _fill_bank(self) -> None:
        """The test's references: per-class means over the whole K-shot set (plus the stored base
        references in iFSIS); the test images are never among them. Computed on a random state of
        the supports' stream, so the next phase draws what a method without references draws."""
        model, ph = self.model, self.phase
        if not self.refs:
            return
        with own_stream(self.device, ph["support_gen"]):
            sums = support_sums(model, ph["data"], self.device)
        if ph["extra"] is not None:
            sums = tuple(a + b for a, b in zip(sums, ph["extra"], strict=True))
        model.set_bank(model.bank_from(*sums))

    def _train_mode(self) -> None:
        self.model.train()
        for name, mod in self.model.named_modules():
            if name and name.startswith(self.phase["frozen"]):
                mod.eval()

    def step(self) -> bool:
        """One fine-tuning step of the current phase (started from the base weights when none
        runs); True once the last phase has finished."""
        if self.phase is None:
            self._start(*self.todo[len(self.states) - 1])
        f, ph = self.f, self.phase
        t0 = time.perf_counter()
        self._train_mode()
        loss = finetune_step(
            self.model,
            ph["data"],
            ph["episodes"],
            f,
            ph["gen"],
            ph["opt"],
            ph["params"],
            ph["teacher"],
            self.dm.num_base,
            ph["extra"],
            ph["support_gen"],
        )
        self.rates.append(f["batch_size"] / (time.perf_counter() - t0))
        self.loss = float(loss.detach())
        ph["step"] += 1
        if ph["step"] < f["steps"]:
            return False
        if self.refs:
            self.moves[ph["name"]] = ref_move(self.model, ph["start"])
        self._fill_bank()
        self.states[ph["name"]] = self._snapshot()
        self.phase = None
        return len(self.states) == len(self.todo) + 1

    # --- results -----------------------------------------------------------------------------
    @torch.inference_mode()
    def results(self) -> dict[str, float]:
        """COCO AP of every phase's model (and the base model's) on the test images, as nAP/bAP;
        the base AP drops of gFSIS; how far the references moved; ``predictions.png``."""
        maps = {name: new_metric().to(self.device) for name in self.allowed}
        for i, batch in enumerate(self.dm.test_dataloader()):
            images, targets = on(self.device, *batch)
            truth = targets_for_map(targets)
            for name, state in self.states.items():
                self.model.load_state_dict(state)
                self.model.eval()
                maps[name].update(self.model.predict(images, self.allowed[name]), truth)
                if i == 0 and name == self.figure_phase:
                    self._figure(images, targets)
        nb, nc = self.dm.num_base, self.dm.num_classes
        ap = {name: split_ap(m.compute(), nb, nc) for name, m in maps.items()}
        out = {
            f"{name}_{key}": v
            for name, vals in ap.items()
            for key, v in vals.items()
            if not (name.startswith("fsis") and key.startswith("bap"))  # FSIS predicts novel classes only
        }
        drops = {}
        for name in (n for n in ap if n.startswith("gfsis")):
            drops[name] = out[f"{name}_bap_drop_segm"] = ap["base"]["bap_segm"] - ap[name]["bap_segm"]
        if drops:
            out["gfsis_worst_bap_drop_segm"] = max(drops.values())
        out |= {f"{name}_ref_move": move for name, move in self.moves.items()}
        if self.refs:  # how far base training moved the references' output projections
            outs = [self.base_state[f"{r}_ref.attn.out_proj.weight"] for r in self.refs]
            out["base_ref_out_norm"] = float(sum(w.pow(2).sum() for w in outs) ** 0.5)
        return out

    def _figure(self, images, targets) -> None:
        n = self.cfg["figure"]["images"]
        preds = self.model.predict(images[:n], self.allowed[self.figure_phase])
        images, preds = images[:n].cpu(), [{k: v.cpu() for k, v in p.items()} for p in preds]
        path = self.out_dir / "predictions.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        draw(path, images, preds, self.dm.class_names, self.cfg["data"], self.cfg["figure"]["score"])

    def state_dict(self) -> dict:
        """The instance less the datamodule (``setup`` hands it again on resume), with the global
        random state the flips and the mask loss draw from."""
        state = {k: v for k, v in super().state_dict().items() if k != "dm"}
        state["rng"] = torch.random.get_rng_state()
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state_dict(self, state: dict) -> None:
        state = dict(state)
        torch.random.set_rng_state(state.pop("rng").cpu())
        if "cuda_rng" in state:
            torch.cuda.set_rng_state(state.pop("cuda_rng").cpu(), self.device)
        super().load_state_dict(state)

    def cost(self) -> dict:
        unused = tuple(f"{r}_ref." for r in REFS if r not in self.refs)
        out = {"params": sum(p.numel() for n, p in self.model.named_parameters() if not n.startswith(unused))}
        if self.rates:
            out["train_images_per_s"] = round(sorted(self.rates)[len(self.rates) // 2], 2)
        return out
