"""One run: resolve the config, seed, build, fit, test, and write its record."""

from __future__ import annotations

import logging
import math
import os
import resource
import statistics
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import artifacts, config, provenance, records, tracking
from bench.errors import BenchError
from bench.registry import load


class DivergedError(RuntimeError):
    """Raised when the training loss stops being finite."""


def locate(task_name: str, args: list[str]) -> tuple:
    """The task and resolved config of ``bench run TASK args...``, its hash and record path."""
    task, cfg = config.resolve_run(task_name, args)
    digest = config.config_hash(cfg)
    return task, cfg, digest, records.run_dir(records.runs_root(), cfg, digest) / "record.json"


def execute(task_name: str, args: list[str], force: bool = False) -> tuple[dict, Path | None]:
    """Run ``bench run TASK args...``; returns the record and its path (None on ranks but 0).

    Bad input raises BenchError before anything is written. A complete ``ok`` record for the same
    config hash and seed is returned as is unless ``force``. Any crash still writes a record; with
    several ranks only rank 0 writes.
    """
    task, cfg, digest, path = locate(task_name, args)
    env_threads()
    if path.exists() and not force:
        try:
            old = records.read(path)
        except records.RecordError:
            old = None
        if old and old["status"] == "ok":
            return old, path
    record = _new_record(task, cfg, digest)
    t0 = time.perf_counter()
    try:
        _fit_and_test(task, cfg, path.parent, record)
    except BenchError:
        raise
    except DivergedError as e:
        record.update(status="diverged", error=str(e))
    except Exception as e:  # a crash is a result too: record it, keep the traceback beside it
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.parent / "error.log").write_text(traceback.format_exc())
        record.update(status="failed", error=f"{type(e).__name__}: {e}".splitlines()[0][:500])
    if _rank() != 0:  # DDP: every rank holds the synced metrics, rank 0 writes them
        return record, None
    metrics = record["metrics"]
    if record["status"] == "ok" and not all(_finite(v) for v in metrics.values()):
        record["status"] = "diverged"
    record["metrics"] = records.finite_or_none(metrics)
    record["primary"]["value"] = record["metrics"].get(task.primary)
    record["cost"].update(wall_s=round(time.perf_counter() - t0, 3), peak_mem_mb=_peak_mem_mb())
    record["finished"] = _now()
    try:
        records.write(record, path)
    except OSError as e:  # disk full, read-only folder: the old record (if any) is left intact
        raise BenchError(f"cannot write the record {path}: {e.strerror or e}") from None
    tracking.finish(record, path)
    return record, path


def env_threads() -> int:
    """``BENCH_THREADS``: torch threads per run (unset or empty: 0, torch's default)."""
    raw = os.environ.get("BENCH_THREADS", "").strip()
    if raw and not raw.isdigit():
        raise BenchError(f"BENCH_THREADS={raw!r}: give a whole number of threads, or leave it unset")
    return int(raw or 0)


def record_failure(task_name: str, args: list[str], error: str) -> Path:
    """Write a ``failed`` record for a run that died without writing one (a killed worker)."""
    task, cfg, digest, path = locate(task_name, args)
    record = _new_record(task, cfg, digest)
    record.update(status="failed", error=error, finished=_now())
    records.write(record, path)
    return path


def _new_record(task, cfg: dict, digest: str) -> dict:
    return {
        "schema": records.SCHEMA_VERSION,
        "task": cfg["task"],
        "method": cfg["method"],
        "preset": cfg["preset"],
        "seed": cfg["seed"],
        "config": cfg,
        "config_hash": digest,
        "status": "ok",
        "metrics": {},
        "cost": {},
        "error": None,
        "primary": {"name": task.primary, "value": None, "higher_is_better": task.higher_is_better},
        "provenance": {
            **provenance.collect(),
            "fingerprint": provenance.fingerprint(task.name),
            "task_version": task.version,
        },
        "started": _now(),
        "finished": _now(),
    }


def _fit_and_test(task, cfg: dict, out_dir: Path, record: dict) -> None:
    """Fill the record's metrics and cost, by the method's shape (bench/method.py)."""
    import torch

    from bench.method import LoopMethod

    # Lightning's banners (accelerator, tips) would bury the one line a run prints.
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    logging.getLogger("lightning.fabric").setLevel(logging.WARNING)
    if threads := env_threads():
        torch.set_num_threads(threads)
    artifacts.USED.clear()
    datamodule, module = build(task, cfg)
    if isinstance(module, LoopMethod):
        _step_loop(module, datamodule, cfg, out_dir, record)
    else:
        _fit(module, datamodule, cfg, out_dir, record)
    record["artifacts"] = dict(artifacts.USED)
    record["cost"].update(module.cost())


