"""The code fingerprint follows the code that computes results, not its comments or docstrings."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from bench import provenance, registry
from bench.leaderboard import check, publish
from tests.test_leaderboard import put


@pytest.fixture(autouse=True)
def uncached():
    """No fingerprint computed here outlives the test that patched the code it hashes."""
    provenance.fingerprint.cache_clear()
    yield
    provenance.fingerprint.cache_clear()


@pytest.fixture
def emo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of emo's folder that the registry points at instead of the original."""
    copy = tmp_path / "code" / "emo"
    shutil.copytree(registry.folder("emo"), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(registry, "folder", lambda name: copy)
    return copy


def fingerprint() -> str:
    provenance.fingerprint.cache_clear()
    return provenance.fingerprint("emo")


def replace(text: str, node: ast.AST, new: str) -> str:
    """``text`` with the source of ``node`` replaced by ``new``."""
    lines = text.encode().splitlines(keepends=True)
    start = sum(map(len, lines[: node.lineno - 1])) + node.col_offset
    end = sum(map(len, lines[: node.end_lineno - 1])) + node.end_col_offset
    data = text.encode()
    return (data[:start] + new.encode() + data[end:]).decode()


def reworded(text: str) -> str:
    """``text`` with every module, class and function docstring replaced by another."""
    scopes = ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef
    nodes = ast.walk(ast.parse(text))
    docs = [n.body[0].value for n in nodes if isinstance(n, scopes) and ast.get_docstring(n)]
    for doc in sorted(docs, key=lambda d: (d.lineno, d.col_offset), reverse=True):
        text = replace(text, doc, '"""Said another way."""')
    return text


def edit(path: Path, change) -> None:
    """Apply ``change`` to the file's text, as the next process to run will see it."""
    before = path.read_text()
    path.write_text(change(before))
    assert path.read_text() != before, f"the edit changed nothing in {path.name}"
    provenance.fingerprint.cache_clear()


def test_a_copied_folder_fingerprints_as_the_original(tmp_path: Path, monkeypatch) -> None:
    original = fingerprint()
    copy = tmp_path / "elsewhere" / "emo"
    shutil.copytree(registry.folder("emo"), copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(registry, "folder", lambda name: copy)
    assert fingerprint() == original


def test_comments_and_docstrings_change_no_fingerprint(emo: Path) -> None:
    before = fingerprint()
    for path in sorted(emo.glob("*.py")):
        edit(path, lambda text: f"# a comment\n{text}\n\n# another, after a blank line\n")
    assert fingerprint() == before
    for path in (emo / "method.py", emo / "task.py"):
        edit(path, reworded)
    assert fingerprint() == before


def test_numbers_for_the_board_change_no_fingerprint_but_the_methods_code_does(emo: Path) -> None:
    before = fingerprint()
    task = emo / "task.py"
    tree = ast.parse(task.read_text())
    reported = next(k for k in ast.walk(tree) if isinstance(k, ast.keyword) and k.arg == "reported")
    edit(task, lambda text: replace(text, reported.value, '{"emo_1m": {"imagenet_top1": 99.0}}'))
    assert fingerprint() == before, "a reported number computes no result"

    tree = ast.parse(task.read_text())
    logged = next(n for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "LOGGED")
    edit(task, lambda text: replace(text, logged.value, '{"emo_1m": {"params": 1, "flops": 1.0}}'))
    after_logged = fingerprint()
    assert after_logged != before, "LOGGED feeds a metric of emo's method"

    edit(emo / "method.py", lambda text: text + "\nSCALE = 2\n")
    assert fingerprint() not in (before, after_logged)


def test_the_core_on_the_result_path_counts_and_rendering_does_not(tmp_path: Path, monkeypatch) -> None:
    import bench

    package = tmp_path / "core" / "bench"
    skip = shutil.ignore_patterns("tasks", "__pycache__")
    shutil.copytree(Path(bench.__file__).parent, package, ignore=skip)
    monkeypatch.setattr(bench, "__file__", str(package / "__init__.py"))
    before = fingerprint()
    edit(package / "render.py", lambda text: text + "\nWIDTH = 2\n")
    edit(package / "run.py", lambda text: reworded(f"# a comment\n{text}"))
    assert fingerprint() == before
    edit(package / "config.py", lambda text: text + "\nDEFAULT = 2\n")
    assert fingerprint() != before


def test_a_file_that_does_not_parse_counts_byte_for_byte(emo: Path) -> None:
    before = fingerprint()
    (emo / "broken.py").write_text("def broken(:\n")
    broken = fingerprint()
    (emo / "broken.py").write_text("def broken(:  # a comment\n")
    assert len({before, broken, fingerprint()}) == 3


def test_a_code_edit_marks_rows_stale_and_check_still_passes(emo: Path, runs_dir: Path, tmp_path) -> None:
    out = tmp_path / "boards"
    for seed in range(2):
        put(runs_dir / "emo", "emo_1m", seed, 0.8)
    publish("emo", [], out)
    board = json.loads((out / "emo.json").read_text())
    assert not board["presets"]["cpu"]["emo_1m"]["stale"] and check(out) == []

    edit(emo / "method.py", lambda text: f"# a comment\n{text}")
    assert check(out) == []
    publish("emo", [], out)
    assert json.loads((out / "emo.json").read_text()) == board, "a comment edit leaves the board as it was"

    edit(emo / "method.py", lambda text: text + "\nSCALE = 2\n")
    assert check(out) == [], "the committed board is judged against the code it was published with"
    publish("emo", [], out)
    republished = json.loads((out / "emo.json").read_text())
    assert republished["fingerprint"] == fingerprint() != board["fingerprint"]
    assert republished["presets"]["cpu"]["emo_1m"]["stale"]
    assert check(out) == []


def test_check_names_a_board_without_committed_records(runs_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "boards"
    put(runs_dir / "emo", "emo_1m", 0, 0.8)
    publish("emo", [], out)
    shutil.rmtree(out / "records")
    assert check(out) == [f"{out / 'emo'}.json has no committed records under {out}/records/"]
