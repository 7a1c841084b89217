"""Fallen start states, as in the paper: a random joint pose and root orientation (lying face down
or face up, random heading), then ``settle_s`` seconds of zero action so the body comes to rest.

The training pool is drawn by the run's seed (from ``data.pool_seed`` and the seed), so each seed
trains on its own sample of falls; the held-out test pool is drawn by ``data.pool_seed`` alone, the
same for every seed. Both are a shared stage (``bench.artifacts``) of the ``data`` config and the
seed: built once and reused by every method of that seed.
"""

from __future__ import annotations

import numpy as np

from bench.artifacts import cached
from bench.tasks.getup.env import GetUpEnv

VERSION = 1


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a
    w2, x2, y2, z2 = b
    return np.array(
        [
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
        ]
    )


def axis_quat(axis: int, angle: float) -> np.ndarray:
    q = np.zeros(4)
    q[0], q[1 + axis] = np.cos(angle / 2), np.sin(angle / 2)
    return q


def fall(env: GetUpEnv, rng: np.random.Generator, face_down: bool, d: dict) -> tuple[np.ndarray, np.ndarray]:
    """One fallen state: random pose in the joint ranges, lying pitched by +-90 deg (+ noise)."""
    m = env.model
    qpos = m.qpos0.copy()
    pitch = (1 if face_down else -1) * np.pi / 2 + rng.uniform(-1, 1) * np.radians(d["pitch_noise_deg"])
    if env.char.planar:
        qpos[1], qpos[2] = d["drop_height"], pitch
    else:
        yaw = axis_quat(2, rng.uniform(-np.pi, np.pi))
        roll = axis_quat(0, rng.uniform(-1, 1) * np.radians(d["pitch_noise_deg"]))
        qpos[2], qpos[3:7] = d["drop_height"], quat_mul(yaw, quat_mul(axis_quat(1, pitch), roll))
    qpos[env.act_q] = rng.uniform(env.lo, env.hi)
    env.reset(qpos, np.zeros(m.nv), 1.0)
    env.mj.mj_step(m, env.data, nstep=int(round(d["settle_s"] / m.opt.timestep)))
    return env.state()


def build_pool(d: dict, n: int, seed: int | list[int]) -> dict[str, np.ndarray]:
    """``n`` fallen states, alternately aimed face down and face up; ``prone`` is where each
    actually came to rest (a body may roll over while settling)."""
    env, rng = GetUpEnv(d), np.random.default_rng(seed)
    qpos, qvel, prone = [], [], []
    for i in range(n):
        q, v = fall(env, rng, i % 2 == 0, d)
        env.set_state(q, v)
        qpos.append(q), qvel.append(v), prone.append(env.prone())
    return {"qpos": np.stack(qpos), "qvel": np.stack(qvel), "prone": np.array(prone)}


def pools(d: dict, seed: int) -> tuple[dict, dict]:
    """(training pool, test pool) of fallen states for the run's ``seed``, cached by the data
    config and the seed."""

    def build(folder) -> None:
        train = build_pool(d, d["pool_size"], [d["pool_seed"], seed])
        test = build_pool(d, d["test_states"], d["pool_seed"] + 1)
        arrays = {f"{s}_{k}": v for s, pool in (("train", train), ("test", test)) for k, v in pool.items()}
        np.savez(folder / "pool.npz", **arrays)

    keys = (
        "character",
        "pool_size",
        "test_states",
        "pool_seed",
        "pitch_noise_deg",
        "drop_height",
        "settle_s",
    )
    folder = cached("getup", "fallen", {k: d[k] for k in keys} | {"seed": seed}, build, VERSION)
    z = np.load(folder / "pool.npz")
    split = {s: {k: z[f"{s}_{k}"] for k in ("qpos", "qvel", "prone")} for s in ("train", "test")}
    return split["train"], split["test"]
