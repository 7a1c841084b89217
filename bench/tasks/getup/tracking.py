"""Stage 3: slow motion, as the official ``HumanoidStandupVelocityEnv``.

References are the weak policy's get-ups at the reached strength, each from a fallen start until
one step after the head first reaches the stand height. A reference slowed by kappa in
[kappa_min, kappa_max] is its cubic spline at kappa x time (velocities x kappa). The tracking
policy runs at full strength and outputs a residual (rad) on PD targets: the reference's joint
angles while it plays (kd ``pd.kd``), then the standing pose for ``stand_steps`` more steps (kd
``pd.kd_stand``). It observes the target pose (joint angles, centre-of-mass height, torso
orientation) now and 5 steps ahead. Reward while tracking: leg speed x centre-of-mass height x
torso orientation tolerances; after it: upright x still x exp(-10 com error^2) x
exp(-pose error / 4). An episode ends early (terminal) when the centre of mass leaves the
reference's height by more than ``com_tol``, or drops below ``upright_com`` after the reference.
epsilon-RSI: a training episode starts at a random phase with probability ``rsi_eps``.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from bench.tasks.getup.env import GetUpEnv, tolerance

LOOKAHEAD = 5  # the official second target pose, 5 steps ahead


def label(kappa: float) -> str:
    """A kappa as a metric-name suffix: 0.2 -> 0p2."""
    return f"{kappa:g}".replace(".", "p")


class Reference:
    """One recorded motion (``qpos``, ``qvel``, ``com``, ``ori`` every ``dt``) as cubic splines."""

    def __init__(self, frames: dict[str, np.ndarray], dt: float) -> None:
        t = np.arange(len(frames["qpos"])) * dt
        self.duration = t[-1]
        self.splines = {k: CubicSpline(t, v, axis=0) for k, v in frames.items()}

    def length(self, kappa: float, dt: float) -> int:
        """Frames of the motion played at ``kappa`` x its speed, every ``dt``."""
        return int(np.floor(self.duration / (kappa * dt) + 1e-9)) + 1

    def warped(self, kappa: float, dt: float) -> dict[str, np.ndarray]:
        """The motion played at ``kappa`` x its speed, every ``dt``."""
        s = np.arange(self.length(kappa, dt)) * kappa * dt
        out = {k: f(s) for k, f in self.splines.items()}
        out["qvel"] = kappa * out["qvel"]
        return out


def record(env: GetUpEnv, policy, qpos, qvel, strength: float, steps: int, height: float) -> dict | None:
    """The policy's get-up from one fallen state, cut one step after the head first reaches
    ``height``; None when it does not within ``steps``."""
    obs = env.reset(qpos, qvel, strength)
    frames: dict[str, list] = {"qpos": [], "qvel": [], "com": [], "ori": []}
    end = None
    for i in range(steps):
        now = (env.data.qpos, env.data.qvel, [env.com_height()], env.orientation())
        for k, v in zip(frames, now, strict=True):
            frames[k].append(np.array(v, dtype=np.float64))
        if i == end:
            return {k: np.stack(v) for k, v in frames.items()}
        if end is None and env.head_height() >= height:
            end = i + 1
        obs, _ = env.step(policy(obs))
    return None


def collect(env: GetUpEnv, policy, pool: dict, strength: float, steps: int, height: float, n: int) -> list:
    """Up to ``n`` references from the pool's states, in order."""
    refs = []
    for q, v in zip(pool["qpos"], pool["qvel"], strict=True):
        frames = record(env, policy, q, v, strength, steps, height)
        if frames is not None:
            refs.append(Reference(frames, env.dt))
        if len(refs) == n:
            break
    return refs


