"""Tests for the EMO model file: sizes vs. the official logs, shapes, gradients, attention layout."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.tasks.emo.model import EMO, EMO_VARIANTS, MODEL_NAMES, build_model, iRMB

torch.set_num_threads(2)

# Official logs (1000 classes): params, and fvcore FLOPs (= MACs incl. norms) at 224x224.
LOGGED = {
    "emo_1m": (1_361_000, 261e6),
    "emo_2m": (2_377_000, 439e6),
    "emo_5m": (5_109_000, 903e6),
    "emo_6m": (6_168_000, 961e6),
}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_variant_table_and_names() -> None:
    assert set(EMO_VARIANTS) == set(LOGGED)
    assert set(MODEL_NAMES) == {*LOGGED, "mobilenetv2", "mobilevit_xxs"}
    assert isinstance(build_model("emo_1m", 10), EMO)


@pytest.mark.parametrize("name", sorted(LOGGED))
def test_param_count_matches_log(name: str) -> None:
    got, want = n_params(build_model(name, 1000)), LOGGED[name][0]
    assert abs(got - want) <= 500, f"{name}: {got} vs logged {want}"  # logs round to 1e3


@pytest.mark.parametrize("name", sorted(LOGGED))
def test_macs_match_paper(name: str) -> None:
    model = build_model(name, 1000).eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(1, 3, 224, 224))
    macs, want = counter.get_total_flops() / 2, LOGGED[name][1]
    # FlopCounterMode skips norms/activations that fvcore counts: expect a few % under.
    assert 0.95 * want <= macs <= 1.0 * want, f"{name}: {macs / 1e6:.1f}M MACs vs {want / 1e6:.0f}M"


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_forward_backward_32(name: str) -> None:
    model = build_model(name, 10, drop_path_rate=0.1).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.logsumexp(-1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("size", [64, 224])
def test_emo_other_resolutions(size: int) -> None:
    model = build_model("emo_1m", 7).train()
    out = model(torch.randn(1, 3, size, size))
    assert out.shape == (1, 7)
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_mobilenetv2_size_close_to_emo_1m() -> None:
    mnv2, emo = n_params(build_model("mobilenetv2", 1000)), n_params(build_model("emo_1m", 1000))
    assert abs(mnv2 - emo) / emo <= 0.15, (mnv2, emo)
    assert n_params(build_model("mobilenetv2", 1000, width_mult=1.0)) > 3_000_000


def test_unknown_name_lists_known() -> None:
    with pytest.raises(ValueError, match="emo_1m.*mobilevit_xxs"):
        build_model("resnet50", 10)


def _reference_window_attention(block: iRMB, x: torch.Tensor) -> torch.Tensor:
    """Loop version of the official partition: window (a, b) = pixels [a::n1, b::n2] of the padded map."""
    bsz, c, h, w = x.shape
    ws, nh = block.window_size, block.num_heads
    xp = torch.nn.functional.pad(x, (0, (-w) % ws, 0, (-h) % ws))
    n1, n2 = xp.shape[2] // ws, xp.shape[3] // ws
    out = None
    for a in range(n1):
        for b in range(n2):
            xw = xp[:, :, a::n1, b::n2]
            q, k = block.qk(xw).flatten(2).chunk(2, dim=1)  # (bsz, c, tokens) each
            q, k, v = (t.reshape(bsz, nh, c // nh, -1).transpose(-1, -2) for t in (q, k, xw.flatten(2)))
            attn = (q @ k.transpose(-1, -2) * block.scale).softmax(-1)
            y = block.v((attn @ v).transpose(-1, -2).reshape(bsz, c, ws, ws))
            if out is None:
                out = y.new_zeros(bsz, y.shape[1], *xp.shape[2:])
            out[:, :, a::n1, b::n2] = y
    return out[:, :, :h, :w]


@pytest.mark.parametrize("hw", [(14, 14), (3, 5), (9, 16)])
def test_window_attention_matches_reference(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    block = iRMB(40, 40, exp_ratio=2.0, norm="ln", act="gelu", dw_ks=5, attn=True, dim_head=20).eval()
    x = torch.randn(2, 40, *hw)
    got = block._window_attention(x)
    assert got.shape == (2, 80, *hw)
    torch.testing.assert_close(got, _reference_window_attention(block, x), rtol=1e-4, atol=1e-5)
    # grid layout: on a 14x14 map pixel (0, 0) attends only to even coordinates
    if hw == (14, 14):
        x2 = x.clone()
        x2[:, :, 0, 1] += 1.0
        torch.testing.assert_close(block._window_attention(x2)[:, :, 0, 0], got[:, :, 0, 0])
        x2[:, :, 0, 2] += 1.0
        assert not torch.allclose(block._window_attention(x2)[:, :, 0, 0], got[:, :, 0, 0])


def test_block_structure() -> None:
    model = build_model("emo_1m", 1000)
    first, second = model.stages[2][0], model.stages[2][1]
    assert not first.has_skip and not first.attn and first.conv_local[0].stride == (2, 2)
    assert first.v[0].out_channels == 48 * 3 * 2  # doubled expansion in the first block
    assert second.has_skip and second.attn and second.num_heads == 4
    assert not model.stem[2].has_skip and isinstance(model.stem[2].v, torch.nn.Identity)


@pytest.mark.parametrize("hw", [(4, 4), (2, 3)])
def test_small_map_is_one_unpadded_window(hw: tuple[int, int]) -> None:
    """pad_small_maps=False: a map smaller than the window attends globally over its own pixels only."""
    torch.manual_seed(0)
    kw = dict(exp_ratio=2.0, norm="ln", act="gelu", dw_ks=5, attn=True, dim_head=20)
    small = iRMB(40, 40, pad_small_maps=False, **kw).eval()
    glob = iRMB(40, 40, window_size=-1, **kw).eval()
    glob.load_state_dict(small.state_dict())
    x = torch.randn(2, 40, *hw)
    torch.testing.assert_close(small._window_attention(x), glob._window_attention(x))
    padded = iRMB(40, 40, **kw).eval()
    padded.load_state_dict(small.state_dict())
    assert not torch.allclose(padded._window_attention(x), small._window_attention(x))


def test_maps_at_least_the_window_are_unchanged_by_pad_small_maps() -> None:
    torch.manual_seed(0)
    a, b = build_model("emo_1m", 10).eval(), build_model("emo_1m", 10, pad_small_maps=False).eval()
    b.load_state_dict(a.state_dict())
    x = torch.randn(1, 3, 224, 224)  # stage 3 at 14x14, stage 4 at 7x7: nothing is padded
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
