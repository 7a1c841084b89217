"""Meta-strategy solvers of the agent-vs-adversary game: projected replicator dynamics (PRD, as in
OpenSpiel: an Euler step of the replicator equation, a probability floor, the iterates averaged)
and GiRL's R-PRD, whose adversary step is followed by a projection onto
``{p in simplex : ||p - p0||_1 <= eps}``; the exact worst case within eps; scipy's LP minimax.

The paper bounds the adversary by a threshold on its distance to the nominal task distribution;
we take the L1 distance (twice the total variation), for which the worst case has a closed form.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from bench.errors import BenchError


def project_simplex(x: np.ndarray, floor: float = 0.0) -> np.ndarray:
    """Euclidean projection onto ``{p : sum p = 1, p >= floor}`` (sort-based)."""
    n = len(x)
    mass = 1.0 - n * floor
    if mass < 0:
        raise BenchError(f"probability floor {floor} is impossible with {n} strategies: lower prd.floor")
    y = x - floor
    u = np.sort(y)[::-1]
    css = np.cumsum(u) - mass
    k = np.nonzero(u - css / np.arange(1, n + 1) > 0)[0][-1]
    return np.maximum(y - css[k] / (k + 1), 0.0) + floor


def project_l1_ball(x: np.ndarray, center: np.ndarray, radius: float) -> np.ndarray:
    """Euclidean projection onto ``{p : ||p - center||_1 <= radius}`` (Duchi et al. 2008)."""
    z = x - center
    if np.abs(z).sum() <= radius:
        return x.copy()
    if radius <= 0:
        return center.copy()
    a = np.abs(z)
    u = np.sort(a)[::-1]
    css = np.cumsum(u) - radius
    k = np.nonzero(u - css / np.arange(1, len(a) + 1) > 0)[0][-1]
    return center + np.sign(z) * np.maximum(a - css[k] / (k + 1), 0.0)


def project_ball_simplex(x: np.ndarray, p0: np.ndarray, eps: float, floor: float, iters: int) -> np.ndarray:
    """Projection onto simplex (with floor) ∩ L1 ball(p0, eps): Dykstra's alternating projections,
    then a final exact step: the simplex point is pulled toward p0 along the segment until it is
    within eps (a convex combination of two simplex points, so it stays in the simplex)."""
    y, pa, pb = x.astype(float), np.zeros_like(x, float), np.zeros_like(x, float)
    for _ in range(iters):
        a = project_simplex(y + pa, floor)
        pa = y + pa - a
        y = project_l1_ball(a + pb, p0, eps)
        pb = a + pb - y
    q = project_simplex(y, floor)
    d = np.abs(q - p0).sum()
    if d > eps:
        q = p0 + (eps / d) * (q - p0)
    return q


@dataclass
class Solution:
    """Meta-strategies of both players; ``iterates`` holds every adversary iterate of R-PRD."""

    agent: np.ndarray
    adversary: np.ndarray
    iterates: list[np.ndarray] = field(default_factory=list)


def r_prd(
    payoff: np.ndarray, p0: np.ndarray, eps: float, steps: int, dt: float, floor: float, dykstra: int
) -> Solution:
    """R-PRD on the zero-sum game ``payoff[i, j]`` = agent policy i's adapted return on task j,
    from a fresh start (agent uniform, adversary at p0).

    Step k: replicator step ``x += h_k * x * (u - x.u)`` for both players (the adversary's utility
    is minus the agent's), ``h_k = dt / sqrt(k + 1)``; the agent projected on the floored simplex,
    the adversary on the floored simplex ∩ eps-ball around ``p0``. The meta-strategies are the
    averages of the second half of the iterates (the first half is burn-in).

    Its rest points are not exactly the constrained game's equilibria: the replicator scales the
    adversary's step by ``y`` while the projection is Euclidean, so at the ball's boundary the mass
    is taken from all tasks in proportion rather than from the best ones (``lp_minimax`` is exact).
    """
    if payoff.shape[1] != len(p0):
        raise BenchError(f"payoff has {payoff.shape[1]} tasks but p0 has {len(p0)}")
    scale = max(float(np.ptp(payoff)), 1e-12)  # replicator speed independent of the return unit
    m = payoff / scale
    x = np.full(m.shape[0], 1.0 / m.shape[0])
    y = project_ball_simplex(p0, p0, eps, floor, dykstra)
    sx, sy, iterates, burn = np.zeros_like(x), np.zeros_like(y), [], steps // 2
    for k in range(steps):
        h = dt / np.sqrt(k + 1)
        ux, uy = m @ y, -(x @ m)
        x_new = project_simplex(x + h * x * (ux - x @ ux), floor / len(x))
        y = project_ball_simplex(y + h * y * (uy - y @ uy), p0, eps, floor, dykstra)
        x = x_new
        iterates.append(y)
        if k >= burn:
            sx, sy = sx + x, sy + y
    return Solution(sx / (steps - burn), sy / (steps - burn), iterates)


def nash_conv(payoff: np.ndarray, p0: np.ndarray, eps: float, sol: Solution) -> float:
    """How far ``sol`` is from an equilibrium, in units of the payoff range: the agent's best
    response to the adversary minus the adversary's best response (the worst case within eps)
    to the agent's mixture. Zero exactly at an equilibrium."""
    span = max(float(np.ptp(payoff)), 1e-12)
    return float(((payoff @ sol.adversary).max() - worst_case(sol.agent @ payoff, p0, eps)) / span)


def worst_case(returns: np.ndarray, p0: np.ndarray, eps: float) -> float:
    """``min {p.r : p in simplex, ||p - p0||_1 <= eps}`` in closed form: move eps/2 of mass from
    the best tasks onto the worst one."""
    order = np.argsort(returns)[::-1]
    p = p0.astype(float).copy()
    budget = min(eps / 2.0, 1.0 - p[order[-1]])
    for j in order[:-1]:
        take = min(budget, p[j])
        p[j] -= take
        p[order[-1]] += take
        budget -= take
        if budget <= 0:
            break
    return float(p @ returns)


def shift_toward(p0: np.ndarray, targets: np.ndarray, eps: float) -> np.ndarray:
    """``p0`` with ``eps / 2`` of its mass (L1 distance ``eps``) taken from the other tasks in
    proportion to their weights and spread evenly over ``targets``: a fixed reweighting of the
    nominal distribution toward chosen tasks, the kind of shift the adversary makes."""
    p = p0.astype(float).copy()
    others = np.setdiff1d(np.arange(len(p)), targets)
    mass = p[others].sum()
    if len(targets) == 0 or mass <= 0:
        return p
    take = min(eps / 2.0, mass)
    p[others] *= 1.0 - take / mass
    p[targets] += take / len(targets)
    return p


def lp_minimax(payoff: np.ndarray, p0: np.ndarray, eps: float) -> Solution:
    """The eps-constrained game solved exactly: the adversary's ``min_{p in ball} max_i (payoff p)_i``
    by scipy's LP (variables p, |p - p0| bounds d, value t); the agent's maximin mixture is the LP's
    dual on the payoff rows."""
    n_pol, n = payoff.shape
    c = np.r_[np.zeros(2 * n), 1.0]
    eye = np.eye(n)
    a_ub = np.block(
        [
            [payoff, np.zeros((n_pol, n)), -np.ones((n_pol, 1))],
            [eye, -eye, np.zeros((n, 1))],
            [-eye, -eye, np.zeros((n, 1))],
            [np.zeros((1, n)), np.ones((1, n)), np.zeros((1, 1))],
        ]
    )
    b_ub = np.r_[np.zeros(n_pol), p0, -p0, eps]
    a_eq = np.r_[np.ones(n), np.zeros(n), 0.0][None]
    bounds = [(0, None)] * (2 * n) + [(None, None)]
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=[1.0], bounds=bounds, method="highs")
    if not res.success:
        raise BenchError(f"the minimax LP failed: {res.message}")
    agent = np.maximum(-res.ineqlin.marginals[:n_pol], 0.0)
    p = np.clip(res.x[:n], 0.0, None)
    return Solution(agent / agent.sum(), p / p.sum())
