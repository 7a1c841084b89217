"""User-facing errors: the CLI prints their message on one line and exits with code 2."""


class BenchError(Exception):
    """Bad input from the user (name, override, missing data): no traceback, exit code 2."""
