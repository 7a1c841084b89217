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

    agent = Agent(6, 2, {"hidden": [8], "log_std": [-5.0, 2.0], "init_alpha": 0.1})
    gen = torch.Generator().manual_seed(0) if sampled else None
    with fake_cuda():
        agent = on_cuda(agent)
        with pytest.raises(RuntimeError, match="numpy|data") as read:
            agent.act(np.zeros(6, dtype=np.float32), gen)
        assert "device" not in str(read.value).lower()
