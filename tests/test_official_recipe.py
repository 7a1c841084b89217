"""Each task's official recipe against its paper preset, item by item.

``configs/<task>/official.yaml`` lists the hyper-parameters of the paper's official code, each with
its source, and for each one bench does not follow, the reason (``deviation``). This test builds
the paper preset's real objects on CPU as the official run had them (the file's ``run`` overrides:
its device count), reads each item's ``bench`` value from them with the probes below, and checks
that an item without a deviation matches and an item with one does not: fixing a deviation fails
here until the list drops it. The task's doc shows the list as a table, checked here too.

The objects: the method with its ``configure_optimizers()`` under a real Trainer of the preset's
trainer section (on CPU), sized as a full run on the official data (``train_images`` per epoch), the
lr at every step of that run from the scheduler, the method's callbacks, loss and model, and the
datamodule's train and eval transforms on the task's real-format fixture.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pytest
import yaml

from bench.config import resolve
from bench.paper_preset import fixture_args
from bench.registry import configs, get_task, load, tasks

RECIPE = "official.yaml"
DOCS = Path(__file__).resolve().parents[1] / "docs" / "tasks"
ON_CPU = ["trainer.accelerator=cpu", "logger=none"]  # the official run's objects, built here
REL = 1e-3  # numbers match within 0.1%: a warm-up quoted in epochs lands on whole steps
ITEM_KEYS = {"key", "official", "source", "bench", "methods", "deviation"}


def _recipes() -> dict[str, dict]:
    out = {}
    for name in sorted(tasks()):
        path = configs(name) / RECIPE
        if path.is_file():
            out[name] = yaml.safe_load(path.read_text())
    return out


RECIPES = _recipes()
CASES = [(task, method) for task, recipe in RECIPES.items() for method in recipe["methods"]]


def _items(recipe: dict, method: str) -> list[dict]:
    return [item for item in recipe["items"] if method in item.get("methods", recipe["methods"])]


class Built:
    """The paper preset of one method, built on CPU as the official run had it."""

    def __init__(self, task: str, method: str, recipe: dict, data_args: list[str]) -> None:
        self.task, self.method, self.recipe, self.data_args = task, method, recipe, data_args

    @cached_property
    def cfg(self) -> dict:
        return resolve(self.task, [f"method={self.method}", *self.recipe["run"], *ON_CPU])

    @cached_property
    def module(self):
        method = get_task(self.task).method(self.method)
        section = (self.cfg.get("methods") or {}).get(self.method) or {}
        return load(method.target)(self.cfg, **method.kwargs, **section)

    @cached_property
    def trainer(self):
        import lightning as L

        return L.Trainer(**self.cfg["trainer"], logger=False, enable_model_summary=False)

    @cached_property
    def per_device_batch(self) -> int:
        return _get(self.cfg, get_task(self.task).ddp_batch)

    @cached_property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch of the official data: each rank's share, in full batches."""
        t = self.trainer
        share = math.ceil(self.recipe["train_images"] / t.world_size)
        return share // self.per_device_batch // t.accumulate_grad_batches

    @cached_property
    def optimization(self) -> tuple:
        """(optimizer, the lr at every optimizer step of the full run)."""
        import torch

        steps = self.steps_per_epoch * self.trainer.max_epochs
        self.module.trainer = _FullRun(self.trainer, steps)
        opt, sched, interval = _optimizer_and_scheduler(self.module.configure_optimizers())
        if sched is None:
            lrs = [opt.param_groups[0]["lr"]] * steps
        elif isinstance(sched, torch.optim.lr_scheduler.LambdaLR) and interval == "step":
            base, factor = sched.base_lrs[0], sched.lr_lambdas[0]
            lrs = [base * factor(s) for s in range(steps)]
        else:
            lrs = []
            for s in range(steps):
                lrs.append(opt.param_groups[0]["lr"])
                if interval == "step" or (s + 1) % self.steps_per_epoch == 0:
                    sched.step()
        return opt, lrs

    @cached_property
    def callbacks(self) -> list:
        found = self.module.configure_callbacks()
        return list(found) if isinstance(found, (list, tuple)) else [found]

    @cached_property
    def datamodule(self):
        """The preset's datamodule on the task's real-format fixture, set up for fitting."""
        cfg = resolve(self.task, [f"method={self.method}", *self.recipe["run"], *ON_CPU, *self.data_args])
        datamodule = load(get_task(self.task).datamodule)(cfg)
        datamodule.setup("fit")
        return datamodule

    @cached_property
    def transforms(self) -> tuple[list, list]:
        """The datamodule's train and eval transforms, flattened."""
        train, val = self.datamodule.train_dataloader(), self.datamodule.val_dataloader()
        return _flat(train.dataset.transform), _flat(val.dataset.transform)

    def value(self, name: str):
        if name.startswith("config."):
            return _get(self.cfg, name.removeprefix("config."))
        return PROBES[name](self)


