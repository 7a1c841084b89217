"""The committed leaderboards are what the committed records produce (`bench publish --check`)."""

from __future__ import annotations

from pathlib import Path

from bench.cli import main

BOARDS = Path(__file__).resolve().parent.parent / "leaderboards"


def test_committed_boards_match_their_committed_records(capsys) -> None:
    assert main(["publish", "--check", "--out", str(BOARDS)]) == 0, capsys.readouterr().out
