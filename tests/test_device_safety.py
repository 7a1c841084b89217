"""Device safety without a GPU: tensors a method creates must land on its module's device.

The check runs code on *fake* CUDA tensors (``FakeTensorMode``: shapes and devices, no data, no
GPU): an op mixing a fake CUDA tensor with a tensor made on the CPU raises the device-mismatch error
a real GPU run would, on a CPU-only machine. It catches a factory without ``device=`` whose tensor
meets the model (emo's throughput probe, getup's policy action). It cannot see past the first read
of a value (``.item()``, ``.numpy()``, data-dependent shapes: fake tensors hold no data), so each
probe drives the code up to that read; code behind it is checked by the GPU run (make gpu-check).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode


@contextmanager
def fake_cuda():
    """Fake tensors, where ``on_cuda`` moves a real module."""
    with FakeTensorMode(allow_non_fake_inputs=True):
        yield


def on_cuda(module: torch.nn.Module) -> torch.nn.Module:
    """A module built on the CPU, moved to fake CUDA (inside ``fake_cuda``): its parameters are
    replaced, not swapped in place, which fake tensors need."""
    before = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    try:
        return module.to("cuda")
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(before)


def test_the_check_catches_a_cpu_tensor_fed_to_a_cuda_model() -> None:
    """The negative control: the pattern of both bugs (a CPU factory meeting the model) raises."""
    model = torch.nn.Linear(3, 2)
    with fake_cuda():
        model = on_cuda(model)
        with pytest.raises(RuntimeError, match="device"):
            model(torch.randn(4, 3))
        assert model(torch.randn(4, 3, device="cuda")).device.type == "cuda"


@pytest.mark.parametrize("arch", ["emo_1m", "mobilenetv2"])
def test_emo_throughput_probe_runs_on_the_models_device(arch: str) -> None:
    from bench.tasks.emo.method import images_per_s
    from bench.tasks.emo.model import build_model

    model = build_model(arch, num_classes=10)
    with fake_cuda():
        model = on_cuda(model)
        assert next(model.parameters()).device.type == "cuda"
        assert images_per_s(model, 32, 1) > 0


@pytest.mark.parametrize("sampled", [False, True])
def test_getup_policy_action_runs_on_the_agents_device(sampled: bool) -> None:
    """Up to the one host read (the numpy action), which fake tensors cannot give."""
    from bench.tasks.getup.model import Agent

    agent = Agent(6, 2, {"hidden": [8], "log_std": [-5.0, 2.0], "init_alpha": 0.1}, True)
    gen = torch.Generator().manual_seed(0) if sampled else None
    with fake_cuda():
        agent = on_cuda(agent)
        with pytest.raises(RuntimeError, match="numpy|data") as read:
            agent.act(np.ones(6, dtype=np.float32), gen)  # the last entry: the strength
        assert "device" not in str(read.value).lower()


def test_nngraph_augmentation_runs_on_the_batchs_device() -> None:
    """The population's crop-and-flip builds its indices from a CPU generator: they must move to
    the batch's device before they meet it, and the network must take the result."""
    from bench.tasks.nngraph import nets
    from bench.tasks.nngraph.population import augment

    net = nets.build({"kind": "chain", "convs": [[2, 3, 1, 2]], "hidden": [4]}, (3, 8, 8), 4, 1.0, 0.0)
    gen = torch.Generator().manual_seed(0)
    with fake_cuda():
        net = on_cuda(net)
        out = augment(torch.randn(5, 3, 8, 8, device="cuda"), torch.zeros(3, device="cuda"), gen)
        assert out.device.type == "cuda" and net(out).device.type == "cuda"


def test_doorping_dm_loss_real_batch_and_trigger_update_run_on_the_nets_device() -> None:
    """DM's losses, a real batch drawn by the run's CPU generator, and the trigger update up to its
    one host read (the loss's ``.item()``), on a fake CUDA net. Backward passes need a CUDA context
    fake tensors do not have: DC, DD and the defenses are checked by the GPU run."""
    from bench.tasks.doorping import attacks, distill
    from bench.tasks.doorping.model import ConvNet

    net, gen = ConvNet(1, 2, 8, 4, 1, 8), torch.Generator().manual_seed(0)
    with fake_cuda():
        net = on_cuda(net)
        x = torch.randn(6, 1, 8, 8, device="cuda")
        by_class = [torch.arange(3, device="cuda"), torch.arange(3, 6, device="cuda")]
        real = distill.sample_real(x, by_class, 2, gen)
        syn = torch.randn(2, 2, 1, 8, 8, device="cuda")
        assert distill.dm_loss(net, real, syn).device.type == "cuda"
        assert distill.dm_loss_loop(net, real, syn).device.type == "cuda"
        mask, black = attacks.patch_mask(1, 8, 2, 1).to("cuda"), torch.full((1, 1, 1), -0.8, device="cuda")
        a = {"lr": 0.08, "alpha": 10, "stop_loss": 0.5, "max_steps": 1, "topk": 1}
        with pytest.raises(RuntimeError, match="item|data|scalar") as read:
            attacks.optimise_trigger(net, mask * 2.0, mask, a, black, None)
        assert "device" not in str(read.value).lower()


