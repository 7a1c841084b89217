"""Claims: every rule of the format fails on its violation; verdicts, their power and its wording;
what reads them (``bench show --claims``, ``bench sweep --seeds auto``, the W&B claim table)."""

from __future__ import annotations

import json
import math
import os
import statistics
from pathlib import Path

import pytest

from bench import claims, config, render, tracking
from bench.claims import Claim, Gate, judge, parse, reading
from bench.cli import main
from bench.errors import BenchError
from bench.registry import tasks
from bench.sweep import axes

METHODS = {"a", "b"}
WHERE = "configs/t/cpu.yaml"
PAPER = {
    "text": "a beats b",
    "metric": "m",
    "method": "a",
    "op": ">=",
    "than": "b",
    "level": "paper",
    "source": "Table 2: a 71.5 vs b 70.1",
    "bound": 0.0,
}
PROXY = {
    "text": "a above 0.8",
    "metric": "m",
    "method": "a",
    "op": ">",
    "than": 0.8,
    "level": "proxy",
    "source": "Sec. 4: 'above 93%'",
    "stands_for": "Sec. 4: a predicts at > 93%",
    "why": "at cpu scale the accuracy is lower; the bound is the cpu baseline's",
}
CHECK = {"text": "a positive", "metric": "m", "method": "a", "op": ">", "than": 0.0}
CHECK |= {"level": "check", "source": "implementation"}


def one(spec: dict, reduced: bool = False) -> Claim:
    (claim,) = parse({"c": spec}, WHERE, METHODS, reduced)
    return claim


def refused(spec: dict, match: str, reduced: bool = False) -> None:
    with pytest.raises(BenchError, match=match) as e:
        one(spec, reduced)
    assert str(e.value).startswith(f"{WHERE}: claim"), "the error names the file and the claim"


def test_each_level_parses_with_its_keys() -> None:
    assert one(PAPER).level == "paper" and one(PAPER).threshold() == 0.0
    assert one(PROXY).stands_for.startswith("Sec. 4") and one(CHECK).source == "implementation"
    ratio = one(PAPER | {"op": "<=", "scale": 2.3, "bound": 2.3})
    assert ratio.threshold() == 2.3 and ratio.describe() == "a m <= 2.3 x b"
    assert one(PAPER | {"margin": 0.02, "bound": 0.02}).threshold() == 0.02
    assert one(PAPER | {"than": 0.93, "op": ">", "bound": 0.93}).threshold() == 0.93
    assert one(PAPER | {"than": {"metric": "n"}}).threshold() == 0.0
    assert one(PAPER | {"expect": 0.02}).expect == 0.02, "expect_why only on a reduced preset"
    assert one(PROXY | {"expect": 0.5, "expect_why": "halved with the data"}, reduced=True).expect == 0.5


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ({k: v for k, v in CHECK.items() if k != "level"}, "lacks level"),
        ({k: v for k, v in CHECK.items() if k != "source"}, "lacks source"),
        (CHECK | {"source": " "}, "bad source"),
        (CHECK | {"source": 3}, "bad source"),
        (CHECK | {"level": "review"}, "bad level 'review'"),
        (CHECK | {"kind": "check"}, "say level \\(paper, proxy or check\\), not kind"),
        ({k: v for k, v in PAPER.items() if k != "bound"}, "bad bound"),
        (PAPER | {"than": 0.93, "bound": 0.85}, "bound 0.85: the claim's threshold is 0.93"),
        (PAPER | {"scale": 2.3, "bound": 2.0}, "bound 2: the claim's threshold is 2.3"),
        (PAPER | {"bound": 0.1}, "bound 0.1: the claim's threshold is 0"),
        (PAPER | {"margin": 0.05}, "bound 0: the claim's threshold is 0.05"),
        (PAPER | {"bound": "0"}, "bad bound"),
        ({k: v for k, v in PROXY.items() if k != "stands_for"}, "bad stands_for"),
        ({k: v for k, v in PROXY.items() if k != "why"}, "bad why"),
        (PROXY | {"why": ""}, "bad why"),
        (CHECK | {"expect": 0.0}, "bad expect 0.0"),
        (CHECK | {"expect": -0.1}, "bad expect"),
        (CHECK | {"expect": True}, "bad expect"),
        (CHECK | {"expect": "2%"}, "bad expect"),
        (CHECK | {"op": "=>"}, "bad op '=>'"),
        (CHECK | {"method": "c"}, "bad method 'c'"),
        (CHECK | {"colour": "red"}, "unexpected keyword argument 'colour'"),
    ],
)
def test_a_rule_broken_is_one_error_naming_the_file_and_claim(spec: dict, match: str) -> None:
    refused(spec, match)


@pytest.mark.parametrize("task", sorted(tasks()))
def test_every_preset_parses_and_the_paper_preset_states_the_papers_claims(task: str) -> None:
    declared = {preset: config.preset_claims(task, preset) for preset in config.presets(task)}
    assert any(c.level == "paper" for c in declared["paper"]), (
        f"configs/{task}/paper.yaml: no paper-level claim"
    )


