"""What a local sweep prints while it runs."""

from __future__ import annotations

import re
import sys
import threading

_WARNING = re.compile(r"warn", re.IGNORECASE)


class Display:
    """The sweep's output: one line per finished run and per new child warning, and (on a terminal)
    a live bar of done / running / failed runs with an ETA."""

    def __init__(self, task: str, total: int, live: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console(highlight=False, soft_wrap=True)
        self.lock = threading.Lock()
        self.total, self.running, self.failed, self.count = total, 0, 0, 0
        self.seen: dict[str, int] = {}
        self.progress = None
        if live:
            self.progress = Progress(
                TextColumn(f"sweep {task}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[state]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self.console,
                transient=True,
            )
            self.bar = self.progress.add_task("runs", total=total, state=self._state())
            self.progress.start()

    def _state(self) -> str:
        return f"running {self.running}, failed {self.failed}"

    def print(self, line: str) -> None:
        (self.progress.console if self.progress else self.console).print(line, markup=False)
        sys.stdout.flush()

    def started(self) -> None:
        with self.lock:
            self.running += 1
            self._update()

    def finished(self, label: str, line: str, ok: bool) -> None:
        with self.lock:
            self.running -= 1
            self.count += 1
            self.failed += not ok
            self.print(f"[{self.count}/{self.total}] {label}: {line}")
            self._update(advance=1)

    def warnings(self, label: str, stderr: str) -> None:
        with self.lock:
            for text in dict.fromkeys(ln.strip() for ln in stderr.splitlines() if _WARNING.search(ln)):
                self.seen[text] = self.seen.get(text, 0) + 1
                if self.seen[text] == 1:
                    self.print(f"  warning ({label}): {text}")

    def _update(self, advance: int = 0) -> None:
        if self.progress:
            self.progress.update(self.bar, advance=advance, state=self._state())

    def close(self) -> None:
        if self.progress:
            self.progress.stop()
        repeated = sum(n - 1 for n in self.seen.values())
        if repeated:
            self.print(f"({repeated} repeats of these warnings in other runs: each run's sweep.log has all)")
