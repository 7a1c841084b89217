"""Configs: ``configs/<task>/<preset>.yaml`` plus dotlist overrides -> a validated, resolved dict.

A preset file may start with ``inherit: <preset>`` to change only what differs. Overrides are
``a.b=v`` or ``--a.b=v``; ``method=``, ``preset=`` and ``seed=`` choose the run. An override may only
set a key the preset has, with a value of the same kind.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.errors import BenchError
from bench.registry import get_task, lookup

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"
RUN_KEYS = ("method", "preset", "seed")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def presets(task: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS_DIR / task).glob("*.yaml"))


def read_preset(task: str, preset: str) -> dict:
    """The preset's YAML with its ``inherit`` chain merged, unresolved."""
    lookup(preset, {p: p for p in presets(task)}, f"preset of task {task!r}")
    data = yaml.safe_load((CONFIGS_DIR / task / f"{preset}.yaml").read_text()) or {}
    parent = data.pop("inherit", None)
    return _merge(read_preset(task, parent), data) if parent else data


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``["a.b=1", "--c=x"]`` -> ``{"a.b": 1, "c": "x"}``; values parsed as YAML scalars."""
    parsed = {}
    for arg in args:
        key, sep, raw = arg.removeprefix("--").partition("=")
        if not sep or not _KEY.match(key):
            raise BenchError(f"malformed override {arg!r}: write key=value, e.g. trainer.max_epochs=2")
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError:
            value = raw
        if isinstance(value, str) and _is_float(value):
            value = float(value)  # YAML 1.1 reads 1e-3 as a string
        if isinstance(value, float) and not math.isfinite(value):
            raise BenchError(f"bad override {arg!r}: numbers must be finite")
        parsed[key] = value
    return parsed


def resolve(task_name: str, args: list[str]) -> dict:
    """The run config for ``bench run TASK args...``: preset + overrides, checked."""
    task = get_task(task_name)
    overrides = parse_overrides(args)
    preset = str(overrides.pop("preset", "cpu"))
    cfg = read_preset(task_name, preset)
    method = str(overrides.pop("method", task.methods[0].name))
    task.method(method)
    seed = overrides.pop("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise BenchError(f"seed must be a non-negative integer, got {seed!r}")
    resume = overrides.pop("resume", False)
    if not isinstance(resume, bool):
        raise BenchError(f"resume must be true or false, got {resume!r}")
    for key, value in overrides.items():
        _set(cfg, key, value)
    cfg = {"task": task_name, "method": method, "preset": preset, "seed": seed, "resume": resume, **cfg}
    try:
        return OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    except OmegaConfBaseException as e:
        raise BenchError(f"config of {task_name}/{preset} does not resolve: {e}".splitlines()[0]) from None


def sweep_spec(task: str) -> dict:
    """``configs/sweeps/<task>.yaml``: the task's W&B sweep spec, also run by ``bench sweep``."""
    path = CONFIGS_DIR / "sweeps" / f"{task}.yaml"
    if not path.exists():
        raise BenchError(f"task {task!r} has no sweep spec: write {path}")
    return yaml.safe_load(path.read_text())


def config_hash(cfg: dict) -> str:
    """sha256 of the canonical JSON of a run config without seed, logger and resume: seeds of one
    config share a hash, and neither where curves go nor resuming changes the result."""
    body = {k: v for k, v in cfg.items() if k not in ("seed", "logger", "resume")}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _set(cfg: dict, dotted: str, value: Any) -> None:
    node, parts = cfg, dotted.split(".")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            keys = _leaf_keys(cfg)
            close = difflib.get_close_matches(dotted, keys, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]}?" if close else "see `bench show` for the keys"
            raise BenchError(f"unknown config key {dotted!r}: {hint}")
        if i == len(parts) - 1:
            _check_kind(dotted, node[part], value)
            node[part] = value
        node = node[part]


def _check_kind(key: str, old: Any, new: Any) -> None:
    if old is None or new is None:
        return
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
        list: lambda v: isinstance(v, list),
        dict: lambda v: False,
    }[type(old)]
    if not ok(new):
        raise BenchError(f"bad value for {key}: expected {type(old).__name__}, got {new!r}")


def _leaf_keys(cfg: dict, prefix: str = "") -> list[str]:
    keys = []
    for k, v in cfg.items():
        keys += _leaf_keys(v, f"{prefix}{k}.") if isinstance(v, dict) else [f"{prefix}{k}"]
    return keys


def _merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return text.strip().lower() not in {"nan", "inf", "-inf", "+inf", "infinity", "-infinity"}
