"""A sweep's parameters as W&B writes them (the ``parameters:`` of a W&B sweep configuration):
each key takes ``value``, ``values`` or a ``distribution`` with its bounds. They are checked here,
so that a spec W&B would refuse is refused in one line before anything runs, and sampled here for
a local random search (``bench sweep --search random``).

The distributions, their keys and defaults are W&B's (the sweep configuration reference and the
schema of wandb/sweeps). A spec without ``distribution`` is ``constant`` (``value``),
``categorical`` (``values``), ``int_uniform`` (integer ``min``/``max``) or ``uniform`` (other
numbers). ``log_uniform``, ``q_log_uniform`` and ``inv_log_uniform`` take natural-log exponents as
bounds; their ``_values`` forms take the values. A quantized (``q_``) draw is ``round(x / q) * q``:
an integer when ``q`` is one, else a float (``q`` defaults to 1.0, as in W&B).
"""

from __future__ import annotations

import difflib
import math
import random
import re
from dataclasses import dataclass
from typing import Any

from bench.errors import BenchError

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")
_NORMAL = {"mu": 0.0, "sigma": 1.0}
_BETA = {"a": 1.0, "b": 1.0}
_Q = {"q": 1.0}
# distribution -> (its required keys, its optional keys with W&B's defaults)
DISTRIBUTIONS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "constant": (("value",), {}),
    "categorical": (("values",), {"probabilities": None}),
    "categorical_w_probabilities": (("values", "probabilities"), {}),
    "int_uniform": (("min", "max"), {}),
    "uniform": (("min", "max"), {}),
    "q_uniform": (("min", "max"), _Q),
    "log_uniform": (("min", "max"), {}),
    "log_uniform_values": (("min", "max"), {}),
    "q_log_uniform": (("min", "max"), _Q),
    "q_log_uniform_values": (("min", "max"), _Q),
    "inv_log_uniform": (("min", "max"), {}),
    "inv_log_uniform_values": (("min", "max"), {}),
    "normal": ((), _NORMAL),
    "q_normal": ((), {**_NORMAL, **_Q}),
    "log_normal": ((), _NORMAL),
    "q_log_normal": ((), {**_NORMAL, **_Q}),
    "beta": ((), _BETA),
    "q_beta": ((), {**_BETA, **_Q}),
}
GRID = ("constant", "categorical", "categorical_w_probabilities")  # what a grid can enumerate


@dataclass(frozen=True)
class Param:
    """One swept key: its W&B distribution, its spec as written (numbers parsed) and the spec
    with W&B's defaults filled in, which sampling reads."""

    name: str
    distribution: str
    written: dict
    filled: dict

    @classmethod
    def of(cls, name: str, values: list) -> Param:
        """A grid axis given as a list: ``values`` (``value`` when there is one)."""
        written = {"values": list(values)} if len(values) > 1 else {"value": values[0]}
        return parse(name, written)

    def grid(self) -> list:
        """The values a grid takes; a sampled distribution has none."""
        if self.distribution == "constant":
            return [self.filled["value"]]
        if self.distribution in GRID:
            return list(self.filled["values"])
        raise BenchError(
            f"parameter {self.name}: {self.distribution} is sampled, a grid takes values: or value:; "
            "sample it with --search random --trials N (or on W&B: --wandb --search random|bayes)"
        )

    def wandb(self) -> dict:
        """The spec W&B receives: as written."""
        return dict(self.written)

    def sample(self, rng: random.Random) -> Any:
        """One draw from the distribution, as W&B's random search draws it."""
        d, s = self.distribution, self.filled
        if d == "constant":
            return s["value"]
        if d in ("categorical", "categorical_w_probabilities"):
            weights = s.get("probabilities")
            return rng.choices(s["values"], weights=weights)[0] if weights else rng.choice(s["values"])
        if d == "int_uniform":
            return rng.randint(s["min"], s["max"])
        if d in ("normal", "q_normal"):
            x = rng.normalvariate(s["mu"], s["sigma"])
        elif d in ("log_normal", "q_log_normal"):
            x = rng.lognormvariate(s["mu"], s["sigma"])
        elif d in ("beta", "q_beta"):
            x = rng.betavariate(s["a"], s["b"])
        elif d in ("uniform", "q_uniform"):
            x = rng.uniform(s["min"], s["max"])
        elif d in ("log_uniform", "q_log_uniform"):  # bounds are exponents
            x = math.exp(rng.uniform(s["min"], s["max"]))
        elif d == "inv_log_uniform":
            x = math.exp(-rng.uniform(s["min"], s["max"]))
        else:  # log_uniform_values, q_log_uniform_values, inv_log_uniform_values
            x = math.exp(rng.uniform(math.log(s["min"]), math.log(s["max"])))
        return _quantize(x, s["q"]) if d.startswith("q_") else x


