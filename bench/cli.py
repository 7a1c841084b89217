"""``bench list | show | run | sweep | publish | export | compare``: parse, call, print. Bad input
exits 2 in one line."""

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
    listing = sub.add_parser("list", help="tasks, their methods and presets")
    listing.add_argument("--markdown", action="store_true", help="the README's table of tasks")
    show = sub.add_parser("show", help="a task's paper, claims, reported numbers, leaderboard")
    show.add_argument("task")
    show.add_argument(
        "--claims", action="store_true", help="each claim with its source, level, bound and verdict"
    )
    run = sub.add_parser("run", help="one run: bench run TASK [method=M] [preset=P] [seed=S] [k=v ...]")
    run.add_argument("task")
    run.add_argument("overrides", nargs="*")
    run.add_argument("--force", action="store_true", help="rerun even if an ok record exists")
    sweep = sub.add_parser("sweep", help="a task's methods x seeds: local GPUs/CPUs, printed, SLURM, W&B")
    sweep.add_argument("task")
    sweep.add_argument("overrides", nargs="*", help="passed to every run (preset=... too)")
    sweep.add_argument("--methods", help="comma-separated subset of the preset's methods")
    sweep.add_argument(
        "--seeds",
        help="comma-separated seeds instead of the preset's seeds:, or auto: as many as the "
        "underpowered claims of the committed board need (at most 20)",
    )
    sweep.add_argument("--preset", help="shorthand for preset=P")
    sweep.add_argument(
        "--search",
        choices=["grid", "random", "bayes"],
        help="grid (default): every combination of values; random: --trials N draws of the W&B "
        "parameter specs (k='{distribution: ..., min: ..., max: ...}'), each on every method and seed; "
        "bayes: W&B's, with --wandb",
    )
    sweep.add_argument("--trials", type=int, help="points a local random search draws")
    sweep.add_argument("--search-seed", type=int, default=0, help="the random search's draws (default 0)")
    sweep.add_argument("--spec", type=Path, help="a W&B sweep spec (YAML): its method and parameters")
    sweep.add_argument("--devices", help="comma-separated GPU ids (default: the visible GPUs)")
    sweep.add_argument("--gpus-per-run", type=int, help="GPUs per run (sets trainer.devices)")
    sweep.add_argument("--runs-per-gpu", type=int, default=1, help="small runs packed on each GPU")
    sweep.add_argument("--jobs", type=int, default=1, help="CPU workers when no GPU is visible")
    sweep.add_argument("--timeout", type=float, help="seconds per run; a run past it is killed, failed")
    sweep.add_argument("--force", action="store_true", help="rerun runs that have an ok record")
    sweep.add_argument("--print", action="store_true", help="print one `bench run` line per run")
    sweep.add_argument("--launcher", choices=["local", "submitit"], default="local")
    sweep.add_argument(
        "--slurm", action="append", default=[], metavar="KEY=VALUE", help="a submitit parameter"
    )
    sweep.add_argument("--slurm-folder", type=Path, help="submitit's logs (default runs/slurm/TASK)")
    sweep.add_argument("--wait", action="store_true", help="with submitit: wait for the array")
    sweep.add_argument(
        "--wandb", action="store_true", help="create the sweep on W&B, print the agent command"
    )
    sweep.add_argument("--wandb-spec", action="store_true", help="print the sweep's W&B spec (YAML)")
    sweep.add_argument("--entity", help="W&B entity of the sweep (default: yours)")
    sweep.add_argument("--project", help="W&B project of the sweep (default bench-TASK)")
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
    pub.add_argument("--out", type=Path, help="the boards' folder (default leaderboards)")
    pub.add_argument("--strict", action="store_true", help="exit 1 if any record was skipped")
    pub.add_argument(
        "--allow-dirty", action="store_true", help="publish records from dirty trees or mixed code, marked"
    )
    pub.add_argument(
        "--check", action="store_true", help="exit 1 if a committed board differs from its committed records"
    )
    pub.add_argument(
        "--wandb", action="store_true", help="log each published board's claim table to its W&B project"
    )
    pub.add_argument(
        "--from-wandb",
        metavar="ENTITY/PROJECT[/SWEEP]",
        help="download the record artifacts of the project's (or sweep's) runs and merge them like --from",
    )
    export = sub.add_parser("export", help="records -> one table (CSV, parquet, JSONL), a row per run")
    export.add_argument("task", nargs="?")
    export.add_argument("--preset")
    export.add_argument(
        "--format", dest="fmt", help="csv, parquet or jsonl (default: --out's suffix, else csv)"
    )
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--runs", type=Path, help="a runs folder to add to the committed records")
    compare = sub.add_parser(
        "compare", help="paired per-seed difference of two run sets: METHOD, METHOD:K=V, METHOD@COMMIT"
    )
    compare.add_argument("task")
    compare.add_argument("a", help="METHOD, METHOD:KEY=VALUE[:KEY=VALUE...], each optionally @COMMIT")
    compare.add_argument("b")
    compare.add_argument("--metric", help="default: the task's primary metric")
    compare.add_argument("--preset", default="cpu")
    compare.add_argument("--runs", type=Path, help="runs folder besides the committed records ($BENCH_RUNS)")
    return p


