"""Stage 3: slow motion. The weak policy's get-up motions are the references; a reference slowed
by kappa in [kappa_min, kappa_max] is its cubic spline evaluated at kappa x time. A tracking
policy (PD targets, observing kappa and the next reference frame) is trained by SAC on an
imitation reward, starting episodes at a random phase of the reference with probability epsilon
(epsilon-RSI) and otherwise at the reference's fallen start."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import CubicSpline

from bench.tasks.getup.env import GetUpEnv
from bench.tasks.getup.evaluate import rollout, stood


def label(kappa: float) -> str:
    """A kappa as a metric-name suffix: 0.2 -> 0p2."""
    return f"{kappa:g}".replace(".", "p")


class Reference:
    """One motion (poses every ``dt``) as a cubic spline in time."""

    def __init__(self, qpos: np.ndarray, dt: float) -> None:
        self.duration = (len(qpos) - 1) * dt
        self.spline = CubicSpline(np.arange(len(qpos)) * dt, qpos, axis=0)
        self.velocity = self.spline.derivative()

    def warped(self, kappa: float, dt: float) -> tuple[np.ndarray, np.ndarray]:
        """(qpos, qvel) every ``dt`` of the motion played at ``kappa`` x its speed."""
        s = np.arange(int(np.floor(self.duration / (kappa * dt))) + 1) * kappa * dt
        return self.spline(s), kappa * self.velocity(s)


def collect(env: GetUpEnv, policy, pool: dict, strength: float, e: dict, height: float, n: int) -> list:
    """Up to ``n`` references: the weak policy's successful get-ups from the pool's first states,
    each cut ``hold_s`` after it stands."""
    hold = max(1, int(round(e["hold_s"] / env.dt)))
    refs = []
    for q, v in zip(pool["qpos"], pool["qvel"], strict=True):
        ep = rollout(env, policy, q, v, strength, e["steps"])
        t = stood(ep["head"], height, hold)
        if t is not None:
            refs.append(Reference(ep["qpos"][: t + hold + 1], env.dt))
        if len(refs) == n:
            break
    return refs


class Tracking:
    """The tracking task on a PD-mode env: ``reset(rng)`` / ``start(ref, kappa, phase)`` then
    ``step(action) -> (obs, reward, done)``."""

    def __init__(self, env: GetUpEnv, refs: list[Reference], t: dict, strength: float) -> None:
        self.env, self.refs, self.t, self.strength = env, refs, t, strength
        self.joints = env.act_q
        self.obs_dim = env.obs_dim + 2 + len(self.joints) + 2  # + kappa, phase, joint and root error

    def start(self, ref: Reference, kappa: float, phase: int) -> np.ndarray:
        self.kappa = kappa
        self.qref, vref = ref.warped(kappa, self.env.dt)
        self.k = phase
        self.env.reset(self.qref[phase], vref[phase], self.strength)
        return self.observe()

    def reset(self, rng: np.random.Generator) -> np.ndarray:
        ref = self.refs[rng.integers(len(self.refs))]
        kappa = rng.uniform(self.t["kappa_min"], self.t["kappa_max"])
        n = int(np.floor(ref.duration / (kappa * self.env.dt))) + 1
        phase = int(rng.integers(n - 1)) if rng.random() < self.t["rsi_eps"] else 0
        return self.start(ref, kappa, phase)

    def target(self) -> np.ndarray:
        return self.qref[min(self.k + 1, len(self.qref) - 1)]

    def root_error(self, q: np.ndarray, ref: np.ndarray) -> np.ndarray:
        """Height and heading/pitch error of the root (planar: z and pitch; 3-D: z and quat)."""
        if self.env.char.planar:
            return np.array([q[1] - ref[1], np.angle(np.exp(1j * (q[2] - ref[2])))])
        return np.array([q[2] - ref[2], 1 - abs(float(q[3:7] @ ref[3:7]))])

    def observe(self) -> np.ndarray:
        q, ref = self.env.data.qpos, self.target()
        extra = [
            [self.kappa, self.k / len(self.qref)],
            ref[self.joints] - q[self.joints],
            self.root_error(q, ref),
        ]
        return np.concatenate([self.env.observe(), *map(np.ravel, extra)]).astype(np.float32)

    def errors(self) -> tuple[float, float]:
        """(RMS joint-angle error in rad, root error norm) against the current reference frame."""
        q, ref = self.env.data.qpos, self.qref[min(self.k, len(self.qref) - 1)]
        return float(np.sqrt(np.mean((q[self.joints] - ref[self.joints]) ** 2))), float(
            np.linalg.norm(self.root_error(q, ref))
        )

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool]:
        self.env.step(action)
        self.k += 1
        joint, root = self.errors()
        r = float(np.exp(-self.t["joint_w"] * joint**2) * np.exp(-self.t["root_w"] * root**2))
        done = self.k >= len(self.qref) - 1
        return self.observe(), r, done


def evaluate_tracking(track: Tracking, policy, kappas: list[float], height: float, hold_s: float) -> dict:
    """Per kappa: mean RMS joint error along the motion, and success (stands at the end and holds,
    with the policy run ``hold_s`` past the reference's end), from each reference's fallen start."""
    out, hold = {}, max(1, int(round(hold_s / track.env.dt)))
    for kappa in kappas:
        errs, ok = [], []
        for ref in track.refs:
            obs, done, heads = track.start(ref, kappa, 0), False, []
            while not done:
                obs, _, done = track.step(policy(obs))
                errs.append(track.errors()[0])
                heads.append(track.env.head_height())
            for _ in range(hold):  # keep the final target and check the character stays up
                track.k = len(track.qref) - 1
                obs, _, _ = track.step(policy(obs))
                heads.append(track.env.head_height())
            ok.append(bool(np.all(np.array(heads[-hold:]) >= height)))
        out[f"track_err_k{label(kappa)}"] = float(np.mean(errs))
        out[f"track_success_k{label(kappa)}"] = float(np.mean(ok))
    return out
