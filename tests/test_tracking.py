"""A run folder keeps one W&B run id, so a resumed run continues its W&B run."""

from __future__ import annotations

from pathlib import Path

from bench import tracking


def test_a_run_folder_keeps_its_wandb_id(tmp_path: Path) -> None:
    cfg = {"task": "emo", "method": "emo_1m", "seed": 0, "preset": "smoke"}
    first = tracking.init_kwargs(cfg, tmp_path / "run")
    again = tracking.init_kwargs(cfg, tmp_path / "run")
    other = tracking.init_kwargs(cfg, tmp_path / "other")
    assert first["id"] == again["id"] != other["id"]
    assert first["resume"] == "allow"
