"""CMT (Yan et al., ICCV 2023) in plain torch: a BEV encoder over voxelised points and an image
backbone give tokens; coordinate encodings (camera-ray PE for image tokens, BEV sine PE + MLP for
BEV tokens) make them position-aware; 3-D anchor queries, encoded the same two ways, decode both
token sets at once (a DETR decoder over the concatenation) into boxes, one prediction per layer.

A model built with ``use_lidar`` or ``use_camera`` false is the paper's camera-only / LiDAR-only
CMT (CmtImageHead / CmtLidarHead): that branch and its encoding are absent.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from bench.errors import BenchError


def pos2embed(
    pos: torch.Tensor, feats: int, scale: float = 1.0, temperature: float | None = None
) -> torch.Tensor:
    """Sine/cosine encoding of normalised (x, y) in [0, 1]: (..., 2) -> (..., 2 * feats). By default
    the official ``pos2embed``: wavelengths between 1 and 2 range widths (its ``temperature`` is
    unused there). With ``temperature``, DETR's geometric wavelengths from 1 / ``scale`` range
    widths up (a sharper encoding for a short budget; ``model.bev_pe``)."""
    pos = pos * 2 * math.pi * scale
    dim_t = torch.arange(feats, dtype=torch.float32, device=pos.device)
    dim_t = 2 * (dim_t // 2) / feats + 1 if temperature is None else temperature ** (2 * (dim_t // 2) / feats)
    px, py = pos[..., 0, None] / dim_t, pos[..., 1, None] / dim_t
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), -1).flatten(-2)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), -1).flatten(-2)
    return torch.cat((py, px), -1)


def conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.ReLU(True), nn.Linear(hidden, cout))


class Voxelizer(nn.Module):
    """Points (N, 5: batch, x, y, z, time lag) -> BEV pillars (B, 3 x sweeps, G, G): per sweep the
    log point count, max and mean height (dynamic voxelisation by scatter, no compiled ops)."""

    def __init__(self, pc_range: list[float], grid: int, sweeps: int, sweep_lag: float) -> None:
        super().__init__()
        self.pc_range, self.grid, self.sweeps, self.lag = pc_range, grid, sweeps, sweep_lag

    @torch.no_grad()
    def forward(self, points: torch.Tensor, batch: int) -> torch.Tensor:
        x0, y0, z0, x1, y1, z1 = self.pc_range
        g, s = self.grid, self.sweeps
        b, x, y, z, t = points.unbind(1)
        ix = ((x - x0) / (x1 - x0) * g).floor().long()
        iy = ((y - y0) / (y1 - y0) * g).floor().long()
        it = (t / self.lag).round().long().clamp(0, s - 1) if self.lag > 0 else torch.zeros_like(ix)
        ok = (ix >= 0) & (ix < g) & (iy >= 0) & (iy < g) & (z >= z0) & (z < z1)
        idx = ((b.long() * s + it) * g + iy) * g + ix
        idx, zn = idx[ok], ((z[ok] - z0) / (z1 - z0))
        size = batch * s * g * g
        count = torch.zeros(size, device=points.device).index_add_(0, idx, torch.ones_like(zn))
        zsum = torch.zeros(size, device=points.device).index_add_(0, idx, zn)
        zmax = torch.zeros(size, device=points.device).scatter_reduce_(0, idx, zn, "amax", include_self=True)
        feats = torch.stack([count.log1p(), zmax, zsum / count.clamp_min(1)], 1)  # (B*S*G*G, 3)
        return feats.view(batch, s, g, g, 3).permute(0, 1, 4, 2, 3).reshape(batch, s * 3, g, g)


class DecoderLayer(nn.Module):
    """PETR/CMT decoder layer: self-attention, norm, cross-attention to the tokens, norm, FFN, norm;
    positions added to queries and keys (DETR style)."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.ReLU(True), nn.Linear(ffn, d))
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in range(3))

    def forward(self, tgt, query_pos, memory, key_pos, attn_mask=None, key_padding_mask=None):
        q = tgt + query_pos
        tgt = self.norms[0](tgt + self.self_attn(q, q, tgt, attn_mask=attn_mask, need_weights=False)[0])
        tgt = self.norms[1](
            tgt
            + self.cross_attn(
                tgt + query_pos,
                memory + key_pos,
                memory,
                key_padding_mask=key_padding_mask,
                need_weights=False,
            )[0]
        )
        return self.norms[2](tgt + self.ffn(tgt))


