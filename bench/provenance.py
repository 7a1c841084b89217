"""Where a number came from: code version, package versions, hostname-free hardware."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from functools import cache
from importlib import metadata
from pathlib import Path

import bench

PACKAGES = (
    "torch",
    "lightning",
    "torchmetrics",
    "torchvision",
    "numpy",
    "timm",
    "torch_geometric",
    "transformers",
    "mmdet",
    "mmcv",
    "wandb",
)
_REPO = Path(__file__).resolve().parent.parent
# The core a task's results depend on (beside its own folder); the harness's reporting code is not.
CORE = ("bench/method.py", "bench/callbacks.py", "bench/artifacts.py", "bench/cost.py", "bench/datasets")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def fingerprint(task: str) -> str:
    """sha256 (16 hex) of the code that computes the task's results: its folder and the core."""
    digest = hashlib.sha256()
    for root in (f"bench/tasks/{task}", *CORE):
        path = _REPO / root
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(_REPO).as_posix().encode() + b"\0" + file.read_bytes())
    return digest.hexdigest()[:16]


@cache
def collect() -> dict:
    """Provenance for a record (imports torch to name the GPUs)."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name.replace("_", "-"))
        except metadata.PackageNotFoundError:
            continue
    gpus = []
    import torch

    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "bench_version": bench.__version__,
        "git_sha": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "python": platform.python_version(),
        "packages": versions,
        "hardware": {"cpu": _cpu_model(), "cores": os.cpu_count(), "gpus": gpus, "device_count": len(gpus)},
    }
