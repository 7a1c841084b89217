"""The three methods as one loop method (SAC): each ``step`` runs ``optim.tick`` environment
steps, with one SAC update every ``optim.update_every`` of them once the buffer holds
``optim.start_steps`` transitions. The replay buffers live in the method (``model.Replay``); every
random draw of training comes from the method's own seeded generators, so a checkpoint of the
method is the whole state of the run.

Phases (``methods.<name>.phases``): ``strong`` (stage 1 at full strength; a shared stage cached per
seed, so ``staged`` reuses ``strong_only``'s policy and buffer), ``curriculum`` (stage 2; the
strength it reaches is a shared stage too), ``track`` (stage 3, a second SAC agent on residual PD
targets at full strength) and ``scratch`` (a fresh agent, seeded as stage 1's, trained for the
whole stage-1+2 budget at the strength the phases before it reached: after ``strong`` and
``curriculum``, the seed's curriculum end, read from the cache when the seed's ``staged`` run built
it, else reached here first; as the only phase, at the method's fixed ``strength``).
"""

from __future__ import annotations

import json

import numpy as np
import torch
import torch.nn.functional as F

from bench.artifacts import cached, find
from bench.errors import BenchError
from bench.method import LoopMethod
from bench.tasks.getup import render
from bench.tasks.getup.curriculum import Curriculum
from bench.tasks.getup.env import GetUpEnv
from bench.tasks.getup.evaluate import evaluate
from bench.tasks.getup.model import Agent, Replay
from bench.tasks.getup.tracking import Tracking, collect, evaluate_tracking

PHASES = ("strong", "curriculum", "track", "scratch")
STAGE1_VERSION = 4  # in the stage-1 artifact's address: raised when what a config's stage 1 holds changes
REACHED_VERSION = 2


