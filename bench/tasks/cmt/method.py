"""The cmt methods: CMT with both modalities (with or without masked-modal training), and its
camera-only and LiDAR-only variants, each tested with all inputs, with the LiDAR dropped and with
the cameras dropped (the dropped input zeroed, as the official ModalMask3D does)."""

from __future__ import annotations

import torch
from torch import nn

from bench import provenance
from bench.artifacts import cached, find
from bench.errors import BenchError
from bench.method import TrainedMethod
from bench.tasks.cmt.losses import DetectionLoss, decode
from bench.tasks.cmt.metric import NuScenesDetection, attr_index, predicted_attribute
from bench.tasks.cmt.model import CMT

MODES = {"": None, "_no_lidar": "lidar", "_no_camera": "camera"}


def geometry(d: dict) -> dict:
    r, (z0, z1) = d["range"], d["z_range"]
    return {
        "pc_range": [-r, -r, z0, r, r, z1],
        "grid": d["grid"],
        "image_size": list(d["image_size"]),
        "sweeps": d["sweeps"],
        "sweep_lag": d["sweep_lag"],
    }


def drop(batch: dict, lidar: torch.Tensor, camera: torch.Tensor) -> dict:
    """The batch with the points (all coordinates zeroed) of samples ``lidar`` and the images of
    samples ``camera`` (boolean per sample) zeroed."""
    points = batch["points"].clone()
    gone = lidar[points[:, 0].long()]
    points[:, 1:] = torch.where(gone[:, None], 0.0, points[:, 1:])
    images = batch["images"] * (~camera).float().view(-1, 1, 1, 1, 1)
    return {**batch, "points": points, "images": images}


# the parts of a fusion model taken from each single-modality model (warm start): its backbone and
# token encoding, as the paper's fusion starts from a pretrained image backbone; the decoder, heads
# and anchors start fresh (taking them from either model gives a fusion model that never learns to
# read the other modality's tokens: docs/tasks/cmt.md)
WARM = {"lidar": ("bev_backbone.", "bev_embedding."), "camera": ("img_backbone.", "rv_embedding.")}


