"""Configs: ``configs/base.yaml`` under ``configs/<task>/<preset>.yaml`` plus dotlist overrides
-> a validated, resolved dict. The presets ship inside the package (``bench/configs``); a task
from outside keeps its own in the ``configs/`` folder beside its task.py (bench/registry.py).

A preset file may start with ``inherit: <preset>`` to change only what differs; every chain starts
from base.yaml (the trainer section). Overrides are ``a.b=v`` or ``--a.b=v``; ``method=``,
``preset=`` and ``seed=`` choose the run. An override may only set a key the preset has, with a
value of the same kind (or one of the kinds Lightning accepts for that Trainer option). A preset's
``claims:`` (bench/claims.py), ``seeds:`` and ``sweep:`` (what a sweep of it runs) are popped: they
are not part of a run's config.
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

from bench.claims import Claim, parse
from bench.errors import BenchError, lookup
from bench.registry import CONFIGS_DIR, configs, get_task
from bench.task import Task

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_INT = re.compile(r"^[+-]?[0-9]+$")
# Keys that say where a run happens, not what it computes: kept in the record, out of the hash.
LOCAL_KEYS = ("seed", "resume", "logger", "checkpoint_every", "data.root", "data.num_workers", "data.workers")
# Trainer options Lightning takes in more than one kind (devices=8, devices=[0, 1], devices=auto).
UNIONS = {
    "trainer.devices": (int, list, str),
    "trainer.precision": (str, int),
    "trainer.limit_train_batches": (int, float),
    "trainer.limit_val_batches": (int, float),
    "trainer.limit_test_batches": (int, float),
    "trainer.val_check_interval": (int, float),
    "trainer.gradient_clip_val": (int, float),
}
# Strings Lightning takes for those two options (anything else would only fail inside the run).
_DEVICES = re.compile(r"^(auto|-1|[0-9]+(,[0-9]+)*,?)$")
PRECISIONS = {
    "64",
    "32",
    "16",
    "bf16",
    "64-true",
    "32-true",
    "16-true",
    "16-mixed",
    "bf16-true",
    "bf16-mixed",
}
DEFAULT_SEEDS = [0, 1, 2]
# configs/<task>/official.yaml is no preset: the official recipe, item by item, that
# tests/test_official_recipe.py checks the paper preset against.
OFFICIAL_RECIPE = "official"


def presets(task: str) -> list[str]:
    return sorted(p.stem for p in configs(task).glob("*.yaml") if p.stem != OFFICIAL_RECIPE)


def preset_file(task: str, preset: str) -> Path:
    return configs(task) / f"{preset}.yaml"


def shown(path: Path) -> str:
    """A preset file as the user knows it: ``configs/<task>/<preset>.yaml`` for bench's own."""
    return f"configs/{path.relative_to(CONFIGS_DIR)}" if path.is_relative_to(CONFIGS_DIR) else str(path)


def read_preset(task: str, preset: str) -> dict:
    """base.yaml, then the preset's ``inherit`` chain, merged and unresolved."""
    lookup(preset, {p: p for p in presets(task)}, f"preset of task {task!r}")
    data = yaml.safe_load(preset_file(task, preset).read_text()) or {}
    parent = data.pop("inherit", None)
    if parent:
        return _merge(read_preset(task, parent), data)
    return _merge(yaml.safe_load((CONFIGS_DIR / "base.yaml").read_text()), data)


def preset_claims(task: str, preset: str) -> tuple[Claim, ...]:
    """The claims a preset declares (its ``claims:`` section), checked. A preset drops a claim it
    inherits by setting its id to null (a paper preset whose parent's claims are cpu stand-ins)."""
    methods = {m.name for m in get_task(task).methods}
    declared = read_preset(task, preset).get("claims") or {}
    section = {cid: spec for cid, spec in declared.items() if spec is not None}
    return parse(section, shown(preset_file(task, preset)), methods, reduced=preset != "paper")


def preset_seeds(task: str, preset: str) -> list[int]:
    """The seeds a sweep of this preset runs (its ``seeds:`` list)."""
    seeds = read_preset(task, preset).get("seeds", DEFAULT_SEEDS)
    if not isinstance(seeds, list) or not all(isinstance(s, int) and s >= 0 for s in seeds):
        raise BenchError(f"{shown(preset_file(task, preset))}: seeds must be a list of non-negative integers")
    return seeds