class GetUpMethod(LoopMethod):
    def __init__(self, cfg: dict, phases: list[str], strength: float = 1.0) -> None:
        super().__init__(cfg)
        self.phases, self.strength = list(phases), float(strength)
        if not self.phases or any(p not in PHASES for p in self.phases):
            raise BenchError(f"methods.{cfg['method']}.phases={self.phases}: choose from {PHASES}")
        if not 0 < self.strength <= 1 or (self.strength < 1 and self.phases != ["scratch"]):
            raise BenchError(
                f"methods.{cfg['method']}.strength={strength}: in (0, 1], below 1 only with phases [scratch]"
            )
        c, o = cfg["curriculum"], cfg["optim"]
        if not 0 < c["floor"] <= 1 or not 0 < c["decay"] < 1:
            raise BenchError(f"curriculum.floor={c['floor']} must be in (0, 1], decay={c['decay']} in (0, 1)")
        if o["batch_size"] > o["buffer"] or o["start_steps"] < o["batch_size"]:
            raise BenchError("optim: need batch_size <= start_steps and batch_size <= buffer")
        if o["update_every"] < 1:
            raise BenchError(f"optim.update_every={o['update_every']} must be >= 1")
        if c["gate"] not in ("mean", "min"):
            raise BenchError(f"curriculum.gate={c['gate']!r}: mean or min (the official --avg_reward)")
        self.info: dict[str, float] = {}

    # --- building -------------------------------------------------------------------------
    def setup(self, datamodule) -> None:
        """``build``, then go straight to the ``scratch`` phase from the seed's cached curriculum end,
        or else continue from the cached stage 1 of this config and seed, if any."""
        self.build(datamodule)
        if self.phases[:3] == ["strong", "curriculum", "scratch"] and self.load_reached():
            return
        if self.phases[0] == "strong":
            self.load_stage1()

    def build(self, datamodule) -> None:
        """The agents, buffers, optimizers and seeded generators of a run from its start."""
        self.env: GetUpEnv = datamodule.env
        self.train_pool, self.test_pool = datamodule.train_pool, datamodule.test_pool
        self.fresh_agent(self.strength)
        if "track" in self.phases:
            o = self.cfg["optim"]
            self.pd_env = GetUpEnv(self.cfg["data"], "pd")
            t_dim = self.tracking([]).obs_dim
            with torch.random.fork_rng():  # stage 1 (a shared artifact) must not depend on this
                torch.manual_seed(self.cfg["seed"] + 1)
                self.track_agent = Agent(t_dim, self.env.act_dim, self.cfg["model"], False).to(self.device)
            self.track_replay = Replay(t_dim, self.env.act_dim, o["buffer"]).to(self.device)
            self.track_opts = self.optimizers(self.track_agent)
            self.track_log: list[tuple[float, int]] = []  # (return, length) of each training episode
        self.phase, self.t_phase, self.obs = 0, 0, None
        self.phase_end = 0  # the step at which the current phase ends (``step`` sets it)
        self.t_track = 0

    def fresh_agent(self, strength: float) -> None:
        """A new agent, buffer, optimizers and generators, seeded by the run's seed alone (so a
        from-scratch agent starts as stage 1's did), and a curriculum at ``strength``: floor
        ``curriculum.floor`` below full strength, else fixed there."""
        o, c, seed = self.cfg["optim"], self.cfg["curriculum"], self.cfg["seed"]
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.agent = Agent(self.env.obs_dim, self.env.act_dim, self.cfg["model"], True).to(self.device)
        self.replay = Replay(self.env.obs_dim, self.env.act_dim, o["buffer"]).to(self.device)
        self.opts = self.optimizers(self.agent)
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(seed)
        floor = c["floor"] if strength == 1.0 else strength
        self.cur = Curriculum(
            strength, floor, c["threshold"], c["decay"], c["stall_min"], c["stall_max"], c["stall_factor"]
        )
        self.t, self.updates = 0, 0

    def optimizers(self, agent: Agent) -> list[torch.optim.Optimizer]:
        """Adam for the actor, the critic and the temperature, in that order."""
        o = self.cfg["optim"]
        return [
            torch.optim.Adam(p, lr=lr, fused=True)
            for p, lr in (
                (agent.actor.parameters(), o["actor_lr"]),
                (agent.critic.parameters(), o["critic_lr"]),
                ([agent.log_alpha], o["alpha_lr"]),
            )
        ]

    def budget(self, phase: str) -> int:
        s = self.cfg["steps"]
        return {
            "strong": s["stage1"],
            "curriculum": s["stage2"],
            "track": s["stage3"],
            "scratch": s["stage1"] + s["stage2"],
        }[phase]

    # --- stage 1 as a shared artifact ------------------------------------------------------
    def stage1_config(self) -> dict:
        keys = ("data", "model", "optim", "strength_std", "seed")
        return {k: self.cfg[k] for k in keys} | {"steps": self.cfg["steps"]["stage1"]}

    def load_stage1(self) -> None:
        """Continue from the cached stage 1 of this config and seed, when another run built it:
        with its generators' states too, so the run goes on as the one that built it did."""
        folder = find("getup", "stage1", self.stage1_config(), STAGE1_VERSION)
        if folder is None:
            return
        saved = torch.load(folder / "stage1.pt", weights_only=True, map_location=self.device)
        self.agent.load_state_dict(saved["agent"])
        self.replay.load_state_dict(saved["replay"])
        for opt, state in zip(self.opts, saved["optim"], strict=True):
            opt.load_state_dict(state)
        self.t, self.updates = saved["t"], saved["updates"]
        self.rng.bit_generator.state = json.loads(saved["rng"])
        self.gen.set_state(saved["gen"])
        self.info["stage1_success"] = saved["success"]
        self.next_phase()

    def save_stage1(self) -> None:
        success = self.evaluate(1.0)["success"]
        state = {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "optim": [o.state_dict() for o in self.opts],
            "t": self.t,
            "updates": self.updates,
            "success": success,
            "rng": json.dumps(self.rng.bit_generator.state),
            "gen": self.gen.get_state(),
        }
        cached(
            "getup",
            "stage1",
            self.stage1_config(),
            lambda folder: torch.save(state, folder / "stage1.pt"),
            STAGE1_VERSION,
        )
        self.info["stage1_success"] = success

    # --- the strength stage 2 reaches, as a shared artifact ----------------------------------
    def reached_config(self) -> dict:
        keys = ("curriculum", "eval", "strength_std")
        return self.stage1_config() | {k: self.cfg[k] for k in keys} | {"stage2": self.cfg["steps"]["stage2"]}

    def save_reached(self) -> None:
        """The curriculum's end (strength and gate log) for this config and seed; a run that finds
        it already there (another run of the seed built it) takes the saved one: the same end
        wherever training is deterministic, else (another machine or thread count) the first run's,
        so a seed's ``staged`` and ``weak_from_scratch`` always share one strength."""
        h = self.cur.history
        state = {
            "strength": self.cur.strength,
            "gates": len(h),
            "gates_passed": sum(g > self.cur.threshold for _, g, _ in h),
            "stalled": self.cur.stalled,
        }
        folder = cached(
            "getup",
            "reached",
            self.reached_config(),
            lambda f: (f / "reached.json").write_text(json.dumps(state)),
            REACHED_VERSION,
        )
        self.reached = json.loads((folder / "reached.json").read_text())
        self.cur.strength = self.reached["strength"]

    def load_reached(self) -> bool:
        """Go straight to the ``scratch`` phase when the seed's curriculum end is cached."""
        folder = find("getup", "reached", self.reached_config(), REACHED_VERSION)
        if folder is None:
            return False
        self.reached = json.loads((folder / "reached.json").read_text())
        self.phase, self.t_phase, self.obs = self.phases.index("scratch"), 0, None
        self.start_scratch()
        return True

    def start_scratch(self) -> None:
        """The ``scratch`` phase's fresh agent, at the curriculum's end if there was one; what the
        phases before it measured is not this agent's."""
        self.fresh_agent(self.reached["strength"] if "curriculum" in self.phases else self.strength)
        self.info.clear()

    # --- training --------------------------------------------------------------------------
    def next_phase(self) -> None:
        done = self.phases[self.phase]
        self.phase, self.t_phase, self.obs = self.phase + 1, 0, None
        if done == "curriculum":
            self.cur.active = False
            self.save_reached()
        following = self.phases[self.phase] if self.phase < len(self.phases) else None
        if following == "curriculum":
            self.cur.start = self.t
        if following == "track":
            self.start_tracking()
        if following == "scratch":
            self.start_scratch()

    def step(self) -> bool:
        """``optim.tick`` environment steps of the current phase (fewer at its end); done after
        the last phase (at once when stage 1 came from the cache and is the only phase)."""
        if self.phase < len(self.phases):
            name = self.phases[self.phase]
            n = min(self.cfg["optim"]["tick"], self.budget(name) - self.t_phase)
            self.phase_end = self.t + self.budget(name) - self.t_phase
            track = name == "track" and bool(self.track.refs)
            for _ in range(n if name != "track" or track else 0):
                self.track_step() if track else self.env_step(name)
            self.t_phase += n
            if self.t_phase >= self.budget(name):
                if name == "strong":
                    self.save_stage1()
                self.next_phase()
        return self.phase == len(self.phases)

    def env_step(self, phase: str) -> None:
        o, c = self.cfg["optim"], self.cfg["curriculum"]
        if self.obs is None or self.ep_t >= o["horizon"]:
            pool = self.train_pool
            i = self.rng.integers(len(pool["qpos"]))
            self.obs = self.env.reset(
                pool["qpos"][i], pool["qvel"][i], self.cur.sample(self.rng, self.cfg["strength_std"])
            )
            self.ep_t = 0
        if len(self.replay) < o["start_steps"]:
            a = self.env.random_action(self.rng)
        else:
            a = self.agent.act(self.obs, self.gen)
        nxt, r = self.env.step(a)
        self.replay.add(self.obs, a, r, nxt)
        self.obs, self.ep_t, self.t = nxt, self.ep_t + 1, self.t + 1
        if len(self.replay) >= o["start_steps"] and self.t % o["update_every"] == 0:
            self.sac_update(self.agent, self.replay, self.opts, o["gamma"])
        # No gate on the phase's last step: a pass there would lower the strength with no training at it.
        due = self.t % c["interval"] == 0 and self.t < self.phase_end
        if phase == "curriculum" and self.cur.active and due:
            gate = {k: v[: c["test_states"]] for k, v in self.train_pool.items()}
            res = evaluate(
                self.env, self.policy(self.agent), gate, self.cur.strength, self.cfg["eval"], self.height
            )
            self.cur.update(res["return" if c["gate"] == "mean" else "min_return"], self.t)
            self.obs = None  # the evaluation moved the simulator: start a new episode

    @property
    def height(self) -> float:
        return self.cfg["data"]["stand_height"]

    def sac_update(
        self, agent: Agent, replay: Replay, opts: list[torch.optim.Optimizer], gamma: float
    ) -> None:
        """One SAC update: twin-Q critic to the soft target (none past a terminal), actor,
        temperature (the official loss on alpha itself, not its log), Polyak target."""
        o = self.cfg["optim"]
        obs, act, rew, nxt, terminal = replay.sample(o["batch_size"], self.gen)
        opt_actor, opt_critic, opt_alpha = opts
        alpha = agent.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = agent.actor(nxt, self.gen)
            y = rew + gamma * (1 - terminal) * (torch.min(*agent.target(nxt, a2)) - alpha * logp2)
        q1, q2 = agent.critic(obs, act)
        opt_critic.zero_grad()
        (F.mse_loss(q1, y) + F.mse_loss(q2, y)).backward()
        opt_critic.step()
        a, logp = agent.actor(obs, self.gen)
        opt_actor.zero_grad()
        (alpha * logp - torch.min(*agent.critic(obs, a))).mean().backward()
        opt_actor.step()
        opt_alpha.zero_grad()
        agent.temperature_loss(logp).backward()
        opt_alpha.step()
        with torch.no_grad():
            torch._foreach_lerp_(list(agent.target.parameters()), list(agent.critic.parameters()), o["tau"])
        self.updates += 1

    # --- stage 3 ---------------------------------------------------------------------------
    def tracking(self, refs: list) -> Tracking:
        t, d = self.cfg["tracking"], self.cfg["data"]
        return Tracking(self.pd_env, refs, t, d["pd"], t["stand_com"])

    def references(self, pool: dict) -> list:
        """The weak policy's get-ups at the reached strength from ``pool``'s states."""
        e, n = self.cfg["eval"], self.cfg["tracking"]["references"]
        return collect(self.env, self.policy(self.agent), pool, self.cur.strength, e["steps"], self.height, n)

    def start_tracking(self) -> None:
        self.track = self.tracking(self.references(self.train_pool))
        self.info["track_refs"] = float(len(self.track.refs))

    def track_step(self) -> None:
        o = self.cfg["optim"]
        if self.obs is None or self.done:
            self.obs, self.done = self.track.reset(self.rng), False
            self.track_log.append((0.0, 0))
        if len(self.track_replay) < o["start_steps"]:
            a = self.pd_env.random_action(self.rng)
        else:
            a = self.track_agent.act(self.obs, self.gen)
        nxt, r, terminal, self.done = self.track.step(a)
        ret, length = self.track_log[-1]
        self.track_log[-1] = (ret + r, length + 1)
        self.track_replay.add(self.obs, a, r, nxt, terminal)
        self.obs, self.t_track = nxt, self.t_track + 1
        if len(self.track_replay) >= o["start_steps"] and self.t_track % o["update_every"] == 0:
            gamma = self.cfg["tracking"]["gamma"]
            self.sac_update(self.track_agent, self.track_replay, self.track_opts, gamma)

    def track_training(self) -> dict[str, float]:
        """Stage 3's training episodes, first and last tenth: mean return and length (steps)."""
        done = self.track_log if getattr(self, "done", False) else self.track_log[:-1]
        if not done:
            return {}
        k = max(1, len(done) // 10)
        out = {"track_episodes": float(len(done))}
        for name, part in (("first", done[:k]), ("last", done[-k:])):
            out[f"track_return_{name}"] = float(np.mean([r for r, _ in part]))
            out[f"track_length_{name}"] = float(np.mean([n for _, n in part]))
        return out

    # --- testing ---------------------------------------------------------------------------
    @staticmethod
    def policy(agent: Agent):
        return agent.act

    def evaluate(self, strength: float, policy=None) -> dict:
        policy = policy or self.policy(self.agent)
        return evaluate(self.env, policy, self.test_pool, strength, self.cfg["eval"], self.height)

    def eval_strength(self) -> float:
        """The strength the method ends at: the curriculum's end (``staged``, and ``scratch``
        after a curriculum, which trains there), else the method's fixed strength (full unless set)."""
        return self.reached["strength"] if "curriculum" in self.phases else self.strength

    def results(self) -> dict[str, float]:
        strength = self.eval_strength()
        values = dict(self.evaluate(strength), strength=strength)
        rng = np.random.default_rng(self.cfg["seed"] + 1)
        values["random_success"] = self.evaluate(1.0, lambda obs: self.env.random_action(rng))["success"]
        values.update(self.info)
        if "curriculum" in self.phases:
            values.update({k: float(self.reached[k]) for k in ("gates", "gates_passed", "stalled")})
        if "track" in self.phases:
            values.update(self.track_training(), **self.test_tracking())
        if self.cfg["render"]["enabled"]:
            render.save_rollout(self, strength)
        return values

    def test_tracking(self) -> dict:
        """Stage 3 on references from the held-out states: the tracking policy, and its control,
        replaying the reference with no residual (``replay_*``)."""
        track = self.tracking(self.references(self.test_pool))
        out = {"track_refs_test": float(len(track.refs))}
        if track.refs:
            kappas, zero = self.cfg["tracking"]["eval_kappas"], np.zeros(self.env.act_dim)
            out |= evaluate_tracking(track, self.policy(self.track_agent), kappas, self.height)
            out |= evaluate_tracking(track, lambda obs: zero, kappas, self.height, "replay")
        return out

    def cost(self) -> dict:
        agents = [self.agent, *([self.track_agent] if "track" in self.phases else [])]
        return {
            "params": sum(p.numel() for a in agents for p in a.parameters()),
            "env_steps": self.t,
            "sac_updates": self.updates,
        }
