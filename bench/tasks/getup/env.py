"""The get-up environment on MuJoCo (gymnasium's assets, stepped with ``mujoco`` directly).

Two characters: ``humanoid`` (gymnasium's 3-D ``humanoid.xml``, the paper preset) and ``walker``
(gymnasium's planar ``walker2d_v5.xml``, the cpu preset). Episodes start from fallen states
(``fallen.py``). An action lasts ``frame_skip`` physics steps of ``timestep`` (0.025 s, dm_control's
control step, as the official code). In ``torque`` mode the action is the fraction of each motor's
full control, bounded by the strength (the official actor's ``tanh x power``; anything outside is
clipped): control ``action * ctrl_max``. In ``pd`` mode (stage 3) the action is the target joint
angles (rad), tracked by MuJoCo PD servos as the official ``substep``: kp 1 and kd 0.1 in control
units (a unit is the motor's full control, ``gear x ctrl_max`` of torque), capped at ``strength``
units. The strength is the observation's last entry.

Reward (the official code's ``_reward``, dm_control's ``tolerance`` written out): the product of
standing (head height >= ``stand_height``, long-tail, 0.2 at a margin of stand_height/4), upright
(1 while the centre of mass is below ``upright_com``, else torso z . up >= 0.9, linear, margin 1.9),
still (horizontal centre-of-mass speed <= 0.3, gaussian, margin 1.2) and feet close (horizontal
gap <= ``feet``, quadratic, 0 at ``feet_margin`` beyond). Maximum 1 per step.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from bench.errors import BenchError


@dataclass(frozen=True)
class Character:
    """Where a character's parts are in its model; ``head`` is a point in the torso's frame."""

    xml: str
    planar: bool
    torso: str
    head: tuple[float, float, float]
    feet: tuple[str, str]
    hips: tuple[str, str]  # the hip flexion joints whose speeds stage 3's reward tracks
    ends: tuple[str, ...] = ()  # the hand and foot geoms of a 3-D character's observation


CHARACTERS = {
    "walker": Character(
        "walker2d_v5.xml",
        True,
        "torso",
        (0.0, 0.0, 0.2),
        ("foot", "foot_left"),
        hips=("thigh_joint", "thigh_left_joint"),
    ),
    "humanoid": Character(
        "humanoid.xml",
        False,
        "torso",
        (0.0, 0.0, 0.19),
        ("right_foot", "left_foot"),
        hips=("right_hip_y", "left_hip_y"),
        ends=("left_hand", "left_foot", "right_hand", "right_foot"),
    ),
}


def tolerance(x, lo: float, hi: float, margin: float, sigmoid: str = "gaussian", at_margin: float = 0.1):
    """1 inside [lo, hi], falling off with the distance outside over ``margin`` to ``at_margin``
    there (dm_control's ``rewards.tolerance`` for the sigmoids the official reward uses, written
    out: dm_control is not a dependency)."""
    x = np.asarray(x, dtype=np.float64)
    d = np.where(x < lo, lo - x, np.where(x > hi, x - hi, 0.0)) / margin
    if sigmoid == "gaussian":
        out = np.exp(np.log(at_margin) * d**2)
    elif sigmoid == "long_tail":
        out = 1 / ((d * np.sqrt(1 / at_margin - 1)) ** 2 + 1)
    elif sigmoid == "linear":
        out = np.clip(1 - (1 - at_margin) * d, 0.0, 1.0)
    elif sigmoid == "quadratic":
        u = d * np.sqrt(1 - at_margin)
        out = np.where(u < 1, 1 - u**2, 0.0)
    else:
        raise ValueError(sigmoid)
    return np.where(d == 0, 1.0, out)


def require_mujoco():
    try:
        import mujoco
    except ImportError:
        raise BenchError("getup needs MuJoCo: pip install 'gymnasium[mujoco]'") from None
    return mujoco


def asset_path(name: str) -> str:
    require_mujoco()
    import gymnasium

    return os.path.join(os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", name)


class GetUpEnv:
    """One character; ``reset(qpos, qvel, strength)`` then ``step(action)`` -> (obs, reward)."""

    def __init__(self, d: dict, mode: str = "torque") -> None:
        if d["character"] not in CHARACTERS:
            raise BenchError(f"unknown data.character {d['character']!r}: choose {sorted(CHARACTERS)}")
        if mode not in ("torque", "pd"):
            raise BenchError(f"unknown action mode {mode!r}: torque or pd")
        mj = self.mj = require_mujoco()
        self.char = c = CHARACTERS[d["character"]]
        self.d, self.mode = d, mode
        self.model = mj.MjModel.from_xml_path(asset_path(c.xml))
        self.data = mj.MjData(self.model)
        self.model.opt.timestep = d["timestep"]
        self.frame_skip = d["frame_skip"]
        self.dt = self.model.opt.timestep * self.frame_skip
        m = self.model
        self.torso = mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, c.torso)
        self.feet = [mj.mj_name2id(m, mj.mjtObj.mjOBJ_BODY, f) for f in c.feet]
        self.hips = m.jnt_dofadr[[mj.mj_name2id(m, mj.mjtObj.mjOBJ_JOINT, j) for j in c.hips]]
        self.ends = [mj.mj_name2id(m, mj.mjtObj.mjOBJ_GEOM, g) for g in c.ends]
        self.root_q = 3 if c.planar else 7  # generalized coordinates of the root
        self.root_v = 3 if c.planar else 6
        jnt = m.actuator_trnid[:, 0]
        self.act_q = m.jnt_qposadr[jnt]
        self.act_v = m.jnt_dofadr[jnt]
        self.ctrl_max = m.actuator_ctrlrange[:, 1].copy()
        self.lo, self.hi = m.jnt_range[jnt, 0].copy(), m.jnt_range[jnt, 1].copy()
        self.act_dim = m.nu
        if mode == "pd":
            # PD servos at every physics step in control units, torque = gear ctrl_max (kp (target
            # - q) - kd qdot) capped at the strength-scaled maximum; the gear moved into the gains so
            # ctrl is an angle.
            self.gear, pd = m.actuator_gear[:, 0] * self.ctrl_max, d["pd"]
            self.force_max = self.gear.copy()
            m.actuator_gear[:, 0] = 1.0
            m.actuator_gaintype[:] = mj.mjtGain.mjGAIN_FIXED
            m.actuator_biastype[:] = mj.mjtBias.mjBIAS_AFFINE
            m.actuator_gainprm[:, 0] = pd["kp"] * self.gear
            m.actuator_biasprm[:, 0] = 0.0
            m.actuator_biasprm[:, 1] = -pd["kp"] * self.gear
            self.set_kd(pd["kd"])
            m.actuator_ctrllimited[:] = 0
            m.actuator_forcelimited[:] = 1
        self.strength = 1.0
        self.obs_dim = len(self.observe())

    def __getstate__(self) -> dict:
        """Everything but the ``mujoco`` module, so a method's checkpoint holds the simulator."""
        return {k: v for k, v in vars(self).items() if k != "mj"}

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state, mj=require_mujoco())

    def set_kd(self, kd: float) -> None:
        """The PD servos' damping (control units per rad/s; pd mode)."""
        self.model.actuator_biasprm[:, 2] = -kd * self.gear

    # --- state -----------------------------------------------------------------------------
    def set_state(self, qpos: np.ndarray, qvel: np.ndarray) -> None:
        self.data.qpos[:], self.data.qvel[:] = qpos, qvel
        self.data.ctrl[:] = 0.0
        self.mj.mj_forward(self.model, self.data)

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        return self.data.qpos.copy(), self.data.qvel.copy()

    def head_height(self) -> float:
        x = self.data.xpos[self.torso] + self.data.xmat[self.torso].reshape(3, 3) @ self.char.head
        return float(x[2])

    def upright(self) -> float:
        return float(self.data.xmat[self.torso][8])  # torso z-axis . world z

    def orientation(self) -> np.ndarray:
        """The world's vertical in the torso's frame (dm_control's torso_vertical_orientation)."""
        return self.data.xmat[self.torso][6:9].copy()

    def prone(self) -> bool:
        """Facing the floor: the torso's forward (x) axis points down."""
        return bool(self.data.xmat[self.torso][6] < 0)

    def extremities(self) -> np.ndarray:
        """Hands and feet relative to the torso, in the torso's frame (dm_control's extremities)."""
        frame = self.data.xmat[self.torso].reshape(3, 3)
        return ((self.data.geom_xpos[self.ends] - self.data.xpos[self.torso]) @ frame).ravel()

    def observe(self) -> np.ndarray:
        q, v = self.data.qpos, self.data.qvel
        # Planar: drop x, the pitch as cos/sin. 3-D: the root's height, the world's vertical in the
        # torso's frame and the extremities, free of the heading (dm_control's humanoid).
        if self.char.planar:
            root = [q[1:2], np.cos(q[2:3]), np.sin(q[2:3])]
        else:
            root = [q[2:3], self.orientation(), self.extremities()]
        joints = q[self.root_q :]
        return np.concatenate(
            [*root, joints, np.clip(v, -10, 10) / 10, [self.head_height(), self.upright(), self.strength]]
        ).astype(np.float32)

    # --- dynamics --------------------------------------------------------------------------
    def reset(self, qpos: np.ndarray, qvel: np.ndarray, strength: float) -> np.ndarray:
        self.strength = float(strength)
        if self.mode == "pd":
            f = self.strength * self.force_max
            self.model.actuator_forcerange[:] = np.stack([-f, f], 1)
        self.set_state(qpos, qvel)
        return self.observe()

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        """torque mode: ``action`` in [-strength, strength]; pd mode: target joint angles (rad)."""
        if self.mode == "torque":
            self.data.ctrl[:] = np.clip(action, -self.strength, self.strength) * self.ctrl_max
        else:
            self.data.ctrl[:] = action
        self.mj.mj_step(self.model, self.data, nstep=self.frame_skip)
        return self.observe(), self.reward()

    def com_height(self) -> float:
        return float(self.data.subtree_com[1][2])  # body 1: the root's subtree, the whole character

    def com_velocity(self) -> np.ndarray:
        """The centre of mass's horizontal velocity (x; x and y in 3-D)."""
        self.mj.mj_subtreeVel(self.model, self.data)
        return self.data.subtree_linvel[1][: 1 if self.char.planar else 2].copy()

    def upright_term(self) -> float:
        """1 while the centre of mass is below ``upright_com``, else torso z . up >= 0.9, linear."""
        r = self.d["reward"]
        if self.com_height() < r["upright_com"]:
            return 1.0
        return float(tolerance(self.upright(), r["upright"], np.inf, 1 + r["upright"], "linear", 0.0))

    def reward(self) -> float:
        """The official reward: upright x standing x still x feet close."""
        r = self.d["reward"]
        vel = self.com_velocity()
        feet = self.data.xpos[self.feet[0]] - self.data.xpos[self.feet[1]]
        gap = abs(feet[0]) if self.char.planar else float(np.linalg.norm(feet[:2]))
        h = self.d["stand_height"]
        standing = tolerance(self.head_height(), h, np.inf, h / 4, "long_tail", r["stand_at_margin"])
        upright = self.upright_term()
        still = tolerance(vel, -r["speed"], r["speed"], r["speed_margin"]).mean()
        close = tolerance(gap, 0.0, r["feet"], r["feet_margin"], "quadratic", 0.0)
        return float(upright * standing * still * close)

    def random_action(self, rng: np.random.Generator) -> np.ndarray:
        """The official warm-up action: uniform in [-1, 1], clipped to the strength."""
        a = rng.uniform(-1, 1, self.act_dim)
        return np.clip(a, -self.strength, self.strength).astype(np.float32)
