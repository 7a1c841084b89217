"""W&B logging of a run (``logger=wandb``): its config, curves, and at the end its record.

Mode: ``WANDB_MODE`` if set; else online under a W&B sweep agent (it sets ``WANDB_SWEEP_ID``) and
offline otherwise, so a local run never needs an account. Entity and project: the agent's
(``WANDB_ENTITY``/``WANDB_PROJECT``), else ``bench-<task>``. The Lightning logger sends the resolved
config and every logged curve; ``finish`` puts the record's test metrics, primary metric, cost,
status and claim verdicts (where the record has them) in the run summary, attaches record.json as
an artifact of type ``record``, and closes the run. Only rank 0 logs.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path


def mode(env: dict | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("WANDB_MODE"):
        return env["WANDB_MODE"]
    return "online" if env.get("WANDB_SWEEP_ID") else "offline"


def run_id(out_dir: Path) -> str:
    """The W&B run id: the agent's (``WANDB_RUN_ID``) under a sweep agent, else one made once and
    kept in ``wandb-id`` beside the record, so a resumed run (``resume=true``) continues its W&B
    run instead of starting another."""
    if os.environ.get("WANDB_RUN_ID"):
        return os.environ["WANDB_RUN_ID"]
    path = out_dir / "wandb-id"
    if not path.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(4))  # W&B ids: lowercase letters and digits
    return path.read_text().strip()


def init_kwargs(cfg: dict, out_dir: Path) -> dict:
    """What ``wandb.init`` gets (through Lightning's WandbLogger, or directly in ``finish``)."""
    return {
        "id": run_id(out_dir),
        "resume": "allow",
        "project": os.environ.get("WANDB_PROJECT") or f"bench-{cfg['task']}",
        "entity": os.environ.get("WANDB_ENTITY") or None,
        "dir": str(out_dir),
        "mode": mode(),
        "name": f"{cfg['method']}-s{cfg['seed']}",
        "group": f"{cfg['task']}/{cfg['preset']}/{cfg['method']}",
        "tags": [cfg["task"], cfg["preset"], cfg["method"]],
        "config": cfg,
    }


def logger(cfg: dict, out_dir: Path):
    """Lightning's WandbLogger for this run."""
    from lightning.pytorch.loggers import WandbLogger

    out_dir.mkdir(parents=True, exist_ok=True)
    kw = init_kwargs(cfg, out_dir)
    return WandbLogger(save_dir=kw.pop("dir"), **kw)


def summary(record: dict) -> dict:
    """The run summary of a record: flat keys, numbers and short strings."""
    out = {k: v for k, v in record["metrics"].items() if v is not None}
    out["status"] = record["status"]
    out["config_hash"] = record["config_hash"]
    primary = record["primary"]
    if primary["value"] is not None:
        out[f"primary/{primary['name']}"] = primary["value"]
    for key, value in record["cost"].items():
        out[f"cost/{key}"] = value
    for cid, verdict in (record.get("claims") or {}).items():
        if isinstance(verdict, dict):
            for key, value in verdict.items():
                out[f"claims/{cid}/{key}"] = value
        else:
            out[f"claims/{cid}"] = verdict
    if record["error"]:
        out["error"] = record["error"]
    return out


def finish(record: dict, path: Path) -> None:
    """Send the record to the run's W&B summary and as an artifact; close the run. A no-op
    unless the run logs to W&B."""
    if record["config"].get("logger") != "wandb":
        return
    try:
        _finish(record, path)
    except Exception as e:  # the record is written; W&B being down must not turn it into a crash
        print(f"warning: W&B logging of {path} failed: {type(e).__name__}: {e}", file=sys.stderr)


def _finish(record: dict, path: Path) -> None:
    import wandb

    run = wandb.run or wandb.init(**init_kwargs(record["config"], path.parent))
    run.summary.update(summary(record))
    name = f"record-{record['task']}-{record['method']}-{record['config_hash'][:12]}-s{record['seed']}"
    artifact = wandb.Artifact(name, type="record", metadata={"status": record["status"]})
    artifact.add_file(str(path), name="record.json")
    run.log_artifact(artifact)
    run.finish(exit_code=0 if record["status"] == "ok" else 1)
