from __future__ import annotations

import pytest

from bench.config import config_hash, parse_overrides, presets, read_preset, resolve
from bench.errors import BenchError
from bench.registry import tasks


def test_overrides_accept_plain_and_hyphenated_forms() -> None:
    assert parse_overrides(["a.b=1", "--c=x", "d=1e-3", "e=true", "f=", "g=[1, 2]"]) == {
        "a.b": 1,
        "c": "x",
        "d": 1e-3,
        "e": True,
        "f": None,
        "g": [1, 2],
    }


@pytest.mark.parametrize("bad", ["noequals", "=3", "a..b=1", "1a=2", "a b=1", "--=1"])
def test_malformed_overrides_are_refused(bad: str) -> None:
    with pytest.raises(BenchError, match="malformed override"):
        parse_overrides([bad])


def test_preset_inherits_and_overrides_apply() -> None:
    smoke, cpu = read_preset("emo", "smoke"), read_preset("emo", "cpu")
    assert smoke["optim"] == cpu["optim"] and smoke["data"]["train_size"] < cpu["data"]["train_size"]
    cfg = resolve("emo", ["preset=smoke", "method=emo_5m", "seed=3", "--optim.lr=0.01"])
    assert (cfg["method"], cfg["preset"], cfg["seed"], cfg["optim"]["lr"]) == ("emo_5m", "smoke", 3, 0.01)


def test_unknown_key_names_the_nearest() -> None:
    with pytest.raises(BenchError, match="did you mean optim.lr"):
        resolve("emo", ["optim.lrr=1"])


@pytest.mark.parametrize(
    ("arg", "message"),
    [
        ("trainer.max_epochs=abc", "expected int"),
        ("optim.lr=fast", "expected float"),
        ("data=3", "expected dict"),
        ("seed=-1", "non-negative"),
        ("preset=gpu", "unknown preset"),
        ("method=emo_9m", "unknown method"),
        ("optim.lr=.nan", "finite"),
    ],
)
def test_bad_values_are_refused(arg: str, message: str) -> None:
    with pytest.raises(BenchError, match=message):
        resolve("emo", [arg])


def test_hash_ignores_seed_and_logger_but_not_settings() -> None:
    base = resolve("emo", ["preset=smoke"])
    assert config_hash(base) == config_hash(resolve("emo", ["preset=smoke", "seed=4", "logger=none"]))
    assert config_hash(base) != config_hash(resolve("emo", ["preset=smoke", "optim.lr=0.5"]))


@pytest.mark.parametrize(
    ("arg", "want"),
    [
        ("trainer.devices=8", 8),
        ('trainer.devices="8"', 8),  # W&B's argv quotes numbers
        ("trainer.devices=[0,1]", [0, 1]),
        ("trainer.devices=auto", "auto"),
        ("trainer.precision=16-mixed", "16-mixed"),
        ("trainer.precision=64", 64),
        ("trainer.gradient_clip_val=None", None),
        ("optim.lr='1e-3'", 1e-3),
    ],
)
def test_trainer_options_take_the_kinds_lightning_accepts(arg: str, want) -> None:
    key = arg.split("=")[0]
    cfg = resolve("emo", ["preset=paper", arg])
    node = cfg
    for part in key.split("."):
        node = node[part]
    assert node == want and type(node) is type(want)


@pytest.mark.parametrize("arg", ["trainer.devices=abc", "trainer.precision=17-mixed", "trainer.devices=true"])
def test_bad_trainer_values_are_refused(arg: str) -> None:
    with pytest.raises(BenchError, match="bad value for trainer"):
        resolve("emo", ["preset=smoke", arg])


def test_every_preset_has_the_whole_trainer_section() -> None:
    for task in tasks():
        for preset in presets(task):
            trainer = resolve(task, [f"preset={preset}"])["trainer"]
            assert {"strategy", "num_nodes", "precision", "devices", "accelerator"} <= set(trainer)


def test_hash_ignores_machine_local_keys_and_other_methods() -> None:
    base = config_hash(resolve("emo", ["preset=smoke"]))
    moved = resolve("emo", ["preset=smoke", "data.root=/elsewhere", "data.num_workers=4", "logger=none"])
    assert config_hash(moved) == base
    staged = config_hash(resolve("getup", ["preset=smoke", "method=staged"]))
    edited = resolve("getup", ["preset=smoke", "method=staged", "methods.strong_only.phases=[weak]"])
    assert config_hash(edited) == staged, "editing another method's section must not rerun this one"
    own = resolve("getup", ["preset=smoke", "method=staged", "methods.staged.phases=[strong]"])
    assert config_hash(own) != staged


def test_single_process_tasks_refuse_several_devices() -> None:
    with pytest.raises(BenchError, match="runs in one process"):
        resolve("getup", ["preset=smoke", "trainer.devices=2"])
