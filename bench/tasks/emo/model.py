"""EMO: Efficient MOdel built from Inverted Residual Mobile Blocks (iRMB).

Re-implementation of "Rethinking Mobile Block for Efficient Attention-based Models"
(Zhang et al., ICCV 2023), following the structure of the official code
(github.com/zhangzjn/EMO, model/emo.py), plus the two baselines of the task.
Decisions taken where the official code is specific are marked "NOTE (official)".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import DropPath, LayerNorm2d, SqueezeExcite
from torch import nn

NORM_EPS = 1e-6  # NOTE (official): every BN / LN of EMO uses eps=1e-6.


def make_norm(kind: str, dim: int) -> nn.Module:
    """'bn' -> BatchNorm2d, 'ln' -> channel LayerNorm2d (both eps=1e-6)."""
    if kind == "bn":
        return nn.BatchNorm2d(dim, eps=NORM_EPS)
    if kind == "ln":
        return LayerNorm2d(dim, eps=NORM_EPS)
    raise ValueError(f"unknown norm {kind!r}")


ACTS: dict[str, type[nn.Module]] = {"silu": nn.SiLU, "gelu": nn.GELU, "relu": nn.ReLU}


class iRMB(nn.Module):  # noqa: N801  (name as in the paper)
    """Inverted Residual Mobile Block: norm -> [window MHSA] + V (1x1 expand, act) ->
    depthwise kxk (BN, SiLU; inner residual) -> [SE] -> 1x1 projection -> DropPath + residual."""

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        *,
        exp_ratio: float = 1.0,
        norm: str = "bn",
        act: str = "silu",
        dw_ks: int = 3,
        stride: int = 1,
        has_skip: bool = True,
        attn: bool = False,
        dim_head: int = 16,
        window_size: int = 7,
        pad_small_maps: bool = True,
        se_ratio: float = 0.0,
        v_proj: bool = True,
        norm_in: bool = True,
        qkv_bias: bool = True,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        dim_mid = int(dim_in * exp_ratio)  # NOTE (official): int() truncation, e.g. 168*3.5 = 588
        self.norm = make_norm(norm, dim_in) if norm_in else nn.Identity()
        self.has_skip = has_skip and dim_in == dim_out and stride == 1
        self.attn = attn
        if attn:
            assert dim_in % dim_head == 0, f"dim {dim_in} not divisible by dim_head {dim_head}"
            self.num_heads, self.window_size = dim_in // dim_head, window_size
            self.pad_small_maps = pad_small_maps
            self.scale = dim_head**-0.5
            self.qk = nn.Conv2d(dim_in, 2 * dim_in, 1, bias=qkv_bias)  # Q and K only; no norm/act
        if v_proj or attn:
            self.v = nn.Sequential(nn.Conv2d(dim_in, dim_mid, 1, bias=qkv_bias), ACTS[act]())
        else:
            assert dim_mid == dim_in, "v_proj=False needs exp_ratio=1"
            self.v = nn.Identity()
        # NOTE (official): the depthwise conv always uses BN + SiLU, whatever the stage norm/act.
        self.conv_local = nn.Sequential(
            nn.Conv2d(dim_mid, dim_mid, dw_ks, stride, dw_ks // 2, groups=dim_mid, bias=False),
            nn.BatchNorm2d(dim_mid, eps=NORM_EPS),
            nn.SiLU(),
        )
        # rd channels rounded as timm's efficientnet SE, which the official code uses
        self.se = (
            SqueezeExcite(dim_mid, rd_channels=round(dim_mid * se_ratio), act_layer=ACTS[act])
            if se_ratio > 0
            else nn.Identity()
        )
        self.proj = nn.Conv2d(dim_mid, dim_out, 1, bias=False)  # NOTE (official): no bias, no norm
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    def _window_attention(self, x: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention inside 7x7 windows, then V projection (C -> dim_mid).

        NOTE (official): the feature map is zero-padded (right/bottom) to a multiple of the
        window and partitioned as 'b c (h1 n1) (w1 n2) -> (b n1 n2) c h1 w1', i.e. each window
        holds the pixels (i*n1 + a, j*n2 + b) -- a strided *grid* over the whole map, not a
        contiguous patch. Padded tokens act as (unmasked) keys, as in the official code.
        NOTE (official, attn_pre=True in all released variants): attention mixes the
        normalized input x itself (heads of width dim_head), and V = act(1x1 conv) is applied
        after the attention, so the attention matrix costs C, not lambda*C, channels.
        """
        bsz, c, h, w = x.shape
        ws = self.window_size
        wh, ww = (ws, ws) if ws > 0 else (h, w)
        if not self.pad_small_maps:  # a map smaller than the window is one (global) window
            wh, ww = min(wh, h), min(ww, w)
        pad_b, pad_r = (-h) % wh, (-w) % ww
        x = F.pad(x, (0, pad_r, 0, pad_b))
        n1, n2 = (h + pad_b) // wh, (w + pad_r) // ww
        x = x.reshape(bsz, c, wh, n1, ww, n2).permute(0, 3, 5, 1, 2, 4).reshape(bsz * n1 * n2, c, wh, ww)
        nw, nt, nh = x.shape[0], wh * ww, self.num_heads  # windows, tokens per window, heads
        q, k = self.qk(x).reshape(nw, 2, nh, c // nh, nt).transpose(-1, -2).unbind(1)  # (nw, nh, nt, d)
        attn = ((q @ k.transpose(-1, -2)) * self.scale).softmax(dim=-1)
        x = (attn @ x.reshape(nw, nh, c // nh, nt).transpose(-1, -2)).transpose(-1, -2)
        x = self.v(x.reshape(nw, c, wh, ww))
        cm = x.shape[1]
        x = x.reshape(bsz, n1, n2, cm, wh, ww).permute(0, 3, 4, 1, 5, 2).reshape(bsz, cm, wh * n1, ww * n2)
        return x[:, :, :h, :w]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        x = self.norm(x)
        x = self._window_attention(x) if self.attn else self.v(x)
        y = self.se(self.conv_local(x))
        x = self.proj(x + y if self.has_skip else y)
        return shortcut + self.drop_path(x) if self.has_skip else x


class EMO(nn.Module):
    """EMO classifier: stem (3x3/2 conv + BN, one iRMB) -> 4 iRMB stages -> norm -> GAP -> linear."""

    def __init__(
        self,
        depths: Sequence[int],
        dims: Sequence[int],
        exp_ratios: Sequence[float],
        dim_heads: Sequence[int],
        *,
        stem_dim: int = 24,
        norms: Sequence[str] = ("bn", "bn", "ln", "ln"),
        acts: Sequence[str] = ("silu", "silu", "gelu", "gelu"),
        dw_kss: Sequence[int] = (3, 3, 5, 5),
        attns: Sequence[bool] = (False, False, True, True),
        se_ratios: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
        window_size: int = 7,
        pad_small_maps: bool = True,
        qkv_bias: bool = True,
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        # NOTE (official): the stem conv has a bias and BN but no activation; the stem iRMB has no
        # norm, no V projection (identity), exp ratio 1, dw 3x3, SE with rd_ratio 1, no residual.
        self.stem = nn.Sequential(
            nn.Conv2d(in_chans, stem_dim, dw_kss[0], 2, dw_kss[0] // 2),
            make_norm(norms[0], stem_dim),
            iRMB(
                stem_dim,
                stem_dim,
                norm_in=False,
                has_skip=False,
                exp_ratio=1.0,
                act=acts[0],
                v_proj=False,
                dw_ks=dw_kss[0],
                se_ratio=1.0,
                qkv_bias=qkv_bias,
            ),
        )
        # Drop-path grows linearly over all stage blocks (stem block: 0).
        dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        stages, dim_prev, idx = [], stem_dim, 0
        for i, depth in enumerate(depths):
            blocks = []
            for j in range(depth):
                first = j == 0  # NOTE (official): stride 2, no skip, no attention, 2x expansion
                blocks.append(
                    iRMB(
                        dim_prev,
                        dims[i],
                        exp_ratio=exp_ratios[i] * (2 if first else 1),
                        norm=norms[i],
                        act=acts[i],
                        dw_ks=dw_kss[i],
                        stride=2 if first else 1,
                        has_skip=not first,
                        attn=attns[i] and not first,
                        dim_head=dim_heads[i],
                        window_size=window_size,
                        pad_small_maps=pad_small_maps,
                        se_ratio=se_ratios[i],
                        qkv_bias=qkv_bias,
                        drop_path=dpr[idx],
                    )
                )
                dim_prev, idx = dims[i], idx + 1
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.norm = make_norm(norms[-1], dims[-1])  # NOTE (official): LN for the released variants
        self.head = nn.Linear(dims[-1], num_classes)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x).mean((2, 3)))


# Constructor kwargs of the released variants (official EMO_1M ... EMO_6M). Shared by all:
# stem_dim 24, norms bn,bn,ln,ln, acts silu,silu,gelu,gelu, dw kernels 3,3,5,5, attention in
# stages 3-4, window 7, qkv_bias, no SE in the stages (EMO defaults). The official training
# drop-path rates (0.04036 for 1M, 0.05 otherwise) are passed through build_model instead.
EMO_VARIANTS: dict[str, dict[str, Any]] = {
    "emo_1m": {
        "depths": (2, 2, 8, 3),
        "dims": (32, 48, 80, 168),
        "exp_ratios": (2.0, 2.5, 3.0, 3.5),
        "dim_heads": (16, 16, 20, 21),
    },
    "emo_2m": {
        "depths": (3, 3, 9, 3),
        "dims": (32, 48, 120, 200),
        "exp_ratios": (2.0, 2.5, 3.0, 3.5),
        "dim_heads": (16, 16, 20, 20),
    },
    "emo_5m": {
        "depths": (3, 3, 9, 3),
        "dims": (48, 72, 160, 288),
        "exp_ratios": (2.0, 3.0, 4.0, 4.0),
        "dim_heads": (24, 24, 32, 32),
    },
    "emo_6m": {
        "depths": (3, 3, 9, 3),
        "dims": (48, 72, 160, 320),
        "exp_ratios": (2.0, 3.0, 4.0, 5.0),
        "dim_heads": (16, 24, 20, 32),
    },
}

# MobileNetV2 width multiplier sized to EMO-1M (1.361M params at 1000 classes). torchvision keeps
# the 1280-d last layer for width < 1, so the 1280x1000 classifier alone is 1.281M params and only a
# ~80K backbone (width 0.1, nearly all layers at the 8-channel floor) would match exactly. 0.2 gives
# 1.471M (+8%); the standard 0.35 gives 1.677M (+23%). NB: with 10 classes it is 0.20M vs EMO-1M's
# 1.19M -- width 0.7 (1.21M) would match there; pass width_mult to build_model for that.
MOBILENETV2_WIDTH = 0.2
MODEL_NAMES: tuple[str, ...] = (*EMO_VARIANTS, "mobilenetv2", "mobilevit_xxs")


def build_model(name: str, num_classes: int, drop_path_rate: float = 0.0, **kwargs: Any) -> nn.Module:
    """Build one of MODEL_NAMES. `width_mult` is accepted for "mobilenetv2"."""
    if name in EMO_VARIANTS:
        return EMO(**EMO_VARIANTS[name], num_classes=num_classes, drop_path_rate=drop_path_rate, **kwargs)
    if name == "mobilenetv2":
        import torchvision

        width = kwargs.pop("width_mult", MOBILENETV2_WIDTH)
        return torchvision.models.mobilenet_v2(width_mult=width, num_classes=num_classes, **kwargs)
    if name == "mobilevit_xxs":
        import timm

        return timm.create_model(
            "mobilevit_xxs",
            pretrained=False,
            num_classes=num_classes,
            drop_path_rate=drop_path_rate,
            **kwargs,
        )
    raise ValueError(f"unknown model {name!r}; known: {', '.join(MODEL_NAMES)}")