@pytest.mark.parametrize("framework", ["cpf", "akd"])
def test_reliant_student_losses_run_on_the_students_device(framework: str) -> None:
    """A RELIANT-EO student (and the unaware student) on a fake CUDA graph: its inputs with the
    proxy, masks and EO weights; CPF's PLP forward pass too (GraphAKD's SGC normalises the graph
    with a data-dependent shape first), then its distillation loss and bias term up to their first
    data-dependent shape (a boolean mask over the nodes), which fake tensors cannot size."""
    from bench.config import resolve
    from bench.registry import load
    from bench.tasks.reliant.data import FairGraphDataModule
    from bench.tasks.reliant.task import STUDENTS

    cfg = resolve("reliant", ["preset=smoke", "data.datasets=[synthetic]", "data.synthetic.nodes=60"])
    dm = FairGraphDataModule(cfg)
    dm.setup()
    cls = load(STUDENTS[framework])
    m, unaware = cls(cfg, framework, objective="eo", alpha=1.0), cls(cfg, framework, unaware=True)
    for s in (m, unaware):
        s.plain = dm.graphs
        s.setup("fit")
    with fake_cuda():
        m, unaware = on_cuda(m), on_cuda(unaware)
        for s in (m, unaware):  # Lightning's device property would ask the driver for a bare "cuda"
            s._device = torch.device("cuda", 0)
        for g in dm.graphs.values():
            for k in ("x", "sens", "y", "edge_index", "train", "val", "test"):
                setattr(g, k, getattr(g, k).to("cuda"))
        name, g = next(iter(dm.graphs.items()))
        made = (m.inputs(name), m.inputs(name, per_node=True), unaware.inputs(name))
        masks = (m.student_nodes(name), m.proxy_nodes(name), m.eo_weight(name))
        assert {t.device.type for t in (*made, *masks)} == {"cuda"}
        if framework == "akd":
            return
        logits = m.students[name](made[0], g.edge_index)
        outs = (m.students[name](made[1], g.edge_index), unaware.students[name](made[2], g.edge_index))
        assert {t.device.type for t in (logits, *outs)} == {"cuda"}
        for read in (
            lambda: m.distill_loss(name, logits),
            lambda: m.bias(name, logits, m.student_nodes(name)),
        ):
            with pytest.raises(Exception, match="data-dependent|dynamic|nonzero|DataDependent") as err:
                read()
            assert "device" not in str(err.value).lower()


def test_cmt_fusion_forward_and_modality_drop_run_on_the_models_device() -> None:
    """The modality drop on the batch's device; the forward up to its one data-dependent op."""
    from bench.config import resolve
    from bench.tasks.cmt.method import CMTMethod, drop

    cfg = resolve("cmt", ["preset=smoke", "method=cmt"])
    m = CMTMethod(cfg, lidar=True, camera=True, masked=True)
    g = m.geo
    points = torch.cat([torch.zeros(50, 1), torch.rand(50, 3) * 10 - 5, torch.zeros(50, 1)], 1)
    images = torch.rand(2, cfg["data"]["cams"], 3, *g["image_size"])
    lidar2img = torch.eye(4).expand(2, cfg["data"]["cams"], 4, 4).clone()
    with fake_cuda():
        model = on_cuda(m.model)
        batch = {"points": points.to("cuda"), "images": images.to("cuda"), "lidar2img": lidar2img.to("cuda")}
        gone = torch.tensor([True, False], device="cuda")
        batch = drop(batch, lidar=gone, camera=~gone)
        assert {batch["points"].device.type, batch["images"].device.type} == {"cuda"}
        ref = model.reference_points.weight.unsqueeze(0).expand(2, -1, -1)
        # up to the voxelizer's in-range selection, whose output shape depends on the data
        with pytest.raises(Exception, match="data-dependent|dynamic|nonzero|DataDependent") as err:
            model(batch["points"], batch["images"], batch["lidar2img"], ref)
        assert "device" not in str(err.value).lower()