def task_table(tasks) -> str:
    """The Markdown table of these tasks (the README's "Tasks"): name, paper, methods."""
    rows = ["| task | paper | methods |", "|---|---|---|"]
    for task in tasks:
        paper = f"[{task.paper}]({task.url})".replace("|", "\\|")
        rows.append(f"| `{task.name}` | {paper} | {', '.join(m.name for m in task.methods)} |")
    return "\n".join(rows) + "\n"


def _list(markdown: bool) -> None:
    from bench.config import presets
    from bench.registry import found

    if markdown:
        print(task_table(entry.task for entry in found().values()), end="")
        return
    for entry in found().values():
        task = entry.task
        print(f"{task.name:10s} {task.paper}")
        if entry.origin != "bench":
            print(f"{'':10s} from: {entry.origin}")
        print(f"{'':10s} methods: {', '.join(m.name for m in task.methods)}")
        print(f"{'':10s} presets: {', '.join(presets(task.name))}")


def _show_claims(name: str) -> None:
    """Each claim of each preset: level, source, bound, and the committed board's verdict,
    interval, seeds and power."""
    import json

    from bench.claims import reading
    from bench.config import preset_claims, presets
    from bench.leaderboard import BOARDS
    from bench.render import interval, power

    path = BOARDS / f"{name}.json"
    board = json.loads(path.read_text())["claims"] if path.exists() else {}
    for preset in presets(name):
        for c in preset_claims(name, preset):
            print(f"[{preset}] {c.id} ({c.level}): {c.text}\n  claim:   {c.describe()}")
            print(f"  source:  {c.source}")
            if c.level == "proxy":
                print(f"  stands for: {c.stands_for}\n  why:     {c.why}")
            whose = " (the paper's)" if c.level == "paper" else ""
            print(f"  bound:   {c.threshold():g}{whose}")
            v = board.get(preset, {}).get(c.id)
            if v is None:
                print("  verdict: not on the committed board")
                continue
            print(
                f"  verdict: {reading(v)}\n  Δ:       {interval(v)} (95% interval)\n  n:       {v['n']} seeds"
            )
            if v["detectable"] is not None:
                print(f"  power:   {power(v)}")


def _show(name: str) -> None:
    from bench.config import preset_claims, presets
    from bench.leaderboard import BOARDS
    from bench.registry import get_task

    task = get_task(name)
    print(f"{task.name}: {task.paper}\n{task.url}")
    print(f"primary metric: {task.primary} ({'higher' if task.higher_is_better else 'lower'} is better)")
    print(f"presets: {', '.join(presets(name))}\nmethods:")
    for m in task.methods:
        print(f"  {m.name:16s} {m.description}")
    for preset in presets(name):
        for c in preset_claims(name, preset):
            print(f"claim [{preset} preset] {c.id} ({c.level}): {c.text} -- {c.describe()}")
    if task.reported:
        print(f"reported by the paper ({task.reported_note}):")
        for method, values in task.reported.items():
            print(f"  {method:16s} " + ", ".join(f"{k}={v}" for k, v in values.items()))
    board = BOARDS / f"{name}.md"
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


