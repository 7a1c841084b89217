"""Where a number came from: code version, package versions, hostname-free hardware."""

from __future__ import annotations

import ast
import hashlib
import importlib.util
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
# What of the bench package computes no result (reporting, publishing, launching, checking, test
# fixtures) and is left out of the fingerprint, as paths in the package; every other module is on
# the result path of every task.
OFF_RESULT_PATH = frozenset(
    (
        "__init__.py",
        "__main__.py",
        "claims.py",
        "cli.py",
        "compare.py",
        "datasets/formats.py",
        "datasets/system.py",
        "gpu_check.py",
        "leaderboard.py",
        "paper_preset.py",
        "perf.py",
        "plots.py",
        "provenance.py",
        "records.py",
        "render.py",
        "results.py",
        "seeds.py",
        "sweep",
        "tasks",
        "tracking.py",
    )
)
# The files of a task folder that compute no result: the paper preset's fixture, the perf figure,
# the seed draws (tests/test_seeds.py).
TASK_OFF_RESULT_PATH = frozenset(("fixture.py", "perf.py", "seeds.py"))
# Keyword arguments of a task.py that describe results for the board or say how to set a run up,
# and compute none of them.
PRESENTATION = frozenset(
    (
        "paper",
        "url",
        "reported",
        "reported_note",
        "headline",
        "curve",
        "series",
        "figures",
        "fixture",
        "datasets",
        "ddp_batch",
        "seed_varies",
        "seed_fixed",
    )
)
_SCOPES = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef  # what may open with a docstring


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


def normalised(source: bytes, presentation: frozenset[str] = frozenset()) -> bytes:
    """The code of a Python file as its syntax tree, without comments, docstrings, positions and the
    keyword arguments named in ``presentation``; the raw bytes of a file that does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return source
    for node in ast.walk(tree):
        if isinstance(node, _SCOPES) and ast.get_docstring(node, clean=False) is not None:
            node.body = node.body[1:]
        elif isinstance(node, ast.Call) and presentation:
            node.keywords = [k for k in node.keywords if k.arg not in presentation]
    return ast.dump(tree).encode()


def _files(root: Path) -> list[Path]:
    """The Python files under a folder, or the file itself where it is one."""
    if root.is_dir():
        return sorted(root.rglob("*.py"))
    return [root] if root.suffix == ".py" else []


@cache
def fingerprint(task: str) -> str:
    """sha256 (16 hex) of the code that computes the task's results: every .py file of its folder
    (``registry.folder``: an external task hashes its own) but ``TASK_OFF_RESULT_PATH``, and of the
    bench package outside ``OFF_RESULT_PATH``, each as its path and its syntax tree
    (``normalised``), so comments, docstrings and layout change no fingerprint. Of the task's
    task.py all code counts (its methods, and constants such as emo's ``LOGGED`` that feed a metric)
    but the ``PRESENTATION`` keyword arguments: the paper, the headline or a reported number change
    no result. A method added from outside (an entry point of ``bench.methods``) adds the file of
    its class's module."""

    from bench.registry import folder, get_task

    digest = hashlib.sha256()
    own = folder(task)
    package = Path(bench.__file__).resolve().parent
    paths = [(f, f.relative_to(own.parent)) for f in _files(own) if f.name not in TASK_OFF_RESULT_PATH]
    paths += [
        (f, f.relative_to(package.parent))
        for f in _files(package)
        if not {f.relative_to(package).as_posix(), f.relative_to(package).parts[0]} & OFF_RESULT_PATH
    ]
    for method in get_task(task).methods:
        spec = importlib.util.find_spec(method.target.partition(":")[0])
        file = Path(spec.origin).resolve() if spec and spec.origin else None
        if (
            file
            and file.suffix == ".py"
            and not file.is_relative_to(own)
            and not file.is_relative_to(package)
        ):
            paths.append((file, Path(method.target.partition(":")[0].replace(".", "/") + ".py")))
    for file, name in paths:
        drop = PRESENTATION if file == own / "task.py" else frozenset()
        digest.update(name.as_posix().encode() + b"\0" + normalised(file.read_bytes(), drop) + b"\0")
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
