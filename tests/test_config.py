from __future__ import annotations

import pytest

from bench.config import config_hash, parse_overrides, read_preset, resolve
from bench.errors import BenchError


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
