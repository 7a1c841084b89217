"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations

import difflib
from typing import Any


class BenchError(Exception):
    """Bad input from the user (name, override, missing data): no traceback, exit code 2."""


def lookup(name: str, options: dict[str, Any], what: str) -> Any:
    """``options[name]``, or a BenchError naming the closest options."""
    if name in options:
        return options[name]
    close = difflib.get_close_matches(str(name), list(options), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else f"choose from {', '.join(sorted(options))}"
    raise BenchError(f"unknown {what} {name!r}: {hint}")
