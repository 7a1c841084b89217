"""``make gpu-check``: every task's paper preset for a few steps on CUDA, then emo's with DDP.

Each task runs its ``paper`` preset in the preset's own precision on CUDA, on its small
real-format fixture (``Task.fixture``, shrunk as bench/paper_preset.py says, as the slow tests run
it: no dataset needed), one process per task with a time limit; then emo's paper preset with DDP over
every visible GPU. The JSON (``--out``) holds the hardware and, per task, pass/fail, steps/s,
samples/s, peak GPU memory and wall time. Budget: 8 minutes on one GPU. Without CUDA it refuses
in one line (exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MARK = "GPUCHECK "
DDP_TASK = "emo"


def cuda_summary() -> dict | None:
    """The visible GPUs, or None without CUDA."""
    import torch

    if not torch.cuda.is_available() or torch.cuda.device_count() == 0:
        return None
    names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"gpus": names, "count": len(names), "torch": torch.__version__, "cuda": torch.version.cuda}


def figures(record: dict, peak_gpu_mb: float | None, devices: int = 1) -> dict:
    """steps/s, samples/s, peak GPU memory of a record (None where the run has no such figure)."""
    cost = record.get("cost", {})
    step_s = cost.get("step_s")
    batch = (record["config"].get("data") or {}).get("batch_size")
    steps = round(1 / step_s, 3) if step_s else None
    if step_s and isinstance(batch, int):
        samples = round(batch * devices / step_s, 2)
    else:
        samples = cost.get("throughput")
    return {
        "pass": record["status"] == "ok",
        "status": record["status"],
        "error": record["error"],
        "steps_per_s": steps,
        "samples_per_s": samples,
        "peak_gpu_mb": peak_gpu_mb if peak_gpu_mb is not None else cost.get("peak_mem_mb"),
        "precision": record["config"]["trainer"].get("precision"),
        "wall_s": cost.get("wall_s"),
    }


def overrides(task: str, root: Path, steps: int) -> list[str]:
    """The task's paper preset on its fixture, shrunk by size overrides only, on one CUDA device."""
    from bench.paper_preset import paper_args

    return [
        *paper_args(task, root),
        f"trainer.max_steps={steps}",
        "trainer.accelerator=cuda",
        "trainer.devices=1",
        "logger=none",
    ]


def _child(task: str, args: list[str]) -> int:
    """One task in this process: the run, then its peak GPU memory, as one JSON line."""
    import torch

    from bench.run import execute

    torch.cuda.reset_peak_memory_stats()
    record, _ = execute(task, args, force=True)
    peak = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    print(MARK + json.dumps(figures(record, peak)), flush=True)
    return 0


def _run(cmd: list[str], timeout: float, env: dict) -> tuple[dict | None, str]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if lines:
        out = json.loads(lines[-1][len(MARK) :])
        out["wall_s"] = out.get("wall_s") or round(time.perf_counter() - t0, 1)
        return out, ""
    said = proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines()
    tail = (said or [f"exit {proc.returncode}"])[-1]
    return None, tail


def check(tasks: list[str], steps: int, timeout: float, runs: Path, ddp: bool = True) -> dict:
    """Run the check; returns the JSON document."""
    hardware = cuda_summary()
    env = {**os.environ, "BENCH_RUNS": str(runs)}
    results: dict = {"hardware": hardware, "steps": steps, "tasks": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        for task in tasks:
            args = overrides(task, Path(tmp) / task, steps)
            cmd = [sys.executable, "-m", "bench.gpu_check", "--child", task, *args]
            out, error = _run(cmd, timeout, env)
            results["tasks"][task] = out or {"pass": False, "status": "failed", "error": error}
            print(f"gpu-check {task}: {_line(results['tasks'][task])}", flush=True)
        if ddp and hardware:
            n = hardware["count"]
            args = overrides(DDP_TASK, Path(tmp) / f"{DDP_TASK}-ddp", steps)
            args = [a for a in args if not a.startswith("trainer.devices=")]
            args += [f"trainer.devices={n}", "trainer.strategy=ddp", "--force"]
            cmd = [sys.executable, "-m", "bench", "run", DDP_TASK, *args]
            out, error = _ddp(cmd, timeout, env, runs, n)
            results["ddp"] = {"task": DDP_TASK, "devices": n, **(out or {"pass": False, "error": error})}
            print(f"gpu-check {DDP_TASK} DDP x{n}: {_line(results['ddp'])}", flush=True)
    entries = [*results["tasks"].values(), *([results["ddp"]] if "ddp" in results else [])]
    results["pass"] = bool(entries) and all(e["pass"] for e in entries)
    return results


def _ddp(cmd: list[str], timeout: float, env: dict, runs: Path, n: int) -> tuple[dict | None, str]:
    from bench import records

    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:g} s"
    found = [r for _, r in records.find([runs], DDP_TASK) if r["config"]["trainer"].get("devices") == n]
    if not found:
        return None, (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
    return figures(max(found, key=lambda r: r["finished"]), None, devices=n), ""


def _line(entry: dict) -> str:
    if not entry["pass"]:
        return f"FAIL ({entry.get('error')})"
    return (
        f"pass, {entry.get('steps_per_s')} steps/s, {entry.get('samples_per_s')} samples/s, "
        f"peak {entry.get('peak_gpu_mb')} MB, {entry.get('precision')}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("gpu-check.json"))
    p.add_argument("--steps", type=int, default=10, help="training steps per task")
    p.add_argument("--tasks", help="comma-separated subset (default: every task)")
    p.add_argument("--timeout", type=float, default=150, help="seconds per task")
    p.add_argument("--runs", type=Path, help="where the check's records go (default: a temporary folder)")
    p.add_argument("--no-ddp", action="store_true")
    p.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    ns = p.parse_args(argv)
    if ns.child:
        return _child(ns.child[0], ns.child[1:])
    if cuda_summary() is None:
        print(
            "gpu-check: no CUDA GPU visible (torch.cuda.is_available() is false): run it on a GPU node",
            file=sys.stderr,
        )
        return 2
    from bench.registry import tasks as registered

    names = ns.tasks.split(",") if ns.tasks else list(registered())
    with tempfile.TemporaryDirectory(prefix="gpu-check-runs-") as tmp:
        results = check(names, ns.steps, ns.timeout, ns.runs or Path(tmp), ddp=not ns.no_ddp)
    ns.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"gpu-check: {'pass' if results['pass'] else 'FAIL'} -> {ns.out}")
    return 0 if results["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
