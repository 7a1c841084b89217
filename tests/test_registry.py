from __future__ import annotations

import subprocess
import sys

import pytest

from bench.errors import BenchError, lookup
from bench.registry import get_task, tasks


def test_tasks_are_discovered_with_their_methods() -> None:
    assert "emo" in tasks()
    assert get_task("emo").method("emo_1m").kwargs == {"arch": "emo_1m"}


def test_unknown_names_suggest_the_closest() -> None:
    with pytest.raises(BenchError, match="did you mean emo"):
        get_task("emoo")
    with pytest.raises(BenchError, match="did you mean emo_1m"):
        get_task("emo").method("emo_1mm")
    with pytest.raises(BenchError, match="choose from a, b"):
        lookup("zzz", {"a": 1, "b": 2}, "thing")


def test_listing_tasks_imports_no_torch() -> None:
    code = "import sys; from bench.registry import tasks; tasks(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
