"""Backdoored dataset distillation as a loop method.

Each ``step`` is one distillation iteration (DM, DC or DD, ``distill.algorithm``) of the synthetic
set on the (poisoned) real pool; the last step trains fresh ConvNets on the synthetic set and runs
the defenses, and ``results`` measures their clean test accuracy (CTA) and attack success rate
(ASR) on the test split. The methods differ only in ``attack``: clean | naive | doorping |
doorping_clamped.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from bench.errors import BenchError
from bench.method import LoopMethod
from bench.tasks.doorping import attacks, control, defenses, distill
from bench.tasks.doorping.data import Images
from bench.tasks.doorping.model import build_net

ATTACKS = ("clean", "naive", "doorping", "doorping_clamped")
ALGORITHMS = ("dm", "dc", "dd")
# Neural Cleanse's pattern search: the valid pixel range (the original defense), or widened to the
# final trigger's value range
NC_RANGES = ("valid", "trigger")


def check_config(cfg: dict) -> None:
    """One-line errors for configs that cannot run."""
    d, s, a = cfg["data"], cfg["distill"], cfg["attack"]
    if s["algorithm"] not in ALGORITHMS:
        raise BenchError(f"unknown distill.algorithm {s['algorithm']!r}: choose dm, dc or dd")
    if s["algorithm"] == "dd" and (s["dd_steps"] < 1 or s["ipc"] % s["dd_steps"]):
        raise BenchError(f"distill.ipc={s['ipc']} must be a multiple of distill.dd_steps={s['dd_steps']}")
    if s["init"] not in ("noise", "real"):
        raise BenchError(f"unknown distill.init {s['init']!r}: choose noise or real")
    if not 0 <= a["target"] < d["num_classes"]:
        raise BenchError(f"attack.target={a['target']} is not a class of {d['num_classes']}")
    if not 0 < a["portion"] < 1:
        raise BenchError(f"attack.portion={a['portion']} must lie in (0, 1)")
    if a["patch"] + a["margin"] > d["image_size"]:
        raise BenchError(f"attack.patch + attack.margin exceed data.image_size={d['image_size']}")
    if s["batch_real"] > d["train_per_class"] * (1 - a["portion"]) - 1:
        raise BenchError(f"distill.batch_real={s['batch_real']} exceeds a class's pool: lower it")
    if s["ipc"] < 1 or s["iterations"] < 1 or cfg["eval"]["nets"] < 1:
        raise BenchError("distill.ipc, distill.iterations and eval.nets must be >= 1")


class DistillAttack(LoopMethod):
    """Distil ``data`` into ``distill.ipc`` images per class under attack ``attack``: one step
    per distillation iteration, then one step that trains and defends the evaluation nets."""

    def __init__(self, cfg: dict, attack: str) -> None:
        super().__init__(cfg)
        if attack not in ATTACKS:
            raise BenchError(f"unknown attack {attack!r}: choose one of {', '.join(ATTACKS)}")
        check_config(cfg)
        self.attack = attack
        self.gen = torch.Generator().manual_seed(cfg["seed"])
        # the nets DOORPING alone trains for its trigger draw from a stream of their own, so that
        # every attack draws the same real batches and nets from ``gen`` (paired over a seed)
        self.trigger_gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence((cfg["seed"], 1)).generate_state(1)[0])
        )
        self.it = 0  # distillation iterations done
        self.trigger_steps = 0
        self.distill_s = 0.0
        self.eval_nets: list[nn.Module] = []
        # the final trigger on control nets trained on a clean distillation of the same seed
        self.control_nets: list[nn.Module] = []
        self.fp_nets: list[nn.Module] = []  # after fine-pruning
        self.fp_control_nets: list[nn.Module] = []  # the control nets after the same fine-pruning
        self.fp_pruned: list[float] = []
        # Neural Cleanse per net, at each search range (valid | trigger): anomaly index, flagged
        self.nc: dict[str, list[tuple[float, float]]] = {}
        # its positive control: a net with a known in-range backdoor (``nc_control``)
        self.nc_control: dict[str, tuple[float, float]] = {}
        self.nc_control_asr: float | None = None

    @property
    def doorping(self) -> bool:
        return self.attack.startswith("doorping")

    # ---- distillation ----
    def setup(self, datamodule) -> None:
        self.dm = datamodule
        self.prepare(datamodule.images)

    def prepare(self, im: Images) -> None:
        """Poison the real pool (per the attack) and initialise the synthetic set, the trigger and
        the optimiser, on ``self.device``."""
        d, a, s = self.cfg["data"], self.cfg["attack"], self.cfg["distill"]
        c, size, dev = d["num_classes"], d["image_size"], self.device
        shape = (d["channels"], size, size)
        if im.x.shape[1:] != shape:
            raise BenchError(f"images are {tuple(im.x.shape[1:])}, the config says {shape}")
        self.syn = torch.zeros(c * s["ipc"], *shape, device=dev, requires_grad=True)
        self.syn_labels = torch.arange(c, device=dev).repeat_interleave(s["ipc"])
        # DD's learned step sizes, softplus-parametrised (inverse softplus of the initial value)
        t = s["dd_steps"] * s["dd_epochs"]
        self.raw_lrs = torch.full((t,), float(np.log(np.expm1(s["dd_lr"]))), device=dev, requires_grad=True)
        mask = attacks.patch_mask(d["channels"], size, a["patch"], a["margin"])
        self.mask = mask.to(dev)
        self.lo, self.hi = im.lo.to(dev), im.hi.to(dev)
        self.x, self.y = im.x.clone().to(dev), im.y.clone().to(dev)
        rng = np.random.default_rng(self.cfg["seed"])
        self.poison = torch.from_numpy(rng.permutation(len(self.x))[: int(len(self.x) * a["portion"])]).to(
            dev
        )
        # every attack draws DOORPING's initial trigger, so that all four draw the same stream
        # after it (the synthetic set, the real batches, the nets): paired over a seed
        random = attacks.random_trigger(mask, im.lo, im.hi, self.gen).to(dev)
        # the clean run is measured against NAIVEATTACK's trigger
        self.trigger = random if self.doorping else attacks.white_trigger(self.mask, self.hi)
        if self.attack != "clean":
            self.x[self.poison] = attacks.stamp(self.x[self.poison], self.trigger, self.mask)
            self.y[self.poison] = a["target"]
        self.by_class = [torch.nonzero(self.y == c).flatten() for c in range(d["num_classes"])]
        with torch.no_grad():
            if s["init"] == "real":
                self.syn.copy_(distill.sample_real(self.x, self.by_class, s["ipc"], self.gen).flatten(0, 1))
            else:
                self.syn.copy_(torch.randn(self.syn.shape, generator=self.gen))
        if s["algorithm"] == "dd":  # images and step sizes by Adam, as in DD
            self.opt_img = torch.optim.Adam([self.syn, self.raw_lrs], lr=s["dd_lr_img"], betas=(0.5, 0.999))
        else:
            self.opt_img = torch.optim.SGD([self.syn], lr=s["lr_img"], momentum=s["momentum_img"])

    def _net(self, gen: torch.Generator | None = None) -> nn.Module:
        """A fresh ConvNet, channels_last (~1.5x faster convolutions on CPU, measured in perf.py),
        initialised from a seed drawn from ``gen`` (default: the run's generator): every random
        draw of a run comes from its seed, so the clean distillation is the same inside any run
        (the shared stage)."""
        d = self.cfg["data"]
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen or self.gen))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = build_net(self.cfg, d["channels"], d["image_size"])
        return net.to(self.device, memory_format=torch.channels_last)

    def _restamp(self, net: nn.Module) -> None:
        """DOORPING: optimise the trigger on ``net``, then re-stamp the poisoned real images."""
        bounds = (self.lo, self.hi) if self.attack == "doorping_clamped" else None
        trigger, steps = attacks.optimise_trigger(
            net, self.trigger, self.mask, self.cfg["attack"], self.lo, bounds
        )
        self.trigger.copy_(trigger)
        self.trigger_steps += steps
        self.x[self.poison] = attacks.stamp(self.x[self.poison], self.trigger, self.mask)

    def _syn_step(self, loss: torch.Tensor) -> None:
        self.opt_img.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_img.step()

    def step(self) -> bool:
        """One distillation iteration; after the last, the evaluation nets and the defenses."""
        if self.it == self.cfg["distill"]["iterations"]:
            self.evaluate()
            return True
        t0 = time.perf_counter()
        self.loss = float(self.distill_step(self.it).detach())
        self.distill_s += time.perf_counter() - t0
        self.it += 1
        return False

    def distill_step(self, it: int) -> torch.Tensor:
        """One distillation iteration of ``distill.algorithm``; returns its loss."""
        step = {"dm": self._dm_step, "dc": self._dc_step, "dd": self._dd_step}
        return step[self.cfg["distill"]["algorithm"]](it)

    def _syn_view(self) -> torch.Tensor:
        """The synthetic images as [classes, ipc, C, H, W]."""
        return self.syn.view(self.cfg["data"]["num_classes"], self.cfg["distill"]["ipc"], *self.syn.shape[1:])

    def _dm_step(self, it: int) -> torch.Tensor:
        s = self.cfg["distill"]
        net = self._net().requires_grad_(False)
        real = distill.sample_real(self.x, self.by_class, s["batch_real"], self.gen)
        # Batched over classes (for accelerators); the per-class loop is faster on 1 CPU thread.
        dm = distill.dm_loss if s["dm_batched"] else distill.dm_loss_loop
        loss = dm(net, real, self._syn_view())
        self._syn_step(loss)
        if self.doorping and (it + 1) % s["dm_trigger_every"] == 0:
            # DM trains no network; DOORPING needs one trained on the synthetic set (our extension).
            net, gen = self._net(self.trigger_gen), self.trigger_gen
            distill.train_net(
                net, self.syn.detach(), self.syn_labels, self.cfg["inner"], s["dm_net_epochs"], gen
            )
            self._restamp(net)
        return loss

    def _dc_step(self, it: int) -> torch.Tensor:
        """One DC iteration: ``outer_loop`` image updates on one fresh net, trained ``inner_loop``
        epochs on the synthetic set between them; DOORPING updates the trigger after each training."""
        s = self.cfg["distill"]
        net = self._net()
        for ol in range(s["outer_loop"]):
            real = distill.sample_real(self.x, self.by_class, s["batch_real"], self.gen)
            loss = distill.dc_loss(net, real, self._syn_view())
            self._syn_step(loss)
            if ol == s["outer_loop"] - 1:
                break
            distill.train_net(
                net, self.syn.detach(), self.syn_labels, self.cfg["inner"], s["inner_loop"], self.gen
            )
            if self.doorping:
                self._restamp(net)
        return loss

    def _dd_steps(self, flat: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """DD's inner steps on the synthetic images ``flat``: ``dd_steps`` batches (ipc / dd_steps
        images of every class each), in order, repeated ``dd_epochs`` times."""
        s = self.cfg["distill"]
        k = s["ipc"] // s["dd_steps"]
        syn = flat.view(self.cfg["data"]["num_classes"], s["ipc"], *flat.shape[1:])
        lab = self.syn_labels.view(syn.shape[0], -1)
        steps = [
            (syn[:, i * k : (i + 1) * k].flatten(0, 1), lab[:, i * k : (i + 1) * k].flatten())
            for i in range(s["dd_steps"])
        ]
        return steps * s["dd_epochs"]

    def _dd_step(self, it: int) -> torch.Tensor:
        """One DD iteration: unroll the inner steps from a fresh net, then DOORPING updates the
        trigger on the trained weights and re-stamps (as the official DD code), then the real batch's
        loss is backpropagated through the unrolled steps into the images and step sizes."""
        s = self.cfg["distill"]
        net = self._net()
        w = distill.dd_unroll(net, self._dd_steps(self.syn), F.softplus(self.raw_lrs), create_graph=True)
        if self.doorping:
            trained = self._net(self.trigger_gen)
            trained.load_state_dict({k: v.detach() for k, v in w.items()})
            self._restamp(trained)
        n = s["batch_real"] * self.cfg["data"]["num_classes"]
        idx = torch.randperm(len(self.x), generator=self.gen)[:n].to(self.device)
        loss = distill.dd_loss(net, w, self.x[idx], self.y[idx])
        self._syn_step(loss)
        return loss

    def evaluate(self) -> None:
        """Train ``eval.nets`` fresh ConvNets on the synthetic set, and as many control nets on the
        clean distillation of the same seed (the shared stage; the clean run's own nets are its
        controls, and it offers its set to the stage); run the defenses; save the set as a PNG."""
        syn, raw_lrs = self.syn.detach(), self.raw_lrs.detach()
        start = self.gen.get_state()
        self.eval_nets = self._trained_nets(syn, raw_lrs)
        if self.attack == "clean":
            control.offer(self.cfg, syn, raw_lrs)
            self.control_nets = self.eval_nets
        else:
            clean = control.clean_set(self.cfg, self.dm.images, self.device)
            # drawn from where the eval nets were: the clean run's own nets, and the draws after
            # (the defenses) stay the clean run's
            gen = torch.Generator().set_state(start)
            self.control_nets = self._trained_nets(clean["syn"], clean["raw_lrs"], gen)
        self._neural_cleanse()
        self._nc_positive_control()
        self._fine_prune()
        self._save_grid(self.out_dir / "distilled.png")

    def _trained_nets(
        self, syn: torch.Tensor, raw_lrs: torch.Tensor, gen: torch.Generator | None = None
    ) -> list[nn.Module]:
        """``eval.nets`` fresh ConvNets trained on ``syn`` by the official recipe (DD: replaying its
        learned steps ``raw_lrs``, as DD evaluates), in eval mode, drawing from ``gen`` (default:
        the run's generator)."""
        gen = gen or self.gen
        e, nets = self.cfg["eval"], []
        syn, raw_lrs = syn.to(self.device), raw_lrs.to(self.device)
        for _ in range(e["nets"]):
            net = self._net(gen)
            if self.cfg["distill"]["algorithm"] == "dd":
                w = distill.dd_unroll(net, self._dd_steps(syn), F.softplus(raw_lrs), False)
                net.load_state_dict({k: v.detach() for k, v in w.items()})
            else:
                distill.train_net(net, syn, self.syn_labels, e, e["epochs"], gen)
            nets.append(net.eval())
        return nets

    def _fine_prune(self) -> None:
        """Fine-pruning on copies of the first ``defense.nets`` evaluation nets, with
        ``defense.fp_images`` clean real images of the pool (the defender's data), and on copies of
        as many control nets with the same draws (their ASR after fine-pruning is ``fp_asr``'s
        control; the clean run's control nets are its own, so it reuses them)."""
        d = self.cfg["defense"]
        self.fp_nets, self.fp_control_nets, self.fp_pruned = [], [], []
        if not d["fine_pruning"]:
            return
        im = self.dm.images
        pick = torch.randperm(len(im.x), generator=self.gen)[: d["fp_images"]]
        x, y = im.x[pick].to(self.device), im.y[pick].to(self.device)
        start = self.gen.get_state()
        for net in self.eval_nets[: d["nets"]]:
            pruned = copy.deepcopy(net).requires_grad_(True)
            self.fp_pruned.append(defenses.fine_prune(pruned, x, y, d, self.gen))
            self.fp_nets.append(pruned)
        if self.control_nets is self.eval_nets:
            self.fp_control_nets = self.fp_nets
            return
        gen = torch.Generator().set_state(start)
        for net in self.control_nets[: d["nets"]]:
            pruned = copy.deepcopy(net).requires_grad_(True)
            defenses.fine_prune(pruned, x, y, d, gen)
            self.fp_control_nets.append(pruned)

    def _neural_cleanse(self) -> None:
        """Neural Cleanse on the first ``defense.nets`` evaluation nets, at both search ranges."""
        self.nc = {rng: [] for rng in NC_RANGES}
        if not self.cfg["defense"]["neural_cleanse"]:
            return
        for net in self.eval_nets[: self.cfg["defense"]["nets"]]:
            for rng, result in self._cleanse(net).items():
                self.nc[rng].append(result)

    def _cleanse(self, net: nn.Module) -> dict[str, tuple[float, float]]:
        """Neural Cleanse on ``net`` at each range of ``_nc_bounds``: the attack target's anomaly
        index, and whether it is flagged (smallest reverse-engineered mask, index above the
        threshold). For an in-range trigger both ranges are the valid one: searched once."""
        d, target = self.cfg["defense"], self.cfg["attack"]["target"]
        x = self.dm.images.x_test[: d["images"]].to(self.device)
        net.requires_grad_(False)
        out, searched = {}, {}
        for rng in NC_RANGES:
            lo, hi = self._nc_bounds(rng)
            key = (tuple(lo.flatten().tolist()), tuple(hi.flatten().tolist()))
            if key not in searched:
                norms = defenses.reverse_mask_norms(
                    net, x, self.cfg["data"]["num_classes"], lo, hi, (self.lo + self.hi) / 2, d
                )
                idx = defenses.anomaly_index(norms, target)
                searched[key] = (idx, float(idx > d["threshold"] and int(norms.argmin()) == target))
            out[rng] = searched[key]
        return out

    def _nc_positive_control(self) -> None:
        """Neural Cleanse's positive control, in DOORPING runs: a net trained on the real pool with
        ``defense.control_portion`` of it stamped with NAIVEATTACK's white (in-range) patch and
        relabelled to the target, ``defense.control_epochs`` epochs by the evaluation recipe,
        from a generator of its own (the defenses' draws stay paired across the attacks). Its ASR
        shows the backdoor is there; Neural Cleanse at both ranges shows whether it is caught."""
        d = self.cfg["defense"]
        self.nc_control, self.nc_control_asr = {}, None
        if not (d["neural_cleanse"] and self.doorping):
            return
        gen = torch.Generator().manual_seed(
            int(np.random.SeedSequence((self.cfg["seed"], 2)).generate_state(1)[0])
        )
        im, target = self.dm.images, self.cfg["attack"]["target"]
        white = attacks.white_trigger(self.mask, self.hi)
        x, y = im.x.clone().to(self.device), im.y.clone().to(self.device)
        poison = torch.randperm(len(x), generator=gen)[: int(len(x) * d["control_portion"])].to(self.device)
        x[poison] = attacks.stamp(x[poison], white, self.mask)
        y[poison] = target
        net = self._net(gen)
        distill.train_net(net, x, y, self.cfg["eval"] | {"decay_half": False}, d["control_epochs"], gen)
        net.eval()
        self.nc_control_asr = self._asr(net, white)
        self.nc_control = self._cleanse(net)

    @torch.inference_mode()
    def _asr(self, net: nn.Module, trigger: torch.Tensor) -> float:
        """The share of non-target test images ``net`` sends to the target under ``trigger``."""
        im, target = self.dm.images, self.cfg["attack"]["target"]
        keep = im.y_test != target
        hits = 0
        x_all = im.x_test[keep]
        for i in range(0, len(x_all), self.cfg["data"]["test_batch_size"]):
            x = x_all[i : i + self.cfg["data"]["test_batch_size"]].to(self.device)
            hits += int((net(attacks.stamp(x, trigger, self.mask)).argmax(1) == target).sum())
        return hits / max(len(x_all), 1)

    def _nc_bounds(self, rng: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The per-channel range Neural Cleanse searches patterns in: ``valid`` pixels (the original
        defense), or ``trigger``, widened to cover the final trigger (a defender told its value
        range; for an in-range trigger the same as ``valid``)."""
        if rng == "valid":
            return self.lo, self.hi
        if rng != "trigger":
            raise BenchError(f"unknown Neural Cleanse range {rng!r}: choose valid or trigger")
        on = self.mask.bool()
        t = self.trigger.masked_fill(~on, float("inf")).amin((1, 2), keepdim=True)
        u = self.trigger.masked_fill(~on, float("-inf")).amax((1, 2), keepdim=True)
        return torch.minimum(self.lo, t), torch.maximum(self.hi, u)

    def _save_grid(self, path: Path) -> None:
        from torchvision.utils import save_image

        im = self.dm.images
        mean, std = im.mean.view(1, -1, 1, 1).to(self.device), im.std.view(1, -1, 1, 1).to(self.device)
        syn = self.syn.detach()
        both = torch.cat([syn, attacks.stamp(syn, self.trigger, self.mask)])
        path.parent.mkdir(parents=True, exist_ok=True)
        # one row per class: the distilled images, then below them the same images with the trigger
        save_image((both * std + mean).clamp(0, 1), path, nrow=self.cfg["distill"]["ipc"])

    # ---- results: CTA and ASR of the fresh networks on the test split ----
    @torch.inference_mode()
    def results(self) -> dict[str, float]:
        c, target = self.cfg["data"]["num_classes"], self.cfg["attack"]["target"]
        fp = ("fp_cta", "fp_asr", "fp_asr_clean") if self.fp_nets else ()
        names = ("cta", "asr", "asr_all", "asr_clean") + fp
        acc = {n: MulticlassAccuracy(c, average="micro").to(self.device) for n in names}
        for x, y in self.dm.test_dataloader():
            x, y = x.to(self.device), y.to(self.device)
            xt = attacks.stamp(x, self.trigger, self.mask)
            to_target = torch.full_like(y, target)
            keep = y != target
            for net in self.eval_nets:
                acc["cta"](net(x), y)
                logits_t = net(xt)
                acc["asr_all"](logits_t, to_target)
                if keep.any():
                    acc["asr"](logits_t[keep], to_target[keep])
            for net in self.control_nets:
                if keep.any():
                    acc["asr_clean"](net(xt[keep]), to_target[keep])
            for net in self.fp_nets:
                acc["fp_cta"](net(x), y)
                if keep.any():
                    acc["fp_asr"](net(xt[keep]), to_target[keep])
            for net in self.fp_control_nets:
                if keep.any():
                    acc["fp_asr_clean"](net(xt[keep]), to_target[keep])
        out = {n: float(m.compute()) for n, m in acc.items()}
        out["asr_excess"] = out["asr"] - out["asr_clean"]  # the ASR the backdoor adds to the patch's
        on = self.mask.bool()
        im = self.dm.images
        px = self.trigger * im.std.view(-1, 1, 1).to(self.device) + im.mean.view(-1, 1, 1).to(self.device)
        out |= {
            "trigger_min": float(self.trigger[on].min()),
            "trigger_max": float(self.trigger[on].max()),
            "trigger_px_min": float(px[on].min()),
            "trigger_px_max": float(px[on].max()),
        }
        for rng, found in self.nc.items():
            if found:
                suffix = "" if rng == "valid" else f"_{rng}"
                out[f"nc_anomaly{suffix}"] = float(np.mean([i for i, _ in found]))
                out[f"nc_detected{suffix}"] = float(np.mean([f for _, f in found]))
        for rng, (idx, flagged) in self.nc_control.items():
            suffix = "" if rng == "valid" else f"_{rng}"
            out[f"nc_control_anomaly{suffix}"] = idx
            out[f"nc_control_detected{suffix}"] = flagged
        if self.nc_control_asr is not None:
            out["nc_control_asr"] = self.nc_control_asr
        if self.fp_pruned:
            out["fp_pruned"] = float(np.mean(self.fp_pruned))
        return out

    def state_dict(self) -> dict:
        """The instance less the datamodule, which ``setup`` hands again on resume."""
        return {k: v for k, v in super().state_dict().items() if k != "dm"}

    def cost(self) -> dict:
        iters = self.cfg["distill"]["iterations"]
        return {
            # one evaluation network (what the distilled set trains), not the sum over all copies
            "params": sum(p.numel() for p in self.eval_nets[0].parameters()) if self.eval_nets else 0,
            "distill_s": round(self.distill_s, 3),
            "distill_it_per_s": round(iters / max(self.distill_s, 1e-9), 3),
            "trigger_adam_steps": self.trigger_steps,
        }
