"""bench: a Lightning-based benchmark harness reproducing ML papers as comparable tasks."""

__version__ = "0.1.0"