class _FullRun:
    """The real Trainer, with the length of a full run on the official data (the fixture has none)."""

    def __init__(self, trainer, steps: int) -> None:
        self._trainer, self.estimated_stepping_batches = trainer, steps

    def __getattr__(self, name: str):
        return getattr(self._trainer, name)


def _get(cfg: dict, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


def _optimizer_and_scheduler(conf) -> tuple:
    """(optimizer, scheduler or None, "step" | "epoch") from what configure_optimizers returns."""
    if isinstance(conf, dict):
        sched = conf.get("lr_scheduler")
        if isinstance(sched, dict):
            return conf["optimizer"], sched["scheduler"], sched.get("interval", "epoch")
        return conf["optimizer"], sched, "epoch"
    if isinstance(conf, (list, tuple)):
        opts, scheds = conf if len(conf) == 2 and isinstance(conf[0], (list, tuple)) else (conf, [])
        return _optimizer_and_scheduler({"optimizer": opts[0], "lr_scheduler": scheds[0] if scheds else None})
    return conf, None, "epoch"


# ---- probes: what an item's ``bench`` names, read from the built objects ----------------------------


def _lr(built: Built) -> list[float]:
    return built.optimization[1]


def _peak_step(built: Built) -> int:
    """The last step of the warm-up: the first whose lr the next step does not exceed."""
    lrs = _lr(built)
    return next((s for s in range(len(lrs) - 1) if lrs[s + 1] <= lrs[s]), len(lrs) - 1)


def _peak(built: Built) -> float:
    return _lr(built)[_peak_step(built)]


def _warmup_epochs(built: Built) -> float:
    step = _peak_step(built)
    return (step + 1 if step else 0) / built.steps_per_epoch


def _noise(built: Built) -> list[float] | None:
    """The span of training (fractions) where the lr jumps between steps by over 5% of itself and
    0.1% of the peak: a warm-up or cosine moves it by 0.01% of the peak (1% where timm's cosine takes
    over from its warm-up), timm's lr noise by up to 67% of itself."""
    lrs, peak = _lr(built), _peak(built)
    jumps = [s for s in range(len(lrs) - 1) if abs(lrs[s + 1] - lrs[s]) > max(0.05 * lrs[s], 1e-3 * peak)]
    return [round(jumps[0] / len(lrs), 2), round((jumps[-1] + 1) / len(lrs), 2)] if jumps else None


def _no_decay(built: Built) -> list[str]:
    opt = built.optimization[0]
    exempt = {id(p) for g in opt.param_groups if not g.get("weight_decay") for p in g["params"]}
    return sorted(n for n, p in built.module.named_parameters() if id(p) in exempt)


def _ema(built: Built):
    from lightning.pytorch.callbacks import WeightAveraging

    return next((cb for cb in built.callbacks if isinstance(cb, WeightAveraging)), None)


def _ema_decay(built: Built) -> float | None:
    """The decay the EMA callback's averaging function applies: avg(1, 0) = decay."""
    import torch

    cb = _ema(built)
    avg = cb and cb._kwargs.get("avg_fn")
    return float(avg(torch.tensor(1.0), torch.tensor(0.0), torch.tensor(1))) if avg else None


def _test_weights(built: Built) -> str:
    """Which weights bench.run tests: the module as training leaves it ("final"; the EMA callback
    copies its average in) unless a callback keeps the best checkpoint of a monitored metric."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    best = any(isinstance(cb, ModelCheckpoint) and cb.monitor for cb in built.callbacks)
    return ("ema-" if _ema(built) else "") + ("best" if best else "final")


def _clip_norm(built: Built) -> float | None:
    t = built.trainer
    if not t.gradient_clip_val or (t.gradient_clip_algorithm or "norm") != "norm":
        return None
    return t.gradient_clip_val


def _loss_smoothing(built: Built) -> float | None:
    from torch import nn

    loss = next((m for m in built.module.modules() if isinstance(m, nn.CrossEntropyLoss)), None)
    return loss and loss.label_smoothing


def _drop_path(built: Built) -> float:
    return max((float(m.drop_prob) for m in built.module.modules() if hasattr(m, "drop_prob")), default=0.0)


def _num_classes(built: Built) -> int:
    import torch

    size = _crop(built, 0).size
    built.module.eval()
    with torch.no_grad():
        return built.module(torch.zeros(1, 3, *_pair(size))).shape[-1]


def _flat(transform) -> list:
    inner = getattr(transform, "transforms", None)
    return [t for x in inner for t in _flat(x)] if isinstance(inner, (list, tuple)) else [transform]


def _find(built: Built, split: int, test: Callable) -> object | None:
    return next((t for t in built.transforms[split] if test(t)), None)


def _named(*names: str) -> Callable:
    return lambda t: type(t).__name__ in names


def _crop(built: Built, split: int):
    if split == 0:
        return _find(built, 0, lambda t: hasattr(t, "scale") and hasattr(t, "ratio"))
    return _find(built, 1, _named("CenterCrop"))


def _pair(size) -> tuple[int, int]:
    size = [size] if isinstance(size, int) else list(size)
    return (size[0], size[-1])


def _side(size) -> int | list[int]:
    """A square size as one number (224, not [224, 224]); a resize's short side likewise."""
    h, w = _pair(size)
    return h if h == w else [h, w]


def _interpolations(mode) -> list[str]:
    """Interpolation names: one, or every one a "random" choice draws from."""
    from PIL import Image

    def name(m) -> str:  # torchvision's enum or string, or a PIL constant
        if hasattr(m, "value"):
            return m.value
        return m if isinstance(m, str) else Image.Resampling(m).name.lower()

    return sorted(name(m) for m in (mode if isinstance(mode, (list, tuple)) else [mode]))


def _normalize(built: Built, split: int) -> dict | None:
    t = _find(built, split, _named("Normalize"))
    return t and {"mean": [float(v) for v in t.mean], "std": [float(v) for v in t.std]}


def _resize(built: Built):
    return _find(built, 1, _named("Resize", "ResizeKeepRatio"))


def _randaugment(built: Built) -> dict:
    """RandAugment as fractions of its strongest setting: timm's (ops with a probability and a
    magnitude on 10 levels, with noise) or torchvision's (each op applied, magnitude on its bins)."""
    t = _find(built, 0, _named("RandAugment"))
    if t is None:
        return {"num_ops": 0, "magnitude": None, "magnitude_std": None, "op_prob": None, "ops": []}
    if hasattr(t, "ops"):  # timm
        op = t.ops[0]
        top = op.magnitude_max or 10.0
        names = [o.name.removesuffix("Increasing").removesuffix("Rel") for o in t.ops]
        return {
            "num_ops": t.num_layers,
            "magnitude": op.magnitude / top,
            "magnitude_std": op.magnitude_std / top,
            "op_prob": op.prob,
            "ops": sorted(names),
        }
    space = getattr(t, "_AUGMENTATION_SPACE", None) or t._augmentation_space(t.num_magnitude_bins, (32, 32))
    return {
        "num_ops": t.num_ops,
        "magnitude": t.magnitude / (t.num_magnitude_bins - 1),
        "magnitude_std": 0.0,
        "op_prob": 1.0,
        "ops": sorted(space),
    }


def _color_jitter(built: Built) -> list[float] | None:
    t = _find(built, 0, _named("ColorJitter"))
    if t is None:
        return None
    return [(v[1] - v[0]) / 2 if v else 0.0 for v in (t.brightness, t.contrast, t.saturation)]


def _random_erasing(built: Built) -> float:
    t = _find(built, 0, lambda t: "RandomErasing" in type(t).__name__)
    return 0.0 if t is None else float(getattr(t, "probability", getattr(t, "p", 1.0)))


def _mixup(built: Built) -> float:
    """The probability of mixup/cutmix on a batch, wherever a run would hold it: the method, the
    datamodule or the train loader's collate function."""
    collate = built.datamodule.train_dataloader().collate_fn
    holders = [vars(built.module), vars(built.datamodule), {"collate": collate}]
    mixers = [v for h in holders for v in h.values() if type(v).__name__ in ("Mixup", "MixUp", "CutMix")]
    return max((float(getattr(m, "mix_prob", 1.0)) for m in mixers), default=0.0)


PROBES: dict[str, Callable[[Built], object]] = {
    "optimizer.class": lambda b: type(b.optimization[0]).__name__,
    "optimizer.betas": lambda b: list(b.optimization[0].defaults["betas"]),
    "optimizer.eps": lambda b: b.optimization[0].defaults["eps"],
    "optimizer.amsgrad": lambda b: b.optimization[0].defaults.get("amsgrad", False),
    "optimizer.weight_decay": lambda b: max(g["weight_decay"] for g in b.optimization[0].param_groups),
    "optimizer.no_decay": _no_decay,
    "batch.global": lambda b: b.per_device_batch * b.trainer.world_size * b.trainer.accumulate_grad_batches,
    "lr.start": lambda b: _lr(b)[0],
    "lr.peak": _peak,
    "lr.warmup_epochs": _warmup_epochs,
    "lr.midway": lambda b: _lr(b)[len(_lr(b)) // 2] / _peak(b),
    "lr.end": lambda b: _lr(b)[-1],
    "lr.noise": _noise,
    "trainer.max_epochs": lambda b: b.trainer.max_epochs,
    "trainer.gradient_clip_norm": _clip_norm,
    "trainer.sync_batchnorm": lambda b: b.trainer.strategy._layer_sync is not None,
    "loss.label_smoothing": _loss_smoothing,
    "model.drop_path_rate": _drop_path,
    "model.num_classes": _num_classes,
    "ema.decay": _ema_decay,
    "ema.every_n_steps": lambda b: getattr(_ema(b), "update_every_n_steps", None),
    "ema.buffers": lambda b: bool(_ema(b) and _ema(b)._use_buffers),
    "test.weights": _test_weights,
    "train.crop.size": lambda b: _side(_crop(b, 0).size),
    "train.crop.scale": lambda b: list(_crop(b, 0).scale),
    "train.crop.ratio": lambda b: list(_crop(b, 0).ratio),
    "train.crop.interpolation": lambda b: _interpolations(_crop(b, 0).interpolation),
    "train.hflip": lambda b: getattr(_find(b, 0, _named("RandomHorizontalFlip")), "p", 0.0),
    "train.randaugment.num_ops": lambda b: _randaugment(b)["num_ops"],
    "train.randaugment.magnitude": lambda b: _randaugment(b)["magnitude"],
    "train.randaugment.magnitude_std": lambda b: _randaugment(b)["magnitude_std"],
    "train.randaugment.op_prob": lambda b: _randaugment(b)["op_prob"],
    "train.randaugment.ops": lambda b: _randaugment(b)["ops"],
    "train.color_jitter": _color_jitter,
    "train.random_erasing": _random_erasing,
    "train.mixup": _mixup,
    "train.normalize": lambda b: _normalize(b, 0),
    "eval.resize.size": lambda b: _side(_resize(b).size),
    "eval.resize.interpolation": lambda b: _interpolations(_resize(b).interpolation),
    "eval.crop.size": lambda b: _side(_crop(b, 1).size),
    "eval.normalize": lambda b: _normalize(b, 1),
}


# ---- comparing -----------------------------------------------------------------------------------


def _selected(rule: dict, module) -> list[str]:
    """The parameter names a ``params`` rule selects."""

    def hit(name: str, p) -> bool:
        return (
            p.ndim <= rule.get("ndim_at_most", -1)
            or name.endswith(tuple(rule.get("name_ends", ())))
            or any(k in name for k in rule.get("name_has", ()))
            or name in rule.get("name_is", ())
        )

    return sorted(n for n, p in module.named_parameters() if hit(n, p))


def same(official, observed) -> bool:
    """Equal, numbers within ``REL``, lists and mappings element by element."""
    if isinstance(official, bool) or isinstance(observed, bool) or official is None or observed is None:
        return official is observed or official == observed and type(official) is type(observed)
    if isinstance(official, (int, float)) and isinstance(observed, (int, float)):
        return math.isclose(official, observed, rel_tol=REL, abs_tol=1e-12)
    if isinstance(official, (list, tuple)) and isinstance(observed, (list, tuple)):
        return len(official) == len(observed) and all(map(same, official, observed))
    if isinstance(official, dict) and isinstance(observed, dict):
        return official.keys() == observed.keys() and all(same(official[k], observed[k]) for k in official)
    return official == observed


@pytest.fixture(scope="module")
def data_args(tmp_path_factory) -> Callable[[str], list[str]]:
    """The task's real-format fixture, written once per task: the overrides that point at it."""
    written: dict[str, list[str]] = {}

    def args(task: str) -> list[str]:
        if task not in written:
            written[task] = fixture_args(task, tmp_path_factory.mktemp(f"{task}-data"))
        return written[task]

    return args


@pytest.mark.parametrize("task", sorted(RECIPES))
def test_the_official_recipe_is_well_formed(task: str) -> None:
    recipe = RECIPES[task]
    names = {m.name for m in get_task(task).methods}
    assert recipe["methods"] and set(recipe["methods"]) <= names, recipe["methods"]
    assert recipe["repository"] and recipe["run"][0] == "preset=paper" and recipe["train_images"] > 0
    for item in recipe["items"]:
        where = f"{task}: {item.get('key')!r}"
        assert {"key", "official", "source", "bench"} <= item.keys() <= ITEM_KEYS, where
        assert item["bench"] in PROBES or item["bench"].startswith("config."), f"{where}: unknown probe"
        assert str(item["source"]).strip() and str(item.get("deviation", "-")).strip(), where
        assert set(item.get("methods", recipe["methods"])) <= set(recipe["methods"]), where
    for method in recipe["methods"]:
        keys = [i["key"] for i in _items(recipe, method)]
        assert len(keys) == len(set(keys)), f"{task}/{method}: an item listed twice"


@pytest.mark.parametrize(("task", "method"), CASES)
def test_the_paper_preset_follows_the_official_recipe(task: str, method: str, data_args) -> None:
    built = Built(task, method, RECIPES[task], data_args(task))
    wrong = []
    for item in _items(RECIPES[task], method):
        official = item["official"]
        if isinstance(official, dict) and official.keys() == {"params"}:
            official = _selected(official["params"], built.module)
        observed = built.value(item["bench"])
        if same(official, observed) == ("deviation" in item):
            verdict = "matches but declares a deviation" if "deviation" in item else "differs"
            wrong.append(f"{item['key']}: {verdict} (official {official!r}, bench {observed!r})")
    assert not wrong, f"{task}/{method} vs configs/{task}/{RECIPE}:\n" + "\n".join(wrong)


# ---- the task doc's table ------------------------------------------------------------------------


def _show(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}".replace("e-0", "e-")
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_show(v)}" for k, v in value.items())
    return str(value)


def table(recipe: dict) -> str:
    """The recipe as the Markdown table its task doc shows."""
    every = recipe["methods"]
    rows = ["| item | official | source | bench |", "|---|---|---|---|"]
    for item in recipe["items"]:
        methods = item.get("methods", every)
        key = item["key"] if methods == every else f"{item['key']}: {', '.join(methods)}"
        bench = f"differs: {item['deviation']}" if "deviation" in item else "same"
        cells = [key, _show(item["official"]), str(item["source"]), bench]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


@pytest.mark.parametrize("task", sorted(RECIPES))
def test_the_task_doc_shows_the_official_recipe(task: str) -> None:
    doc = DOCS / f"{task}.md"
    if not doc.is_file():
        pytest.skip(f"{task} has no page under docs/tasks/")
    expected = table(RECIPES[task])
    assert expected in doc.read_text(), f"docs/tasks/{task}.md lacks its official recipe table:\n{expected}"