def build(task, cfg: dict) -> tuple:
    """Seed everything from the run's seed, then build its datamodule and its method, in this
    order: a run's draws depend on it (bench/seeds.py builds the same way)."""
    import lightning as L

    L.seed_everything(cfg["seed"], workers=True, verbose=False)
    datamodule = load(task.datamodule)(cfg)
    method = task.method(cfg["method"])
    section = (cfg.get("methods") or {}).get(cfg["method"]) or {}  # the preset's methods.<name>
    return datamodule, load(method.target)(cfg, **method.kwargs, **section)


def _fit(module, datamodule, cfg: dict, out_dir: Path, record: dict) -> None:
    """A TrainedMethod: Lightning fits (when it trains) and tests it."""
    import lightning as L

    from bench.callbacks import Watch

    timer = Watch()
    callbacks = [timer]
    if cfg["trainer"]["enable_checkpointing"] and cfg.get("checkpoint_every"):
        from lightning.pytorch.callbacks import ModelCheckpoint

        # the last state every N steps (a killed run loses at most N steps), not only per epoch
        callbacks.append(
            ModelCheckpoint(
                out_dir / "checkpoints", every_n_train_steps=cfg["checkpoint_every"], save_last=True
            )
        )
    trainer = L.Trainer(
        **cfg["trainer"],
        default_root_dir=out_dir,
        callbacks=callbacks,
        logger=_logger(cfg, out_dir),
        enable_model_summary=False,
    )
    if module.trains:
        t0 = time.perf_counter()
        ckpt = _last_checkpoint(out_dir) if cfg["resume"] else None
        if ckpt:
            record["cost"]["resumed_from"] = str(ckpt.relative_to(out_dir))
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt, weights_only=True)
        record["cost"].update(train_s=round(time.perf_counter() - t0, 3), step_s=timer.step_s)
        if timer.diverged:
            raise DivergedError(f"training loss became {timer.diverged} at step {trainer.global_step}")
    trainer.test(module, datamodule=datamodule, verbose=False)
    record["metrics"] = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
    if timer.test_s > 0:
        record["cost"].update(
            throughput=round(timer.test_samples / timer.test_s, 2), throughput_unit="samples/s (test)"
        )


# A loop method's state is saved this often while it steps (a paper run lasts days).
CHECKPOINT_S = 600.0
LOOP_CKPT = "loop.ckpt"


def _step_loop(module, datamodule, cfg: dict, out_dir: Path, record: dict) -> None:
    """A LoopMethod: set up on the config's accelerator, step to done (checkpointing its state),
    then record its results. Fabric picks the device the way the Trainer would."""
    import lightning as L

    fabric = L.Fabric(accelerator=cfg["trainer"]["accelerator"], devices=1)
    module.device = fabric.device
    module.out_dir = out_dir
    datamodule.prepare_data()
    datamodule.setup("fit")
    module.setup(datamodule)
    ckpt = out_dir / LOOP_CKPT
    if cfg["resume"] and ckpt.exists():
        module.restore(ckpt)
        record["cost"]["resumed_from"] = LOOP_CKPT
    t0 = saved = time.perf_counter()
    times, steps, done = [], 0, False
    while not done:
        start = time.perf_counter()
        done = module.step()
        times.append(time.perf_counter() - start)
        steps += 1
        if (bad := module.diverged()) is not None:
            raise DivergedError(f"training loss became {bad} at step {steps}")
        if not done and time.perf_counter() - saved > CHECKPOINT_S:
            module.save(ckpt)
            saved = time.perf_counter()
    record["cost"].update(train_s=round(time.perf_counter() - t0, 3), step_s=statistics.median(times))
    record["metrics"] = {f"test/{k}": float(v) for k, v in module.results().items()}


def _last_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted(out_dir.glob("**/*.ckpt"), key=lambda p: p.stat().st_mtime)
    return ckpts[-1] if ckpts else None


def _logger(cfg: dict, out_dir: Path):
    kind = cfg.get("logger", "csv")
    if kind == "wandb":
        return tracking.logger(cfg, out_dir)
    if kind == "csv":
        from lightning.pytorch.loggers import CSVLogger

        return CSVLogger(out_dir, name="logs", version="")
    return False


def _peak_mem_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        rss = max(rss, torch.cuda.max_memory_allocated() / 2**20)
    return round(rss, 1)


def _rank() -> int:
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