def preset_methods(task: str, preset: str) -> list[str]:
    """The methods a sweep of this preset runs, in order: its ``sweep: {methods: [...]}``, or every
    method of the task."""
    names = [m.name for m in get_task(task).methods]
    sweep = read_preset(task, preset).get("sweep") or {}
    where = shown(preset_file(task, preset))
    if not isinstance(sweep, dict) or set(sweep) - {"methods"}:
        raise BenchError(f"{where}: sweep takes only methods: [a list of the task's methods]")
    methods = sweep.get("methods", names)
    if not isinstance(methods, list) or not methods:
        raise BenchError(f"{where}: sweep.methods must be a non-empty list of the task's methods")
    for name in methods:
        get_task(task).method(str(name))
    return [str(m) for m in methods]


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
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string; W&B's argv quotes "8", None
            stripped = value.strip()
            if _INT.match(stripped):
                value = int(stripped)
            elif _is_float(stripped):
                value = float(stripped)
            elif stripped in ("None", "none", "null", "~"):
                value = None
        if isinstance(value, float) and not math.isfinite(value):
            raise BenchError(f"bad override {arg!r}: numbers must be finite")
        parsed[key] = value
    return parsed


def resolve(task_name: str, args: list[str]) -> dict:
    """The run config for ``bench run TASK args...``: preset + overrides, checked."""
    return resolve_run(task_name, args)[1]


def resolve_run(task_name: str, args: list[str]) -> tuple[Task, dict]:
    """The task and the run config for ``bench run TASK args...``: preset + overrides, checked."""
    task = get_task(task_name)
    overrides = parse_overrides(args)
    preset = str(overrides.pop("preset", "cpu"))
    cfg = read_preset(task_name, preset)
    cfg.pop("claims", None)
    cfg.pop("seeds", None)
    cfg.pop("sweep", None)
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
        cfg = OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)
    except OmegaConfBaseException as e:
        raise BenchError(f"config of {task_name}/{preset} does not resolve: {e}".splitlines()[0]) from None
    devices = cfg["trainer"]["devices"]
    if not task.distributed and (len(devices) if isinstance(devices, list) else devices) not in (1, "auto"):
        raise BenchError(
            f"task {task_name!r} runs in one process: trainer.devices must be 1, got {devices!r}; "
            "a sweep parallelizes its runs instead (bench sweep --jobs N / --devices)"
        )
    return task, cfg


def config_hash(cfg: dict) -> str:
    """sha256 of the canonical JSON of what determines a run's result: the config without the
    machine-local keys (seeds of one config share a hash on every machine) and, of a ``methods:``
    section, only the run's own method (editing one method's grid reruns only that method)."""
    body = json.loads(json.dumps(cfg))
    for dotted in LOCAL_KEYS:
        *parents, leaf = dotted.split(".")
        node = body
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    if isinstance(body.get("methods"), dict):
        body["methods"] = {cfg["method"]: body["methods"].get(cfg["method"])}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def overrides_of(cfg: dict, standard: dict) -> dict:
    """The dotted keys where a run config differs from its preset's standard config, local keys
    aside: ``{}`` for a standard run."""
    ours, theirs = dict(_leaves(cfg)), dict(_leaves(standard))
    others = [f"methods.{m}." for m in cfg.get("methods") or {} if m != cfg["method"]]
    return {
        k: ours.get(k)
        for k in sorted(set(ours) | set(theirs))
        if ours.get(k) != theirs.get(k) and k not in LOCAL_KEYS and not k.startswith(tuple(others))
    }


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
    if key in UNIONS:
        bad_str = isinstance(new, str) and not (
            _DEVICES.match(new) if key == "trainer.devices" else new in PRECISIONS
        )
        if not isinstance(new, UNIONS[key]) or isinstance(new, bool) or bad_str:
            kinds = " or ".join(t.__name__ for t in UNIONS[key])
            raise BenchError(f"bad value for {key}: expected {kinds} as Lightning takes it, got {new!r}")
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


def _leaf_keys(cfg: dict) -> list[str]:
    return [k for k, _ in _leaves(cfg)]


def _leaves(cfg: dict, prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in cfg.items():
        out += _leaves(v, f"{prefix}{k}.") if isinstance(v, dict) and v else [(f"{prefix}{k}", v)]
    return out


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
