"""Test rollouts and what is measured on them: success (the head above the stand height, held
for ``hold_s``), time to stand, return, prone vs supine, and the number of distinct strategies
(agglomerative clustering of the successful trajectories)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def rollout(env, policy: Callable, qpos, qvel, strength: float, steps: int) -> dict:
    """One episode; ``policy(obs) -> action``. Returns the return, head heights, poses."""
    obs = env.reset(qpos, qvel, strength)
    ret, heads, poses = 0.0, [env.head_height()], [env.data.qpos.copy()]
    for _ in range(steps):
        obs, r = env.step(policy(obs))
        ret += r
        heads.append(env.head_height())
        poses.append(env.data.qpos.copy())
    return {"return": ret, "head": np.array(heads), "qpos": np.stack(poses)}


def stood(head: np.ndarray, height: float, hold: int) -> int | None:
    """The first step from which the head stays >= ``height`` for ``hold`` steps, else None."""
    up = np.concatenate([head >= height, [False]])
    run = 0
    for i, u in enumerate(up):
        if not u:
            if run >= hold:
                return i - run
            run = 0
        else:
            run += 1
    return None


def features(env, episode: dict, t_stand: int, hold: int, points: int) -> np.ndarray:
    """A get-up motion as a fixed-length vector: head height and torso uprightness resampled
    over [0, stand + hold] (so motions of different speed compare by their shape)."""
    q = episode["qpos"][: t_stand + hold + 1]
    head, up = [], []
    for pose in q:
        env.set_state(pose, np.zeros(env.model.nv))
        head.append(env.head_height())
        up.append(env.upright())
    grid = np.linspace(0, len(q) - 1, points)
    idx = np.arange(len(q))
    return np.concatenate([np.interp(grid, idx, head), np.interp(grid, idx, up)])


def strategies(feats: list[np.ndarray], threshold: float) -> int:
    """Distinct strategies: clusters of motion features at an average-linkage distance threshold."""
    if len(feats) < 2:
        return len(feats)
    from sklearn.cluster import AgglomerativeClustering

    x = np.stack(feats) / np.sqrt(feats[0].size)  # RMS distance per point
    clusters = AgglomerativeClustering(n_clusters=None, distance_threshold=threshold, linkage="average")
    return int(clusters.fit(x).n_clusters_)


def evaluate(env, policy: Callable, pool: dict, strength: float, e: dict, height: float) -> dict:
    """Success rate (all, prone, supine), time to stand (s, successful episodes), mean and
    minimum return, strategies, over every state of ``pool`` at ``strength``."""
    hold = max(1, int(round(e["hold_s"] / env.dt)))
    rets, ok, t_up, feats = [], [], [], []
    for q, v in zip(pool["qpos"], pool["qvel"], strict=True):
        ep = rollout(env, policy, q, v, strength, e["steps"])
        t = stood(ep["head"], height, hold)
        rets.append(ep["return"])
        ok.append(t is not None)
        if t is not None:
            t_up.append(t * env.dt)
            feats.append(features(env, ep, t, hold, e["points"]))
    ok, prone = np.array(ok), pool["prone"]
    return {
        "success": float(ok.mean()),
        "success_prone": float(ok[prone].mean()) if prone.any() else 0.0,
        "success_supine": float(ok[~prone].mean()) if (~prone).any() else 0.0,
        # Episodes that never stand count as the full episode length.
        "time_to_stand": float(np.mean(t_up + [e["steps"] * env.dt] * int((~ok).sum()))),
        "return": float(np.mean(rets)),
        "min_return": float(np.min(rets)),
        "strategies": float(strategies(feats, e["cluster_threshold"])),
    }
