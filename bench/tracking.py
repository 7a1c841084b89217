"""W&B logging of a run (``logger=wandb``): its config, curves, and at the end its record; and of
a published board's claim verdicts (``bench publish --wandb``).

Mode: ``WANDB_MODE`` if set; else online under a W&B sweep agent (it sets ``WANDB_SWEEP_ID``) and
offline otherwise, so a local run never needs an account. Entity and project: the agent's
(``WANDB_ENTITY``/``WANDB_PROJECT``), else ``bench-<task>``. The Lightning logger sends the resolved
config and every logged curve; ``finish`` puts the record's test metrics, primary metric, cost
and status in the run summary, attaches record.json as an artifact of type ``record``, and closes
the run. Only rank 0 logs. Claims are judged over seeds when a board is published, never in one
run: ``log_claims`` sends a board's claim table to the task's project as a ``wandb.Table`` in a
run of its own (job type ``claims``). ``download_records`` brings the record artifacts back for
``bench publish --from-wandb``.
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


# The claim table's columns: the preset and claim id, then keys of the verdict (bench/claims.py).
CLAIM_COLUMNS = ["preset", "id", "level", "verdict", "underpowered", "seeds_needed", "source"]
CLAIM_COLUMNS += ["stands_for", "text", "claim", "value", "bound", "diff", "lo", "hi", "n", "detectable"]
CLAIM_COLUMNS += ["expect", "reason"]


def claim_table(board: dict) -> list[list]:
    """The rows of a board's claim table, one per (preset, claim), in CLAIM_COLUMNS order."""
    return [
        [preset, cid, *(v.get(k) for k in CLAIM_COLUMNS[2:])]
        for preset, verdicts in board["claims"].items()
        for cid, v in verdicts.items()
    ]


def log_claims(board: dict, folder: Path) -> str:
    """Log ``board``'s claim table to the task's W&B project (``WANDB_PROJECT``, else
    ``bench-<task>``) as the table ``claims`` of a run of its own, with the run's files under
    ``folder``; online unless ``WANDB_MODE`` says otherwise. Returns the run's id."""
    import wandb

    folder.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=os.environ.get("WANDB_PROJECT") or f"bench-{board['task']}",
        entity=os.environ.get("WANDB_ENTITY") or None,
        dir=str(folder),
        mode=os.environ.get("WANDB_MODE") or "online",
        job_type="claims",
        name=f"claims-{board['task']}",
        tags=[board["task"], "claims"],
        config={"task": board["task"], "fingerprint": board["fingerprint"], "schema": board["schema"]},
    )
    run.log({"claims": wandb.Table(columns=CLAIM_COLUMNS, data=claim_table(board))})
    run.finish()
    return run.id


def download_records(path: str, task: str, folder: Path, api=None) -> list[Path]:
    """Download the ``record`` artifacts (``finish`` above) of ``task``'s runs in the W&B project
    ``ENTITY/PROJECT`` or sweep ``ENTITY/PROJECT/SWEEP`` into ``folder/<task>/<run id>/<artifact
    version>/record.json``, the layout ``bench publish --from`` reads; a resumed run's several
    versions each get a folder and the publish merge keeps the latest. ``api``: a ``wandb.Api``
    (made here by default). Returns the record files."""
    from bench.errors import BenchError

    parts = path.strip("/").split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise BenchError(f"--from-wandb {path!r}: write ENTITY/PROJECT or ENTITY/PROJECT/SWEEP")
    import wandb

    prefix = f"record-{task}-"
    out = []
    try:
        api = api or wandb.Api()
        runs = api.sweep("/".join(parts)).runs if len(parts) == 3 else api.runs("/".join(parts))
        for run in runs:
            for artifact in run.logged_artifacts():
                if artifact.type != "record" or not artifact.name.startswith(prefix):
                    continue
                target = folder / task / run.id / artifact.name.replace(":", "-")
                out.append(Path(artifact.download(root=str(target))) / "record.json")
    except (wandb.errors.Error, ValueError) as e:
        first = str(e).splitlines()[0] if str(e) else ""
        raise BenchError(f"W&B {path}: {type(e).__name__}: {first}") from None
    return out
