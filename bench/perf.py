"""``make perf``: harness and task figures, each measured against a baseline in the same run.

1. ``bench list`` wall time (goal < 0.5 s) and that it imports no torch.
2. ``bench publish`` of 10^4 generated records (copies of the committed records of the task that has
   the most, new seeds, every tenth a variant) into an empty boards folder, and ``bench publish
   --check`` of the result, against reading the same record files as plain JSON.
   Goal: publish < 10 s (docs/SCALING.md).
3. Each task's own figure: ``bench/tasks/<name>/perf.py`` with a ``main(tiny=False)`` that prints
   it (emo's is the harness overhead: ``bench run`` over a bare PyTorch loop). ``python -m
   bench.perf TASK ...`` limits this part to the tasks named.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PUBLISH_RECORDS = 10_000
VARIANTS = 25  # per method: every tenth generated record runs one of them


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


def publish_task() -> str:
    """The task with the most committed records: the generated records copy its."""
    from bench import leaderboard
    from bench.registry import tasks

    return max(sorted(tasks()), key=lambda name: len(leaderboard.committed(name)))


def _float_key(cfg: dict, prefix: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """The first float setting of a config (depth first, sorted keys): the one a variant scales."""
    for key in sorted(cfg):
        value = cfg[key]
        if isinstance(value, float) and value:
            return (*prefix, key)
        if isinstance(value, dict) and (found := _float_key(value, (*prefix, key))):
            return found
    return None


def _scaled(cfg: dict, key: tuple[str, ...], factor: float) -> dict:
    head, *rest = key
    value = cfg[head]
    return {**cfg, head: _scaled(value, tuple(rest), factor) if rest else value * factor}


def generate(n: int, out: Path, task: str) -> None:
    """``n`` valid records under ``out`` laid out as ``$BENCH_RUNS``: copies of ``task``'s committed
    records with new seeds; every tenth is one of ``VARIANTS`` variants of its method (its first
    float setting scaled, so its own config hash and a labelled row of its own)."""
    from bench import config, leaderboard, records

    base = leaderboard.committed(task)
    for i in range(n):
        rec = {k: v for k, v in base[i % len(base)].items() if k != "folder"}
        cfg = {**rec["config"], "seed": 1000 + i}
        if i % 10 == 9 and (key := _float_key(cfg)):
            cfg = _scaled(cfg, key, 2 + (i // 10) % VARIANTS)
        rec.update(seed=cfg["seed"], config=cfg, config_hash=config.config_hash(cfg))
        path = records.run_dir(out, cfg, rec["config_hash"]) / "record.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(records.validate(rec), indent=1, sort_keys=True))


def publish_s(n: int = PUBLISH_RECORDS) -> dict[str, float]:
    """Seconds of ``bench publish`` (a fresh process, as a user runs it) of ``n`` generated records
    into an empty boards folder, of ``bench publish --check`` of the boards it wrote, and of reading
    the same record files as plain JSON (json.loads, no validation, no boards)."""
    task = publish_task()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(n, root / "new", task)
        (root / "runs").mkdir()
        env = {**os.environ, "BENCH_RUNS": str(root / "runs")}
        bench = [sys.executable, "-m", "bench", "publish"]
        times = {}
        for name, args in (
            ("publish", [task, "--from", str(root / "new"), "--out", str(root / "boards")]),
            ("check", ["--check", "--out", str(root / "boards")]),
        ):
            t0 = time.perf_counter()
            subprocess.run([*bench, *args], env=env, capture_output=True, text=True, check=True)
            times[name] = time.perf_counter() - t0
        committed = len(list((root / "boards" / "records").glob("**/*.json")))
        assert committed == n, f"published {committed} of {n} records"
        t0 = time.perf_counter()
        for path in sorted((root / "new").glob("**/record.json")):
            json.loads(path.read_text())
        times["plain"] = time.perf_counter() - t0
    return times


def main(only: list[str]) -> None:
    """The harness figures, then the figure of every task (or of the tasks named)."""
    from bench.registry import folder, get_task, package, tasks

    for name in only:
        get_task(name)
    wall, imported = list_wall_s()
    print(f"bench list: {wall:.3f} s (goal < 0.5), torch imported: {imported}")
    t = publish_s()
    print(
        f"bench publish of {PUBLISH_RECORDS:,} records: {t['publish']:.1f} s (goal < 10), --check "
        f"{t['check']:.1f} s; reading them as plain JSON {t['plain']:.2f} s: ratio "
        f"{t['publish'] / t['plain']:.0f}x",
        flush=True,
    )
    for name in only or tasks():
        if (folder(name) / "perf.py").exists():
            print(f"--- {name}", flush=True)
            importlib.import_module(f"{package(name)}.perf").main()


if __name__ == "__main__":
    main(sys.argv[1:])