class Tracking:
    """The slow-motion task on a PD-mode env at full strength: ``reset(rng)`` or
    ``start(ref, kappa, phase)``, then ``step(action) -> (obs, reward, terminal, end)``."""

    def __init__(self, env: GetUpEnv, refs: list[Reference], t: dict, pd: dict, stand_com: float) -> None:
        self.env, self.refs, self.t, self.pd, self.stand_com = env, refs, t, pd, stand_com
        self.joints = env.act_q
        self.standing = env.model.qpos0[self.joints].copy()  # the model's standing pose
        self.obs_dim = env.obs_dim + 2 * (len(self.joints) + 4)

    def start(self, ref: Reference, kappa: float, phase: int) -> np.ndarray:
        self.ref, self.kappa, self.k = ref.warped(kappa, self.env.dt), kappa, phase
        self.length = len(self.ref["qpos"])
        self.env.reset(self.ref["qpos"][phase], self.ref["qvel"][phase], 1.0)
        self.env.set_kd(self.pd["kd"])
        return self.observe()

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        ref = self.refs[rng.integers(len(self.refs))]
        kappa = rng.uniform(self.t["kappa_min"], self.t["kappa_max"])
        n = ref.length(kappa, self.env.dt)
        return self.start(ref, kappa, int(rng.integers(n)) if rng.random() < self.t["rsi_eps"] else 0)

    def target(self, i: int) -> np.ndarray:
        """The target pose at step ``i``: joint angles, centre-of-mass height, torso orientation."""
        if i >= self.length:
            return np.concatenate([self.standing, [self.stand_com], [0.0, 0.0, 1.0]])
        r = self.ref
        return np.concatenate([r["qpos"][i][self.joints], r["com"][i], r["ori"][i]])

    def observe(self) -> np.ndarray:
        targets = [self.target(self.k), self.target(self.k + LOOKAHEAD)]
        return np.concatenate([self.env.observe(), *targets]).astype(np.float32)

    def reward(self, k: int) -> float:
        env, t = self.env, self.t
        q, qv, com = env.data.qpos, env.data.qvel, env.com_height()
        if k < self.length:
            legs = qv[env.hips] - self.ref["qvel"][k][env.hips]
            speed = (2 + tolerance(legs, -0.5, 0.5, 1.3).mean()) / 3
            height = tolerance(self.ref["com"][k][0] - com, 0.0, 0.0, t["com_tol"])
            ori = tolerance(self.ref["ori"][k] - env.orientation(), -0.02, 0.02, 0.6, at_margin=0.3).prod()
            return float(speed * height * ori)
        pose = ((self.standing - q[self.joints]) ** 2).sum() / 4
        still = tolerance(env.com_velocity(), 0.0, 0.0, 1.2).mean()
        return float(env.upright_term() * still * np.exp(-10 * (self.stand_com - com) ** 2) * np.exp(-pose))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        k, residual = self.k, np.clip(action, -1.0, 1.0) * self.t["residual"]
        if k == self.length:
            self.env.set_kd(self.pd["kd_stand"])
        base = self.ref["qpos"][k][self.joints] if k < self.length else self.standing
        self.env.step(base + residual)
        r, com = self.reward(k), self.env.com_height()
        if k < self.length:
            terminal = abs(com - self.ref["com"][k][0]) > self.t["com_tol"]
        else:
            terminal = com < self.env.d["reward"]["upright_com"]
        self.k += 1
        end = terminal or self.k >= self.length + self.t["stand_steps"]
        return self.observe(), r, terminal, end


def evaluate_tracking(track: Tracking, policy, kappas: list, height: float, prefix: str = "track") -> dict:
    """Per kappa, from each reference's fallen start: mean RMS joint error along the reference
    (rad), and success: the whole episode without early termination (tracked, then stayed up for
    ``stand_steps``) with the head at the stand height at its end."""
    out = {}
    for kappa in kappas:
        errs, ok = [], []
        for ref in track.refs:
            obs, end, terminal = track.start(ref, kappa, 0), False, False
            while not end:
                k = track.k
                obs, _, terminal, end = track.step(policy(obs))
                if k < track.length:
                    err = track.env.data.qpos[track.joints] - track.ref["qpos"][k][track.joints]
                    errs.append(float(np.sqrt(np.mean(err**2))))
            ok.append(not terminal and track.env.head_height() >= height)
        out[f"{prefix}_err_k{label(kappa)}"] = float(np.mean(errs))
        out[f"{prefix}_success_k{label(kappa)}"] = float(np.mean(ok))
    return out