def _quantize(x: float, q: float | int) -> float | int:
    r = round(x / q) * q
    return int(r) if isinstance(q, int) else float(f"{r:.12g}")  # 0.35, not 0.35000000000000003


def number(value: Any) -> Any:
    """A number YAML 1.1 left as a string (``1e-4``) as the number; anything else unchanged."""
    if isinstance(value, str) and _NUMBER.match(value.strip()):
        return int(value) if _INT.match(value.strip()) else float(value)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse(name: str, spec: Any) -> Param:
    """A W&B parameter spec, checked: the distribution known, its keys present and no others,
    its bounds numbers in order. Anything else is one line naming the parameter."""
    where = f"parameter {name}"
    if not isinstance(spec, dict) or not spec:
        raise BenchError(f"{where}: a spec is a mapping with value, values or distribution, got {spec!r}")
    written = {
        k: ([number(v) for v in val] if isinstance(val, list) else number(val)) for k, val in spec.items()
    }
    dist = written.get("distribution") or _inferred(where, written)
    if dist not in DISTRIBUTIONS:
        close = difflib.get_close_matches(str(dist), DISTRIBUTIONS, n=1)
        hint = f"did you mean {close[0]}?" if close else f"W&B's are {', '.join(DISTRIBUTIONS)}"
        raise BenchError(f"{where}: unknown distribution {dist!r}; {hint}")
    required, optional = DISTRIBUTIONS[dist]
    missing = [k for k in required if k not in written]
    if missing:
        raise BenchError(f"{where}: {dist} needs {' and '.join(required)} (missing {', '.join(missing)})")
    extra = sorted(set(written) - set(required) - set(optional) - {"distribution"})
    if extra:
        takes = ", ".join([*required, *optional]) or "nothing else"
        raise BenchError(f"{where}: {dist} takes {takes}; not {', '.join(extra)}")
    filled = {**optional, **written}
    _check(where, dist, filled)
    return Param(name, dist, written, filled)


def _inferred(where: str, spec: dict) -> str:
    if "value" in spec:
        return "constant"
    if "values" in spec:
        return "categorical_w_probabilities" if "probabilities" in spec else "categorical"
    if "min" in spec and "max" in spec:
        ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min", "max"))
        return "int_uniform" if ints else "uniform"
    raise BenchError(f"{where}: give value, values, min and max, or a distribution; got {sorted(spec)}")


def _check(where: str, dist: str, s: dict) -> None:
    if "values" in s:
        if not isinstance(s["values"], list) or not s["values"]:
            raise BenchError(f"{where}: values must be a non-empty list, got {s['values']!r}")
        probs = s.get("probabilities")
        if probs is not None:
            ok = (
                isinstance(probs, list)
                and len(probs) == len(s["values"])
                and all(_is_number(p) for p in probs)
            )
            if not ok or min(probs) < 0 or not math.isclose(sum(probs), 1.0, abs_tol=1e-6):
                raise BenchError(f"{where}: probabilities must be one number >= 0 per value, summing to 1")
        return
    for key in set(s) & {"min", "max", "mu", "sigma", "q", "a", "b"}:
        if not _is_number(s[key]):
            raise BenchError(f"{where}: {key} must be a finite number, got {s[key]!r}")
    if dist == "int_uniform" and not all(isinstance(s[k], int) for k in ("min", "max")):
        raise BenchError(f"{where}: int_uniform takes integer min and max, got {s['min']!r} and {s['max']!r}")
    if "min" in s and s["min"] > s["max"]:
        raise BenchError(f"{where}: min {s['min']!r} is above max {s['max']!r}")
    if dist.endswith("_values") and s["min"] <= 0:
        raise BenchError(f"{where}: {dist} takes values, so min must be > 0, got {s['min']!r}")
    if s.get("sigma", 1) < 0 or s.get("q", 1) <= 0 or min(s.get("a", 1), s.get("b", 1)) <= 0:
        raise BenchError(f"{where}: sigma must be >= 0, q > 0, a and b > 0")


def flatten(parameters: Any, prefix: str = "") -> dict[str, Any]:
    """A W&B ``parameters:`` mapping with nested ``{parameters: {...}}`` groups as dotted keys
    (``optim: {parameters: {lr: ...}}`` is ``optim.lr``): bench's runs take dotted overrides."""
    if not isinstance(parameters, dict) or not parameters:
        raise BenchError(f"parameters{' of ' + prefix[:-1] if prefix else ''} must be a non-empty mapping")
    out = {}
    for key, spec in parameters.items():
        if isinstance(spec, dict) and set(spec) == {"parameters"}:
            out |= flatten(spec["parameters"], f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = spec
    return out