def test_a_scaled_expectation_on_a_reduced_preset_says_how() -> None:
    refused(CHECK | {"expect": 0.1}, "bad expect_why", reduced=True)
    assert one(CHECK | {"expect": 0.1, "expect_why": "the paper's 0.4 at a quarter of the data"}, True)


def test_a_bound_equal_to_the_threshold_within_rounding_passes() -> None:
    assert one(PAPER | {"than": 0.1 + 0.2, "bound": 0.3}).bound == 0.3


def test_two_claims_on_one_comparison_are_an_error() -> None:
    twin = PAPER | {"text": "the same again", "level": "check", "source": "implementation"}
    with pytest.raises(BenchError, match=f"{WHERE}: claims 'x' and 'y' compare the same"):
        parse({"x": PAPER, "y": twin}, WHERE, METHODS)
    other_margin = twin | {"margin": 0.01}
    assert len(parse({"x": PAPER, "y": other_margin}, WHERE, METHODS)) == 2
    other_metric = twin | {"than": {"metric": "n"}}
    assert len(parse({"x": PAPER | {"than": {"metric": "m2"}}, "y": other_metric}, WHERE, METHODS)) == 2


def runs(a: list[float], b: list[float] | None = None) -> dict:
    out = {"a": {s: {"m": v} for s, v in enumerate(a)}}
    if b is not None:
        out["b"] = {s: {"m": v} for s, v in enumerate(b)}
    return out


def test_verdicts_are_three_valued() -> None:
    claim = one(PAPER)
    assert judge(claim, runs([1.0, 1.1, 1.2], [0.5, 0.6, 0.65]))["verdict"] == "holds"
    assert judge(claim, runs([0.1, 0.2, 0.3], [0.5, 0.6, 0.65]))["verdict"] == "does not hold"
    noisy = judge(claim, runs([1.0, 0.2, 0.9], [0.5, 0.6, 0.65]))
    assert noisy["verdict"] == "inconclusive" and noisy["lo"] < 0 < noisy["hi"] and noisy["n"] == 3
    assert judge(claim, runs([1.0], [0.5]))["verdict"] == "inconclusive"  # one seed: no interval
    gated = Claim(
        "g", "", "m", "a", ">=", 0.0, "check", "implementation", requires=(Gate("m", "b", ">=", 0.9),)
    )
    assert judge(gated, runs([1.0, 1.0], [0.5, 0.6]))["verdict"] == "not judged"
    same_run = Claim("s", "", "m", "a", ">", {"metric": "n"}, "check", "implementation", scale=2.0)
    out = judge(same_run, {"a": {s: {"m": 1.0, "n": n} for s, n in enumerate((0.1, 0.2, 0.15))}})
    assert out["verdict"] == "holds" and out["bound"] == pytest.approx(0.3)


def test_a_verdict_carries_level_source_and_what_the_proxy_stands_for() -> None:
    v = judge(one(PROXY), runs([0.9, 0.95]))
    assert v["level"] == "proxy" and v["source"] == PROXY["source"] and v["stands_for"] == PROXY["stands_for"]
    assert judge(one(PAPER), runs([1.0, 1.0], [0.5, 0.5]))["stands_for"] is None


# t quantiles from a printed table: t_{0.975} and t_{0.80} with 3, 14 and 15 degrees of freedom
T975_3, T80_3, T975_14, T80_14, T975_15, T80_15 = 3.1824, 0.9785, 2.1448, 0.8681, 2.1314, 0.8662


def test_power_matches_a_hand_computation() -> None:
    diffs = [0.1, 0.3, 0.2, 0.4]  # a - b per seed, n = 4
    sd = statistics.stdev(diffs)  # 0.1291
    hand = (T975_3 + T80_3) * sd / math.sqrt(4)  # 0.2686: the smallest effect 4 seeds detect
    v = judge(one(PAPER | {"expect": 0.1}), runs(diffs, [0.0] * 4))
    assert v["detectable"] == pytest.approx(hand, abs=1e-4) and v["detectable"] == pytest.approx(
        0.2686, abs=1e-4
    )
    # 15 seeds detect (T975_14 + T80_14) * sd / sqrt(15) = 0.1004 > 0.1; 16 seeds detect 0.0967
    assert (T975_14 + T80_14) * sd / math.sqrt(15) > 0.1 >= (T975_15 + T80_15) * sd / math.sqrt(16)
    assert v["seeds_needed"] == 16 and v["expect"] == 0.1
    assert claims.seeds_needed(sd, 0.001) is None, "beyond MAX_SEEDS: no n reaches it"
    assert claims.seeds_needed(0.0, 0.1) == 2


