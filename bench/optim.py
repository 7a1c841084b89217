"""Batch arithmetic every task shares: the global batch one optimizer step sees, and a learning
rate scaled linearly to it (the rule the papers' official codes apply: lr x global batch / the
batch the lr is quoted for)."""

from __future__ import annotations


def world_size(trainer_cfg: dict) -> int:
    """Processes of a run from its trainer config: devices x nodes (``auto``: every visible GPU
    when the accelerator may be one, else 1)."""
    devices = trainer_cfg.get("devices", 1)
    if isinstance(devices, list):
        count = len(devices)
    elif isinstance(devices, str) and devices not in ("auto", "-1"):
        count = len([d for d in devices.split(",") if d.strip()])
    elif devices in ("auto", "-1", -1):
        import torch

        gpu = trainer_cfg.get("accelerator", "auto") in ("auto", "gpu", "cuda")
        count = torch.cuda.device_count() if gpu and torch.cuda.is_available() else 1
    else:
        count = int(devices)
    return count * int(trainer_cfg.get("num_nodes", 1))


def global_batch(per_device: int, trainer_cfg: dict, processes: int | None = None) -> int:
    """Samples per optimizer step: per-device batch x processes x gradient accumulation.
    ``processes``: the Trainer's own ``world_size`` once it runs (it wins over the config)."""
    processes = world_size(trainer_cfg) if processes is None else processes
    return per_device * processes * int(trainer_cfg.get("accumulate_grad_batches") or 1)


def scaled_lr(
    lr: float, quoted_batch: int, per_device: int, trainer_cfg: dict, processes: int | None = None
) -> float:
    """``lr`` quoted for ``quoted_batch`` samples, scaled linearly to the run's global batch."""
    return lr * global_batch(per_device, trainer_cfg, processes) / quoted_batch
