"""A compact Mask2Former assembled from mmdet 3.3's parts (ResNet, MSDeformAttnPixelDecoder,
Mask2FormerTransformerDecoder, HungarianAssigner, CE + mask BCE + Dice losses, the instance
post-processing of MaskFormerFusionHead), with RefT's two references:

- feature level: support features mask-pooled into class centres; every query-image pixel
  cross-attends to the centres and the result re-weights its channels, ``F * (1 + A)``;
- instance level: the object queries the decoder produces on support images (the one Hungarian-
  matched to each support instance) are averaged per class; after every decoder layer the
  query-image object queries cross-attend to them, ``Q + A``.

References hold one slot per class (a bank: per-class means and a filled mask). Training passes
each step's bank from a support episode (images disjoint from the query batch); at test the bank
is the buffers, filled from the whole support set. Empty slots are masked. Both reference modules
always exist (one base state serves every method); ``refs`` names the ones a method uses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from mmdet.models.backbones import ResNet
from mmdet.models.dense_heads import Mask2FormerHead
from mmdet.models.seg_heads import MaskFormerFusionHead
from mmengine.config import ConfigDict
from mmengine.registry import init_default_scope
from mmengine.structures import InstanceData
from torch import Tensor, nn

init_default_scope("mmdet")
REFS = ("feature", "instance")
Bank = tuple[Tensor, Tensor, Tensor]  # per-class centres [K, C], support queries [K, C], filled [K]


def head_config(m: dict, in_channels: list[int], num_classes: int) -> dict:
    """mmdet's ``mask2former_r50_8xb2-lsj-50e_coco.py`` head, shrunk to the preset's sizes."""
    c = m["channels"]
    attn = dict(embed_dims=c, num_heads=m["heads"], dropout=0.0, batch_first=True)
    return dict(
        in_channels=in_channels,
        strides=[4, 8, 16, 32],
        feat_channels=c,
        out_channels=c,
        num_things_classes=num_classes,
        num_stuff_classes=0,
        num_queries=m["queries"],
        num_transformer_feat_level=3,
        pixel_decoder=dict(
            type="MSDeformAttnPixelDecoder",
            num_outs=3,
            norm_cfg=dict(type="GN", num_groups=m["gn_groups"]),
            act_cfg=dict(type="ReLU"),
            encoder=dict(
                num_layers=m["encoder_layers"],
                layer_cfg=dict(
                    self_attn_cfg=dict(
                        embed_dims=c,
                        num_heads=m["heads"],
                        num_levels=3,
                        num_points=4,
                        dropout=0.0,
                        batch_first=True,
                    ),
                    ffn_cfg=dict(embed_dims=c, feedforward_channels=m["ffn"], num_fcs=2, ffn_drop=0.0),
                ),
            ),
            positional_encoding=dict(num_feats=c // 2, normalize=True),
        ),
        enforce_decoder_input_project=False,
        positional_encoding=dict(num_feats=c // 2, normalize=True),
        transformer_decoder=dict(
            return_intermediate=True,
            num_layers=m["decoder_layers"],
            layer_cfg=dict(
                self_attn_cfg=attn,
                cross_attn_cfg=attn,
                ffn_cfg=dict(embed_dims=c, feedforward_channels=m["decoder_ffn"], num_fcs=2, ffn_drop=0.0),
            ),
            init_cfg=None,
        ),
        loss_cls=dict(
            type="CrossEntropyLoss",
            use_sigmoid=False,
            loss_weight=m["loss_cls"],
            reduction="mean",
            class_weight=[1.0] * num_classes + [m["no_object_weight"]],
        ),
        loss_mask=dict(
            type="CrossEntropyLoss", use_sigmoid=True, reduction="mean", loss_weight=m["loss_mask"]
        ),
        loss_dice=dict(
            type="DiceLoss",
            use_sigmoid=True,
            activate=True,
            reduction="mean",
            naive_dice=True,
            eps=1.0,
            loss_weight=m["loss_dice"],
        ),
        train_cfg=dict(
            num_points=m["mask_points"],
            oversample_ratio=3.0,
            importance_sample_ratio=0.75,
            assigner=dict(
                type="HungarianAssigner",
                match_costs=[
                    dict(type="ClassificationCost", weight=m["loss_cls"]),
                    dict(type="CrossEntropyLossCost", weight=m["loss_mask"], use_sigmoid=True),
                    dict(type="DiceCost", weight=m["loss_dice"], pred_act=True, eps=1.0),
                ],
            ),
            sampler=dict(type="MaskPseudoSampler"),
        ),
        test_cfg=dict(
            panoptic_on=False, semantic_on=False, instance_on=True, max_per_image=m["max_per_image"]
        ),
        init_cfg=None,
    )


class Reference(nn.Module):
    """Cross-attention from ``x`` [B, N, C] to per-class references [R, C]. The output projection
    starts at zero (the model starts as plain Mask2Former); base training moves it."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.reset()

    def reset(self) -> None:
        self.norm.reset_parameters()
        self.attn._reset_parameters()
        nn.init.zeros_(self.attn.out_proj.weight)
        nn.init.zeros_(self.attn.out_proj.bias)

    def forward(self, x: Tensor, refs: Tensor, missing: Tensor) -> Tensor:
        r = refs.unsqueeze(0).expand(x.shape[0], -1, -1)
        out, _ = self.attn(self.norm(x), r, r, key_padding_mask=missing.unsqueeze(0).expand(x.shape[0], -1))
        return out