def test_an_inconclusive_claim_below_its_power_says_underpowered_and_how_many_seeds() -> None:
    noisy = runs([0.3, -0.2, 0.4, -0.1], [0.0] * 4)
    v = judge(one(PAPER | {"expect": 0.1}), noisy)
    assert v["verdict"] == "inconclusive" and v["underpowered"] and v["detectable"] > 0.1
    assert reading(v) == f"inconclusive: underpowered (about {v['seeds_needed']} seeds needed)"
    far = judge(one(PAPER | {"expect": 0.001}), noisy)
    assert far["underpowered"] and reading(far) == "inconclusive: underpowered (more than 200 seeds needed)"
    plain = judge(one(PAPER), noisy)  # no expected effect: nothing to be underpowered for
    assert not plain["underpowered"] and plain["seeds_needed"] is None and reading(plain) == "inconclusive"
    assert plain["detectable"] is not None
    enough = judge(one(PAPER | {"expect": 10.0}), noisy)  # detectable < expect: the effect is absent
    assert enough["verdict"] == "inconclusive" and not enough["underpowered"]
    held = judge(one(PAPER | {"expect": 0.001}), runs([1.0, 1.1, 1.2], [0.5, 0.6, 0.65]))
    assert held["verdict"] == "holds" and not held["underpowered"] and reading(held) == "holds"
    single = judge(one(PAPER | {"expect": 0.1}), runs([0.3], [0.0]))
    assert single["detectable"] is None and not single["underpowered"]


def board(verdicts: dict, task: str = "emo") -> dict:
    return {"task": task, "fingerprint": "f" * 16, "schema": 3, "claims": {"cpu": verdicts}}


def test_sweep_seeds_auto_adds_what_the_underpowered_claims_need(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    preset = config.preset_seeds("emo", "cpu")
    assert axes("emo", [], seeds="auto")["seed"] == preset, "no committed board: the preset's seeds"
    (tmp_path / "leaderboards").mkdir()
    v = judge(one(PAPER | {"expect": 0.1}), runs([0.3, -0.2, 0.4, -0.1], [0.0] * 4))
    ok = judge(one(PAPER), runs([1.0, 1.0], [0.5, 0.5]))

    def needs(*verdicts: dict) -> list[int]:
        (tmp_path / "leaderboards" / "emo.json").write_text(json.dumps(board(dict(enumerate(verdicts)))))
        return axes("emo", [], seeds="auto")["seed"]

    assert needs(ok) == preset
    assert needs(ok, v | {"seeds_needed": 9}) == sorted(set(range(9)) | set(preset))
    assert needs(v | {"seeds_needed": 9}, v | {"seeds_needed": 12}) == list(range(12))
    assert needs(v | {"seeds_needed": 50}) == list(range(20)), "capped"
    assert needs(v | {"seeds_needed": None}) == list(range(20)), "beyond reach: the cap"
    assert needs(v | {"seeds_needed": 30, "underpowered": False}) == preset, "only open claims count"


def test_show_claims_prints_source_level_bound_verdict_and_power(tmp_path: Path, monkeypatch, capsys) -> None:
    declared = parse({"paper_c": PAPER | {"expect": 0.1}, "proxy_c": PROXY}, WHERE, METHODS)
    monkeypatch.setattr(config, "preset_claims", lambda task, preset: declared if preset == "cpu" else ())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "leaderboards").mkdir()
    v = judge(declared[0], runs([0.3, -0.2, 0.4, -0.1], [0.0] * 4))
    (tmp_path / "leaderboards" / "emo.json").write_text(json.dumps(board({"paper_c": v})))
    assert main(["show", "emo", "--claims"]) == 0
    out = capsys.readouterr().out
    assert "[cpu] paper_c (paper): a beats b" in out and "source:  Table 2: a 71.5 vs b 70.1" in out
    assert "bound:   0 (the paper's)" in out and "bound:   0.8\n" in out and f"n:       {v['n']} seeds" in out
    assert f"Δ:       {render.interval(v)} (95% interval)" in out
    assert f"inconclusive: underpowered (about {v['seeds_needed']} seeds needed)" in out
    assert f"detects {v['detectable']:.4g}; paper's effect 0.1" in out
    assert "[cpu] proxy_c (proxy)" in out and "stands for: Sec. 4: a predicts" in out
    assert "verdict: not on the committed board" in out


def test_publish_logs_the_claim_table_to_wandb_read_back_offline(tmp_path: Path, monkeypatch) -> None:
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    v = judge(one(PAPER | {"expect": 0.1}), runs([0.3, -0.2, 0.4, -0.1], [0.0] * 4))
    check = judge(one(CHECK), runs([0.5, 0.6]))
    tracking.log_claims(board({"paper_c": v, "check_c": check}), tmp_path / "w")
    (table,) = (tmp_path / "w").glob("wandb/offline-run-*/files/media/table/claims_*.table.json")
    seen = json.loads(table.read_text())
    assert seen["columns"] == tracking.CLAIM_COLUMNS
    rows = {r[1]: dict(zip(seen["columns"], r, strict=True)) for r in seen["data"]}
    assert rows["paper_c"]["verdict"] == "inconclusive" and rows["paper_c"]["underpowered"] is True
    assert rows["paper_c"]["seeds_needed"] == v["seeds_needed"] and rows["paper_c"]["level"] == "paper"
    assert rows["check_c"]["source"] == "implementation" and rows["check_c"]["preset"] == "cpu"