def _sweep(ns, extra: list[str]) -> int:
    from bench import sweep
    from bench.records import runs_root

    method, from_spec, passed = sweep.read_spec(ns.spec) if ns.spec else (None, [], {})
    overrides = from_spec + ns.overrides + extra + ([f"preset={ns.preset}"] if ns.preset else [])
    if ns.gpus_per_run is not None and ns.gpus_per_run < 1:
        raise BenchError("--gpus-per-run takes a positive integer")
    search = sweep.Search(ns.search or method or "grid", ns.trials, ns.search_seed)
    if ns.wandb or ns.wandb_spec:
        search.check(local=False)
        params = sweep.parameters(ns.task, overrides, ns.methods, ns.seeds)
        spec = sweep.wandb_spec(ns.task, params, search.method, passed)
        # refuse a bad sweep before creating it: the grid, or one draw on every method and seed
        probe = search if search.method == "grid" else sweep.Search("random", 1)
        sweep.plan(ns.task, overrides, ns.methods, ns.seeds, probe)
        if ns.wandb_spec:
            import yaml

            print(yaml.safe_dump(spec, sort_keys=False), end="")
            return 0
        print(sweep.create_wandb_sweep(ns.task, spec, ns.entity, ns.project))
        return 0
    opts = sweep.Options(
        devices=ns.devices,
        jobs=ns.jobs,
        gpus_per_run=ns.gpus_per_run,
        runs_per_gpu=ns.runs_per_gpu,
        timeout=ns.timeout,
        force=ns.force,
    )
    if ns.print or ns.launcher == "submitit":
        runs = [sweep.run_args(a, opts) for a in sweep.plan(ns.task, overrides, ns.methods, ns.seeds, search)]
        if ns.print:
            print("\n".join(sweep.command_lines(ns.task, runs, ns.force)))
            return 0
        folder = ns.slurm_folder or runs_root() / "slurm" / ns.task
        jobs = sweep.submit(ns.task, runs, sweep.parse_slurm(ns.slurm), folder, ns.force)
        array = jobs[0].job_id.split("_")[0]
        print(f"submitted {len(jobs)} runs of {ns.task} as job array {array} (logs: {folder})")
        if not ns.wait:
            return 0
        codes = [job.result() for job in jobs]
        failed = sum(c != 0 for c in codes)
        print(f"sweep {ns.task}: {len(codes) - failed} ok, {failed} not ok")
        return 1 if failed else 0
    return sweep.sweep(ns.task, overrides, ns.methods, ns.seeds, opts, search)


def _log_claims(written: list[Path]) -> None:
    """Each board just written (``<task>.json``) as a claim table in a W&B run of its own."""
    import json

    from bench import tracking
    from bench.records import runs_root

    for path in written:
        if path.suffix == ".json":
            board = json.loads(path.read_text())
            run = tracking.log_claims(board, runs_root() / "wandb-claims" / board["task"])
            print(f"logged the claims of {board['task']} to W&B (run {run})")


def _export(ns) -> int:
    """``bench export``: the table of ``bench.results.load`` written to ``--out``."""
    from bench import results

    if ns.fmt is not None and ns.fmt not in results.FORMATS:
        raise BenchError(f"unknown format {ns.fmt!r}: use one of {', '.join(results.FORMATS)}")
    skipped: list[str] = []
    frame = results.load(ns.task, ns.preset, committed=True, runs=ns.runs, skipped=skipped)
    for line in skipped:
        print(line, file=sys.stderr)
    fmt = results.export(frame, ns.out, ns.fmt)
    print(f"wrote {len(frame)} runs to {ns.out} ({fmt})")
    return 0


def _compare(ns) -> int:
    """``bench compare``: see bench/compare.py."""
    from bench.compare import compare, report

    print(report(compare(ns.task, ns.a, ns.b, ns.metric, ns.preset, ns.runs)))
    return 0


def _from_wandb(ns, folder: Path) -> list[Path]:
    """``--from-wandb``: the record artifacts of a W&B project or sweep, downloaded into
    ``folder`` as one more ``--from`` source."""
    from bench import tracking

    if not ns.task:
        raise BenchError("--from-wandb needs the TASK whose records to pull")
    paths = tracking.download_records(ns.from_wandb, ns.task, folder)
    print(f"downloaded {len(paths)} record artifacts from W&B {ns.from_wandb}", file=sys.stderr)
    return [folder]


def main(argv: list[str] | None = None) -> int:
    try:
        ns, extra = _parser().parse_known_args(argv)
        if extra and ns.command not in ("run", "sweep"):
            raise BenchError(f"unrecognized arguments: {' '.join(extra)}")
        if ns.command == "list":
            _list(ns.markdown)
        elif ns.command == "show" and ns.claims:
            from bench.registry import get_task

            get_task(ns.task)
            _show_claims(ns.task)
        elif ns.command == "show":
            _show(ns.task)
        elif ns.command == "run":
            return _run(ns, extra)
        elif ns.command == "sweep":
            return _sweep(ns, extra)
        elif ns.command == "publish" and ns.check:
            from bench.leaderboard import BOARDS, check

            out = ns.out or BOARDS
            problems = check(out)
            print("\n".join(problems) or f"{out}: every board is what its committed records produce")
            return 1 if problems else 0
        elif ns.command == "export":
            return _export(ns)
        elif ns.command == "compare":
            return _compare(ns)
        elif ns.command == "publish":
            import tempfile

            from bench.leaderboard import BOARDS, publish

            with tempfile.TemporaryDirectory(prefix="bench-wandb-") as scratch:
                sources = ns.sources + (_from_wandb(ns, Path(scratch)) if ns.from_wandb else [])
                written, skipped = publish(ns.task, sources, ns.out or BOARDS, ns.allow_dirty)
            for line in skipped:
                print(line, file=sys.stderr)
            print("\n".join(f"wrote {p}" for p in written))
            if ns.wandb:
                _log_claims(written)
            if skipped and ns.strict:
                return 1
    except BenchError as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    return 0