class Head(nn.Module):
    """One decoder layer's task head: centre, height, dims, rotation, velocity and class logits,
    each a two-layer MLP (SeparateTaskHead)."""

    SPLITS = {"center": 2, "height": 1, "dim": 3, "rot": 2, "vel": 2}

    def __init__(self, d: int, num_classes: int, init_bias: float) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({k: mlp(d, d, n) for k, n in {**self.SPLITS, "cls": num_classes}.items()})
        nn.init.constant_(self.heads["cls"][-1].bias, init_bias)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {k: h(x) for k, h in self.heads.items()}


class CMT(nn.Module):
    """The detector. ``forward(points, images, lidar2img, ref)`` returns per decoder layer the box
    code (B, Q, 10: cx, cy, log w, log l, cz, log h, sin, cos, vx, vy) and logits (B, Q, C)."""

    def __init__(self, m: dict, geo: dict, num_classes: int, use_lidar: bool, use_camera: bool) -> None:
        super().__init__()
        d = m["dim"]
        self.use_lidar, self.use_camera = use_lidar, use_camera
        self.pc_range, self.depth_num = geo["pc_range"], m["depth_num"]
        self.image_size = geo["image_size"]
        self.bev_embedding = mlp(2 * d, d, d)  # shared by BEV tokens and queries, as CmtHead
        self.bev_pe = dict(m["bev_pe"])  # pos2embed's scale and temperature
        if use_lidar:
            self.voxelizer = Voxelizer(geo["pc_range"], geo["grid"], geo["sweeps"], geo["sweep_lag"])
            c, stride = m["bev_channels"], m["bev_stride"]
            if stride not in (2, 4):
                raise BenchError(f"model.bev_stride must be 2 or 4, got {stride}")
            self.bev_backbone = nn.Sequential(
                conv(3 * geo["sweeps"], c), conv(c, 2 * c, 2), conv(2 * c, 2 * c, stride // 2), conv(2 * c, d)
            )
            side = geo["grid"] // stride
            ys, xs = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
            self.register_buffer(
                "coords_bev", torch.stack([(xs + 0.5) / side, (ys + 0.5) / side], -1).view(-1, 2)
            )
        if use_camera:
            c = m["img_channels"]
            self.img_backbone = nn.Sequential(
                conv(3, c, 2), conv(c, 2 * c, 2), conv(2 * c, 2 * c), conv(2 * c, 4 * c, 2), conv(4 * c, d)
            )
            self.img_stride = 8
            self.rv_embedding = mlp(3 * m["depth_num"], 4 * d, d)
        self.reference_points = nn.Embedding(m["queries"], 3)
        nn.init.uniform_(self.reference_points.weight, 0, 1)
        self.layers = nn.ModuleList(
            DecoderLayer(d, m["heads"], m["ffn"], m["dropout"]) for _ in range(m["layers"])
        )
        self.heads = nn.ModuleList(Head(d, num_classes, m["cls_init_bias"]) for _ in range(m["layers"]))

    # --- coordinate encodings -------------------------------------------------------------
    def _normalise(self, xyz: torch.Tensor) -> torch.Tensor:
        lo, hi = xyz.new_tensor(self.pc_range[:3]), xyz.new_tensor(self.pc_range[3:])
        return (xyz - lo) / (hi - lo)

    def _depths(self, device) -> torch.Tensor:
        return (
            1 + torch.arange(self.depth_num, device=device).float() * (self.pc_range[3] - 1) / self.depth_num
        )

    def rv_pe(self, h: int, w: int, lidar2img: torch.Tensor) -> torch.Tensor:
        """Camera-ray PE of every image token: points at ``depth_num`` depths along its pixel's
        ray, mapped to LiDAR space by inv(lidar2img), normalised, MLP -> (B, N, h*w, d)."""
        img_h, img_w = self.image_size
        dev = lidar2img.device
        v, u, dep = torch.meshgrid(
            torch.arange(h, device=dev) * img_h / h,
            torch.arange(w, device=dev) * img_w / w,
            self._depths(dev),
            indexing="ij",
        )
        pix = torch.stack([u * dep, v * dep, dep, torch.ones_like(dep)], -1)  # (h, w, D, 4)
        pts = torch.einsum("hwdo,bnco->bnhwdc", pix, torch.linalg.inv(lidar2img))[..., :3]
        return self.rv_embedding(self._normalise(pts).flatten(-2)).flatten(2, 3)

    def rv_query_embed(self, ref: torch.Tensor, lidar2img: torch.Tensor) -> torch.Tensor:
        """Camera-ray PE of each anchor: project it into every camera, take the ray through that
        pixel as for image tokens, sum over the cameras that see it -> (B, Q, d)."""
        img_h, img_w = self.image_size
        xyz = ref * ref.new_tensor(self.pc_range[3:]).sub(ref.new_tensor(self.pc_range[:3])) + ref.new_tensor(
            self.pc_range[:3]
        )
        hom = torch.cat([xyz, torch.ones_like(xyz[..., :1])], -1)  # (B, Q, 4)
        proj = torch.einsum("bqd,bncd->bnqc", hom, lidar2img)
        z = proj[..., 2:3].detach()
        front = z > 0
        uvz = proj[..., :3] / (z + front * 1e-6 - (~front) * 1e-6)
        mask = (
            (uvz[..., 0] >= 0)
            & (uvz[..., 0] < img_w)
            & (uvz[..., 1] >= 0)
            & (uvz[..., 1] < img_h)
            & front[..., 0]
        )
        pix = torch.einsum("bnqc,d->bnqdc", uvz, self._depths(ref.device))
        pix = torch.cat([pix, torch.ones_like(pix[..., :1])], -1)
        back = torch.einsum("bnqdo,bnco->bnqdc", pix, torch.linalg.inv(lidar2img))[..., :3]
        emb = self.rv_embedding(self._normalise(back).flatten(-2))
        return (emb * mask.unsqueeze(-1)).sum(1)

    # --- forward ------------------------------------------------------------------------------
    def forward(self, points, images, lidar2img, ref, attn_mask=None):
        """``ref`` (B, Q', 3) normalised anchors (the learned ones, after any denoising ones)."""
        tokens, keys = [], []
        batch = ref.shape[0]
        if self.use_lidar:
            bev = self.bev_backbone(self.voxelizer(points, batch))  # (B, d, g, g)
            tokens.append(bev.flatten(2).transpose(1, 2))
            keys.append(
                self.bev_embedding(pos2embed(self.coords_bev, bev.shape[1], **self.bev_pe)).expand(
                    batch, -1, -1
                )
            )
        if self.use_camera:
            b, n = images.shape[:2]
            feat = self.img_backbone(images.flatten(0, 1))  # (B*N, d, h, w)
            h, w = feat.shape[-2:]
            tokens.append(feat.view(b, n, -1, h * w).permute(0, 1, 3, 2).reshape(b, n * h * w, -1))
            if (lidar2img == lidar2img[:1]).all():  # one rig for the whole batch: encode its rays once
                keys.append(self.rv_pe(h, w, lidar2img[:1]).flatten(1, 2).expand(b, -1, -1))
            else:
                keys.append(self.rv_pe(h, w, lidar2img).flatten(1, 2))
        memory, key_pos = torch.cat(tokens, 1), torch.cat(keys, 1)
        query_pos = self.bev_embedding(pos2embed(ref[..., :2], memory.shape[-1], **self.bev_pe))
        if self.use_camera:
            query_pos = query_pos + self.rv_query_embed(ref, lidar2img)
        tgt = torch.zeros_like(query_pos)
        reference = torch.logit(ref.clamp(1e-5, 1 - 1e-5))
        lo, hi = ref.new_tensor(self.pc_range[:3]), ref.new_tensor(self.pc_range[3:])
        outs = []
        for layer, head in zip(self.layers, self.heads, strict=True):
            tgt = layer(tgt, query_pos, memory, key_pos, attn_mask)
            o = head(tgt)
            center = (o["center"] + reference[..., :2]).sigmoid() * (hi[:2] - lo[:2]) + lo[:2]
            height = (o["height"] + reference[..., 2:3]).sigmoid() * (hi[2] - lo[2]) + lo[2]
            dim = o["dim"]  # log w, log l, log h
            code = torch.cat([center, dim[..., :2], height, dim[..., 2:3], o["rot"], o["vel"]], -1)
            outs.append((code, o["cls"]))
        return outs