class CMTMethod(TrainedMethod):
    """CMT on the preset's scenes. ``lidar``/``camera``: the modalities the model has; ``masked``:
    masked-modal training (per sample, images zeroed with p = mask_prob, else points zeroed with
    p = mask_prob). With ``optim.warm_steps`` > 0 every model trains in two stages. Stage 1: the
    single-modality models train the first ``warm_steps`` steps of a one-cycle schedule over
    ``trainer.max_steps`` and leave their state as shared artifacts (``cmt/lidar_model``,
    ``cmt/camera_model``). Stage 2: every model keeps the backbones and token encodings of the same
    seed's stage-1 states (the analogue of the paper's pretrained backbones), starts its decoder,
    heads, anchors and optimizer state fresh and trains the remaining steps on a new one-cycle
    schedule: a single-modality model restarts on its own backbone, a fusion model on both. So
    each fusion backbone and the single-modality model it is compared with share the same steps,
    schedule and restart, and differ only in the other sensor. ``restart=False``: a
    single-modality model that stores its stage-1 state and trains on in its one cycle, as the
    paper trains its single-modality models (the control a restart could weaken)."""

    def __init__(
        self, cfg: dict, lidar: bool = True, camera: bool = True, masked: bool = False, restart: bool = True
    ) -> None:
        super().__init__(cfg)
        d = cfg["data"]
        self.classes = list(d["classes"])
        self.lidar, self.camera, self.masked, self.restarts = lidar, camera, masked, restart
        self.stored = False  # stage 1's state stored (once, whatever the batches per step)
        self.geo = geometry(d)
        self.model = CMT(cfg["model"], self.geo, len(self.classes), lidar, camera)
        self.loss = DetectionLoss(cfg["loss"], self.geo["pc_range"], len(self.classes))
        self.metrics = nn.ModuleDict(
            {m or "full": NuScenesDetection(self.classes, cfg["eval"]) for m in MODES}
        )
        total, self.warm_steps = cfg["trainer"]["max_steps"], cfg["optim"]["warm_steps"]
        if not 0 <= self.warm_steps < total:
            raise BenchError(
                f"optim.warm_steps must be in [0, trainer.max_steps = {total}), got {self.warm_steps}"
            )
        self.fused = lidar and camera
        self.steps = total - self.warm_steps if self.fused else total  # this run's optimizer steps

    # --- stage 1: single-modality models as shared stages (warm start) ------------------------
    def single_config(self, modality: str) -> dict:
        """The stage-1 state's key: everything that trains it, and the task's code (a code change
        must not hand a fusion run a backbone trained by other code)."""
        keys = ("data", "model", "loss", "optim", "trainer", "seed")
        code = provenance.fingerprint("cmt")
        return {k: self.cfg[k] for k in keys} | {"modality": modality, "code": code}

    def on_fit_start(self) -> None:
        if not (self.fused and self.warm_steps):
            return
        states = {}
        for modality in ("lidar", "camera"):
            folder = find("cmt", f"{modality}_model", self.single_config(modality))
            if folder is None:
                raise BenchError(
                    f"warm start: no trained cmt_{modality} model for seed {self.cfg['seed']} at this "
                    f"config; run cmt_lidar and cmt_camera first (bench sweep cmt --methods "
                    "cmt_lidar,cmt_camera,cmt,cmt_nomask)"
                )
            states[modality] = torch.load(folder / "model.pt", weights_only=True)
        own = self.model.state_dict()
        for modality, prefixes in WARM.items():
            own.update({k: v for k, v in states[modality].items() if k.startswith(prefixes)})
        self.model.load_state_dict(own)

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if not self.fused and self.warm_steps and self.global_step == self.warm_steps and not self.stored:
            self.store()
            if self.restarts:
                self.restart()

    def store(self) -> None:
        """The end of a single-modality model's stage 1: its state, for the fusion runs."""
        modality = "lidar" if self.lidar else "camera"
        state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        cached(
            "cmt",
            f"{modality}_model",
            self.single_config(modality),
            lambda f: torch.save(state, f / "model.pt"),
        )
        self.stored = True

    def restart(self) -> None:
        """Stage 2 of a single-modality model, started as a fusion run starts: fresh decoder, heads
        and anchors, fresh optimizer state, a new one-cycle schedule over the remaining steps."""
        modality = "lidar" if self.lidar else "camera"
        fresh = CMT(self.cfg["model"], self.geo, len(self.classes), self.lidar, self.camera)
        kept = WARM[modality]
        own = self.model.state_dict()
        own.update({k: v.to(self.device) for k, v in fresh.state_dict().items() if not k.startswith(kept)})
        self.model.load_state_dict(own)
        opt = self.trainer.optimizers[0]
        opt.state.clear()
        self.trainer.lr_scheduler_configs[0].scheduler = self.schedule(opt, self.steps - self.warm_steps)

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.global_step >= self.steps:
            self.trainer.should_stop = True

    def cost(self) -> dict:
        return super().cost() | {"train_steps": self.global_step}

    def schedule(self, opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
        """One cycle over ``steps``: lr from lr / div_factor up to lr (cosine, warmup_frac of the
        steps) and down to 1e-4 of the start; Adam's beta1 from momentum[1] down to momentum[0]
        and back (the official mmcv cyclic lr and momentum are the same curves)."""
        o = self.cfg["optim"]
        return torch.optim.lr_scheduler.OneCycleLR(
            opt,
            max_lr=o["lr"],
            total_steps=steps,
            pct_start=o["warmup_frac"],
            div_factor=o["div_factor"],
            base_momentum=o["momentum"][0],
            max_momentum=o["momentum"][1],
        )

    def configure_optimizers(self):
        o = self.cfg["optim"]
        opt = torch.optim.AdamW(self.parameters(), lr=o["lr"], weight_decay=o["weight_decay"])
        sched = self.schedule(opt, self.steps)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def forward_batch(self, batch: dict, ref: torch.Tensor, attn_mask=None):
        return self.model(batch["points"], batch["images"], batch["lidar2img"], ref, attn_mask)

    def training_step(self, batch, batch_idx):
        b = len(batch["targets"])
        if self.masked:
            u = torch.rand(b, device=self.device)
            p = self.cfg["optim"]["mask_prob"]
            batch = drop(batch, lidar=(u > 1 - 2 * p) & (u <= 1 - p), camera=u > 1 - p)
        anchors = self.model.reference_points.weight
        ref = anchors.unsqueeze(0).expand(b, -1, -1)
        dn = self.loss.dn_queries(batch["targets"], len(anchors), self.device)
        if dn is not None:
            ref = torch.cat([dn[0], ref], 1)
        outs = self.forward_batch(batch, ref, dn[1] if dn is not None else None)
        loss, parts = self.loss(outs, batch["targets"], dn)
        self.log("train/loss", loss.detach(), prog_bar=True, batch_size=b)
        self.log_dict(
            {f"train/{k}": float(v.detach() if torch.is_tensor(v) else v) for k, v in parts.items()},
            batch_size=b,
        )
        return loss

    @torch.no_grad()
    def predict(self, batch: dict) -> list[dict]:
        b = len(batch["targets"])
        ref = self.model.reference_points.weight.unsqueeze(0).expand(b, -1, -1)
        code, logits = self.forward_batch(batch, ref)[-1]
        preds = decode(code, logits, self.cfg["eval"]["max_boxes"])
        r = self.cfg["eval"]["post_center_range"]
        for p in preds:
            keep = (p["boxes"][:, :2].abs() <= r).all(1)
            p.update({k: v[keep] for k, v in p.items()})
            speed = p["boxes"][:, 7:9].norm(dim=1).tolist()
            names = [self.classes[i] for i in p["labels"].tolist()]
            p["attrs"] = torch.tensor(
                [attr_index(predicted_attribute(n, s)) for n, s in zip(names, speed, strict=True)],
                dtype=torch.long,
            )
        return preds

    def test_step(self, batch, batch_idx):
        b = len(batch["targets"])
        for mode, gone in MODES.items():
            flags = torch.ones(b, dtype=torch.bool, device=self.device)
            none = torch.zeros_like(flags)
            masked = drop(batch, flags if gone == "lidar" else none, flags if gone == "camera" else none)
            self.metrics[mode or "full"].update(self.predict(masked), batch["targets"])

    def on_test_epoch_end(self) -> None:
        for mode in MODES:
            values = self.metrics[mode or "full"].compute()
            self.log_dict({f"test/{k}{mode}": v.float() for k, v in values.items()}, batch_size=1)
            self.metrics[mode or "full"].reset()
