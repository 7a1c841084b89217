"""``make perf``: harness and task figures, each measured against a baseline in the same run.

1. ``bench list`` wall time (goal < 0.5 s) and that it imports no torch.
2. Each task's own figure: ``bench/tasks/<name>/perf.py`` with a ``main()`` that prints it (emo's
   is the harness overhead: ``bench run`` over a bare PyTorch loop). ``python -m bench.perf TASK
   ...`` limits this part to the tasks named.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import time


def list_wall_s(repeats: int = 5) -> tuple[float, bool]:
    cmd = [
        sys.executable,
        "-c",
        "import sys; from bench.cli import main; main(['list']); "
        "print('torch' in sys.modules, file=sys.stderr)",
    ]
    times, imported = [], False
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - t0)
        imported |= out.stderr.strip().endswith("True")
    return min(times), imported


def main(only: list[str]) -> None:
    """The harness figure, then the figure of every task (or of the tasks named)."""
    from bench.registry import folder, get_task, package, tasks

    for name in only:
        get_task(name)
    wall, imported = list_wall_s()
    print(f"bench list: {wall:.3f} s (goal < 0.5), torch imported: {imported}")
    for name in only or tasks():
        if (folder(name) / "perf.py").exists():
            print(f"--- {name}", flush=True)
            importlib.import_module(f"{package(name)}.perf").main()


if __name__ == "__main__":
    main(sys.argv[1:])
