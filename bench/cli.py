"""``bench list | show | run | sweep | publish``: parse, call, print. Bad input exits 2 in one line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.errors import BenchError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise BenchError(message)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("list", help="tasks, their methods and presets")
    show = sub.add_parser("show", help="a task's paper, claims, reported numbers, leaderboard")
    show.add_argument("task")
    run = sub.add_parser("run", help="one run: bench run TASK [method=M] [preset=P] [seed=S] [k=v ...]")
    run.add_argument("task")
    run.add_argument("overrides", nargs="*")
    run.add_argument("--force", action="store_true", help="rerun even if an ok record exists")
    sweep = sub.add_parser("sweep", help="a task's methods x seeds, locally, one worker per device")
    sweep.add_argument("task")
    sweep.add_argument("overrides", nargs="*", help="passed to every run (preset=... too)")
    sweep.add_argument("--methods", help="comma-separated subset of the preset's methods")
    sweep.add_argument("--seeds", help="comma-separated seeds instead of the preset's")
    sweep.add_argument("--devices", help="comma-separated GPU ids, one worker each")
    sweep.add_argument("--preset", help="shorthand for preset=P")
    sweep.add_argument("--jobs", type=int, default=1, help="CPU workers when no --devices")
    sweep.add_argument("--force", action="store_true")
    sweep.add_argument(
        "--wandb", action="store_true", help="create the sweep on W&B, print the agent command"
    )
    pub = sub.add_parser("publish", help="records -> leaderboards/")
    pub.add_argument("task", nargs="?")
    pub.add_argument(
        "--from",
        dest="sources",
        action="append",
        type=Path,
        default=[],
        help="extra folders of records (other machines, W&B agents)",
    )
    pub.add_argument("--out", type=Path, default=Path("leaderboards"))
    pub.add_argument("--strict", action="store_true", help="exit 1 if any record was skipped")
    pub.add_argument(
        "--allow-dirty", action="store_true", help="publish records from dirty trees or mixed code, marked"
    )
    pub.add_argument(
        "--check", action="store_true", help="exit 1 if a committed board differs from its committed records"
    )
    return p


def _list() -> None:
    from bench.config import presets
    from bench.registry import tasks

    for task in tasks().values():
        print(f"{task.name:10s} {task.paper}")
        print(f"{'':10s} methods: {', '.join(m.name for m in task.methods)}")
        print(f"{'':10s} presets: {', '.join(presets(task.name))}")


def _show(name: str) -> None:
    from bench.config import preset_claims, presets
    from bench.registry import get_task

    task = get_task(name)
    print(f"{task.name}: {task.paper}\n{task.url}")
    print(f"primary metric: {task.primary} ({'higher' if task.higher_is_better else 'lower'} is better)")
    print(f"presets: {', '.join(presets(name))}\nmethods:")
    for m in task.methods:
        print(f"  {m.name:16s} {m.description}")
    for preset in presets(name):
        for c in preset_claims(name, preset):
            print(f"claim [{preset}, {c.kind}] {c.id}: {c.text} ({c.describe()})")
    if task.reported:
        print(f"reported by the paper ({task.reported_note}):")
        for method, values in task.reported.items():
            print(f"  {method:16s} " + ", ".join(f"{k}={v}" for k, v in values.items()))
    board = Path("leaderboards") / f"{name}.md"
    if board.exists():
        print("\n" + board.read_text())


def _run(ns, extra: list[str]) -> int:
    from bench.run import execute

    record, path = execute(ns.task, ns.overrides + extra, force=ns.force)
    if path is None:  # a DDP rank other than 0: rank 0 reports
        return 0
    primary = record["primary"]
    print(
        f"{record['status']}: {record['task']}/{record['method']} seed {record['seed']} "
        f"{primary['name']}={primary['value']} -> {path}"
    )
    if record["error"]:
        print(f"error: {record['error']}", file=sys.stderr)
    return 0 if record["status"] == "ok" else 1


def main(argv: list[str] | None = None) -> int:
    try:
        ns, extra = _parser().parse_known_args(argv)
        if extra and ns.command not in ("run", "sweep"):
            raise BenchError(f"unrecognized arguments: {' '.join(extra)}")
        if ns.command == "list":
            _list()
        elif ns.command == "show":
            _show(ns.task)
        elif ns.command == "run":
            return _run(ns, extra)
        elif ns.command == "sweep":
            from bench import sweep

            if ns.wandb:
                print(sweep.create_wandb_sweep(ns.task))
                return 0
            overrides = ns.overrides + extra + ([f"preset={ns.preset}"] if ns.preset else [])
            return sweep.sweep(ns.task, overrides, ns.methods, ns.seeds, ns.devices, ns.jobs, ns.force)
        elif ns.command == "publish" and ns.check:
            from bench.leaderboard import check

            problems = check(ns.out)
            print("\n".join(problems) or f"{ns.out}: every board is what its committed records produce")
            return 1 if problems else 0
        elif ns.command == "publish":
            from bench.leaderboard import publish

            written, skipped = publish(ns.task, ns.sources, ns.out, ns.allow_dirty)
            for line in skipped:
                print(line, file=sys.stderr)
            print("\n".join(f"wrote {p}" for p in written))
            if skipped and ns.strict:
                return 1
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    return 0