class FewShotMask2Former(nn.Module):
    """Mask2Former (backbone + head) plus the references named in ``refs`` (feature, instance)."""

    def __init__(self, m: dict, num_classes: int, refs: tuple[str, ...] = ()) -> None:
        super().__init__()
        b = m["base_channels"]
        # From ImageNet weights (model.pretrained: a torchvision ResNet checkpoint's path), as
        # mmdet's Mask2Former: BN frozen (norm_eval=True, no gradient). From scratch: BN trains
        # (norm_eval=True would keep a fresh backbone at its initial statistics).
        pretrained = m["pretrained"]
        self.backbone = ResNet(
            depth=m["depth"],
            base_channels=b,
            norm_cfg=dict(type="BN", requires_grad=pretrained is None),
            norm_eval=pretrained is not None,
            init_cfg=None if pretrained is None else dict(type="Pretrained", checkpoint=str(pretrained)),
        )
        if pretrained is not None:
            self.backbone.init_weights()
        expansion = 1 if m["depth"] < 50 else 4
        in_channels = [b * expansion * 2**i for i in range(4)]
        self.head = Mask2FormerHead(**ConfigDict(head_config(m, in_channels, num_classes)))
        self.head.init_weights()
        self.fusion = MaskFormerFusionHead(
            num_things_classes=num_classes,
            num_stuff_classes=0,
            test_cfg=dict(max_per_image=m["max_per_image"]),
            init_cfg=None,
        )
        self.num_classes, self.refs, c = num_classes, tuple(refs), m["channels"]
        if unknown := set(refs) - set(REFS):
            raise ValueError(f"unknown references {sorted(unknown)}: use {REFS}")
        self.feature_ref = Reference(c, m["heads"])
        self.instance_ref = Reference(c, m["heads"])
        self.register_buffer("centres", torch.zeros(num_classes, c))
        self.register_buffer("squeries", torch.zeros(num_classes, c))
        self.register_buffer("filled", torch.zeros(num_classes, dtype=torch.bool))

    # --- forward -----------------------------------------------------------------------------
    def forward(
        self, images: Tensor, refs: tuple[str, ...] | None = None, bank: Bank | None = None
    ) -> tuple[list[Tensor], list[Tensor], Tensor, Tensor]:
        """Per decoder layer: class logits [B, Q, K+1] and mask logits [B, Q, h, w]; then the last
        (post-normed) object queries [B, Q, C] and the mask features [B, C, h, w]. ``refs``: the
        references to apply (default: the model's), ``bank``: theirs (default: the buffers)."""
        h = self.head
        refs = self.refs if refs is None else refs
        centres, squeries, filled = bank if bank is not None else (self.centres, self.squeries, self.filled)
        if not bool(filled.any()):
            refs = ()
        missing = ~filled
        mask_features, memories = h.pixel_decoder(self.backbone(images))
        if "feature" in refs:
            memories = [self._reweight(f, centres, missing) for f in memories]
            mask_features = self._reweight(mask_features, centres, missing)
        batch = images.shape[0]
        inputs, pos = [], []
        for i in range(h.num_transformer_feat_level):
            x = h.decoder_input_projs[i](memories[i]).flatten(2).permute(0, 2, 1)
            inputs.append(x + h.level_embed.weight[i].view(1, 1, -1))
            empty = x.new_zeros((batch,) + memories[i].shape[-2:], dtype=torch.bool)
            pos.append(h.decoder_positional_encoding(empty).flatten(2).permute(0, 2, 1))
        query = h.query_feat.weight.unsqueeze(0).repeat(batch, 1, 1)
        query_pos = h.query_embed.weight.unsqueeze(0).repeat(batch, 1, 1)
        cls, mask, attn = h._forward_head(query, mask_features, memories[0].shape[-2:])
        all_cls, all_mask = [cls], [mask]
        for i, layer in enumerate(h.transformer_decoder.layers):
            level = i % h.num_transformer_feat_level
            attn = attn & (attn.sum(-1) != attn.shape[-1]).unsqueeze(-1)
            query = layer(
                query=query,
                key=inputs[level],
                value=inputs[level],
                query_pos=query_pos,
                key_pos=pos[level],
                cross_attn_mask=attn,
                query_key_padding_mask=None,
                key_padding_mask=None,
            )
            if "instance" in refs:
                query = query + self.instance_ref(query, squeries, missing)
            nxt = memories[(i + 1) % h.num_transformer_feat_level].shape[-2:]
            cls, mask, attn = h._forward_head(query, mask_features, nxt)
            all_cls.append(cls)
            all_mask.append(mask)
        return all_cls, all_mask, h.transformer_decoder.post_norm(query), mask_features

    def _reweight(self, f: Tensor, centres: Tensor, missing: Tensor) -> Tensor:
        b, c, hh, ww = f.shape
        x = f.flatten(2).transpose(1, 2)
        x = x * (1 + self.feature_ref(x, centres, missing))
        return x.transpose(1, 2).reshape(b, c, hh, ww)

    # --- training ----------------------------------------------------------------------------
    @staticmethod
    def gt(targets: list[dict]) -> list[InstanceData]:
        return [InstanceData(labels=t["labels"], masks=t["masks"]) for t in targets]

    def loss(self, images: Tensor, targets: list[dict], out=None) -> dict[str, Tensor]:
        """mmdet's Mask2Former losses summed over decoder layers (CE + mask BCE + Dice)."""
        all_cls, all_mask, _, _ = out if out is not None else self(images)
        metas = [{"img_shape": images.shape[-2:], "batch_input_shape": images.shape[-2:]}] * images.shape[0]
        return self.head.loss_by_feat(all_cls, all_mask, self.gt(targets), metas)

    # --- support references ------------------------------------------------------------------
    @torch.no_grad()
    def encode_support(self, images: Tensor, targets: list[dict]) -> tuple[Tensor, Tensor, Tensor]:
        """Per-class sums of mask-pooled features and of matched object queries, and counts; the
        support pass is the plain model (no references) in eval mode, as after base training;
        every submodule's mode is put back as it was (a frozen backbone stays in eval mode)."""
        modes = [(m, m.training) for m in self.modules()]
        self.eval()
        all_cls, all_mask, queries, feats = self(images, refs=())
        for m, mode in modes:
            m.training = mode
        k, c = self.num_classes, feats.shape[1]
        centres, squeries, count = feats.new_zeros(k, c), feats.new_zeros(k, c), feats.new_zeros(k)
        meta = {"img_shape": images.shape[-2:]}
        for i, (t, gt) in enumerate(zip(targets, self.gt(targets), strict=True)):
            if len(t["labels"]) == 0:
                continue
            m = F.interpolate(t["masks"][:, None].float(), feats.shape[-2:], mode="area")[:, 0]
            pooled = torch.einsum("nhw,chw->nc", m, feats[i]) / m.flatten(1).sum(1).clamp_min(1e-6)[:, None]
            res = self.head._get_targets_single(all_cls[-1][i], all_mask[-1][i], gt, meta)[-1]
            q = queries[i, res.pos_inds]
            labels = t["labels"][res.pos_assigned_gt_inds]
            centres.index_add_(0, t["labels"], pooled)
            squeries.index_add_(0, labels, q)
            count.index_add_(0, t["labels"], torch.ones_like(t["labels"], dtype=count.dtype))
        return centres, squeries, count

    @staticmethod
    def bank_from(centres: Tensor, squeries: Tensor, count: Tensor) -> Bank:
        """Per-class sums and counts (``encode_support``'s, summed over images) as a bank of
        per-class means; classes without a support instance are not filled."""
        filled = count > 0
        div = count.clamp_min(1)[:, None]
        return centres / div, squeries / div, filled

    @torch.no_grad()
    def set_bank(self, bank: Bank) -> None:
        """Store ``bank`` in the buffers (the references the test uses)."""
        for buf, value in zip((self.centres, self.squeries, self.filled), bank, strict=True):
            buf.copy_(value)

    # --- inference ---------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, images: Tensor, allowed: Tensor) -> list[dict]:
        """Mask2Former's instance inference (top-k over query x class, mask-score re-weighting),
        over the classes in ``allowed`` (bool [K]); boxes xyxy, bool masks at input size."""
        all_cls, all_mask, _, _ = self(images)
        cls = all_cls[-1].masked_fill(~torch.cat([allowed, allowed.new_ones(1)]), float("-inf"))
        masks = F.interpolate(all_mask[-1], images.shape[-2:], mode="bilinear", align_corners=False)
        out = []
        for c, m in zip(cls, masks, strict=True):
            r = self.fusion.instance_postprocess(c, m)
            keep = allowed[r.labels] & (r.scores > 0)
            out.append(
                {
                    "boxes": r.bboxes[keep],
                    "scores": r.scores[keep],
                    "labels": r.labels[keep],
                    "masks": r.masks[keep],
                }
            )
        return out
