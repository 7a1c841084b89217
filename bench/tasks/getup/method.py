"""The three methods as one LightningModule with manual optimization (SAC): each ``training_step``
runs ``optim.tick`` environment steps, with one SAC update every ``optim.update_every`` of them
once the buffer holds ``optim.start_steps`` transitions. The replay buffers live in the module
(``model.Replay``).

Phases (``methods.<name>.phases``): ``strong`` (stage 1 at full strength; a shared stage cached per
seed, so ``staged`` reuses ``strong_only``'s policy and buffer), ``curriculum`` (stage 2),
``track`` (stage 3, a second SAC agent on residual PD targets at full strength) and ``weak``
(the whole stage-1+2 budget at the curriculum's floor strength, from scratch).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric

from bench.artifacts import cached
from bench.errors import BenchError
from bench.method import TrainedMethod
from bench.tasks.getup import render
from bench.tasks.getup.curriculum import Curriculum
from bench.tasks.getup.env import GetUpEnv
from bench.tasks.getup.evaluate import evaluate
from bench.tasks.getup.model import Agent, Replay
from bench.tasks.getup.tracking import Tracking, collect, evaluate_tracking, label

PHASES = ("strong", "curriculum", "track", "weak")
EVAL_METRICS = (
    "success",
    "success_prone",
    "success_supine",
    "time_to_stand",
    "return",
    "min_return",
    "strategies",
)


class Stage1MissingError(Exception):
    """Raised inside ``cached`` to look the stage-1 artifact up without building it."""


class GetUpMethod(TrainedMethod):
    def __init__(self, cfg: dict, phases: list[str]) -> None:
        super().__init__(cfg)
        self.automatic_optimization = False
        self.phases = list(phases)
        if not self.phases or any(p not in PHASES for p in self.phases):
            raise BenchError(f"methods.{cfg['method']}.phases={self.phases}: choose from {PHASES}")
        c, o = cfg["curriculum"], cfg["optim"]
        if not 0 < c["floor"] <= 1 or not 0 < c["decay"] < 1:
            raise BenchError(f"curriculum.floor={c['floor']} must be in (0, 1], decay={c['decay']} in (0, 1)")
        if o["batch_size"] > o["buffer"] or o["start_steps"] < o["batch_size"]:
            raise BenchError("optim: need batch_size <= start_steps and batch_size <= buffer")
        if o["update_every"] < 1:
            raise BenchError(f"optim.update_every={o['update_every']} must be >= 1")
        if c["gate"] not in ("mean", "min"):
            raise BenchError(f"curriculum.gate={c['gate']!r}: mean or min (the official --avg_reward)")
        self.agent: Agent | None = None
        self.summary = torch.nn.ModuleDict({k: MeanMetric() for k in self.metric_names()})
        self.info: dict[str, float] = {}

    def metric_names(self) -> list[str]:
        names = [*EVAL_METRICS, "strength", "success_weak", "random_success"]
        if "strong" in self.phases:
            names.append("stage1_success")
        if "curriculum" in self.phases:
            names += ["gates", "gates_passed", "stalled"]
        if "track" in self.phases:
            names += ["track_refs", "track_refs_test"]
            for k in self.cfg["tracking"]["eval_kappas"]:
                names += [f"{p}_{m}_k{label(k)}" for p in ("track", "replay") for m in ("err", "success")]
        return names

    # --- building -------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        if self.agent is not None:
            return
        dm, o = self.trainer.datamodule, self.cfg["optim"]
        dm.setup()
        self.env: GetUpEnv = dm.env
        self.agent = Agent(self.env.obs_dim, self.env.act_dim, self.cfg["model"])
        self.replay = Replay(self.env.obs_dim, self.env.act_dim, o["buffer"])
        if "track" in self.phases:
            self.pd_env = GetUpEnv(self.cfg["data"], "pd")
            t_dim = self.tracking([]).obs_dim
            with torch.random.fork_rng():  # stage 1 (a shared artifact) must not depend on this
                torch.manual_seed(self.cfg["seed"] + 1)
                self.track_agent = Agent(t_dim, self.env.act_dim, self.cfg["model"])
            self.track_replay = Replay(t_dim, self.env.act_dim, o["buffer"])
        self.rng = np.random.default_rng(self.cfg["seed"])
        self.gen = torch.Generator().manual_seed(self.cfg["seed"])
        c = self.cfg["curriculum"]
        start = c["floor"] if self.phases[0] == "weak" else 1.0
        self.cur = Curriculum(
            start, c["floor"], c["threshold"], c["decay"], c["stall_min"], c["stall_max"], c["stall_factor"]
        )
        self.phase, self.t_phase, self.t, self.updates, self.obs = 0, 0, 0, 0, None
        self.t_track = 0

    def configure_optimizers(self):
        agents = [self.agent] + ([self.track_agent] if "track" in self.phases else [])
        o = self.cfg["optim"]
        return [
            torch.optim.Adam(p, lr=lr, fused=True)
            for a in agents
            for p, lr in (
                (a.actor.parameters(), o["actor_lr"]),
                (a.critic.parameters(), o["critic_lr"]),
                ([a.log_alpha], o["alpha_lr"]),
            )
        ]

    def budget(self, phase: str) -> int:
        s = self.cfg["steps"]
        return {
            "strong": s["stage1"],
            "curriculum": s["stage2"],
            "track": s["stage3"],
            "weak": s["stage1"] + s["stage2"],
        }[phase]

    # --- stage 1 as a shared artifact ------------------------------------------------------
    def stage1_config(self) -> dict:
        keys = ("data", "model", "optim", "strength_std", "seed")
        return {k: self.cfg[k] for k in keys} | {"steps": self.cfg["steps"]["stage1"]}

    def on_fit_start(self) -> None:
        if self.phases[0] != "strong":
            return

        def missing(folder) -> None:
            raise Stage1MissingError

        try:
            folder = cached("getup", "stage1", self.stage1_config(), missing)
        except Stage1MissingError:
            return
        saved = torch.load(folder / "stage1.pt", weights_only=True)
        self.agent.load_state_dict(saved["agent"])
        self.replay.load_state_dict(saved["replay"])
        for opt, state in zip(self.optimizers()[:3], saved["optim"], strict=True):
            opt.optimizer.load_state_dict(state)
        self.t, self.updates = saved["t"], saved["updates"]
        self.info["stage1_success"] = saved["success"]
        self.next_phase()

    def save_stage1(self) -> None:
        success = self.evaluate(1.0)["success"]
        state = {
            "agent": self.agent.state_dict(),
            "replay": self.replay.state_dict(),
            "optim": [o.optimizer.state_dict() for o in self.optimizers()[:3]],
            "t": self.t,
            "updates": self.updates,
            "success": success,
        }
        cached(
            "getup", "stage1", self.stage1_config(), lambda folder: torch.save(state, folder / "stage1.pt")
        )
        self.info["stage1_success"] = success

    # --- training --------------------------------------------------------------------------
    def next_phase(self) -> None:
        done = self.phases[self.phase]
        self.phase, self.t_phase, self.obs = self.phase + 1, 0, None
        if done == "curriculum":
            self.cur.active = False
        if self.phase < len(self.phases) and self.phases[self.phase] == "curriculum":
            self.cur.start = self.t
        if self.phase < len(self.phases) and self.phases[self.phase] == "track":
            self.start_tracking()

    def training_step(self, batch, batch_idx):
        if self.phase == len(self.phases):  # stage 1 came from the cache: nothing left to train
            self.trainer.should_stop = True
            return
        name = self.phases[self.phase]
        n = min(self.cfg["optim"]["tick"], self.budget(name) - self.t_phase)
        track = name == "track" and bool(self.track.refs)
        for _ in range(n if name != "track" or track else 0):
            self.track_step() if track else self.env_step(name)
        self.t_phase += n
        if self.t_phase >= self.budget(name):
            if name == "strong":
                self.save_stage1()
            self.next_phase()
        if self.phase == len(self.phases):
            self.trainer.should_stop = True

    def env_step(self, phase: str) -> None:
        o, c = self.cfg["optim"], self.cfg["curriculum"]
        if self.obs is None or self.ep_t >= o["horizon"]:
            i = self.rng.integers(len(self.trainer.datamodule.train_pool["qpos"]))
            pool = self.trainer.datamodule.train_pool
            if self.obs is not None:
                self.log("train/return", self.ep_ret, on_step=True)
            self.obs = self.env.reset(
                pool["qpos"][i], pool["qvel"][i], self.cur.sample(self.rng, self.cfg["strength_std"])
            )
            self.ep_t, self.ep_ret = 0, 0.0
        if len(self.replay) < o["start_steps"]:
            a = self.env.random_action(self.rng)
        else:
            a = self.agent.act(self.obs)
        nxt, r = self.env.step(a)
        self.replay.add(self.obs, a, r, nxt)
        self.obs, self.ep_t, self.t, self.ep_ret = nxt, self.ep_t + 1, self.t + 1, self.ep_ret + r
        if len(self.replay) >= o["start_steps"] and self.t % o["update_every"] == 0:
            self.sac_update(self.agent, self.replay, self.optimizers()[:3])
        if phase == "curriculum" and self.cur.active and self.t % c["interval"] == 0:
            gate = self.trainer.datamodule.train_pool
            gate = {k: v[: c["test_states"]] for k, v in gate.items()}
            res = evaluate(
                self.env, self.policy(self.agent), gate, self.cur.strength, self.cfg["eval"], self.height
            )
            gate_return = res["return" if c["gate"] == "mean" else "min_return"]
            self.cur.update(gate_return, self.t)
            self.log_dict({"train/gate_return": gate_return, "train/strength": self.cur.strength})
            self.obs = None  # the evaluation moved the simulator: start a new episode

    @property
    def height(self) -> float:
        return self.cfg["data"]["stand_height"]

    def sac_update(self, agent: Agent, replay: Replay, opts) -> None:
        """One SAC update: twin-Q critic to the soft target (none past a terminal), actor,
        temperature, Polyak target."""
        o = self.cfg["optim"]
        obs, act, rew, nxt, terminal = replay.sample(o["batch_size"], self.gen)
        opt_actor, opt_critic, opt_alpha = opts
        alpha = agent.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = agent.actor(nxt)
            y = rew + o["gamma"] * (1 - terminal) * (torch.min(*agent.target(nxt, a2)) - alpha * logp2)
        q1, q2 = agent.critic(obs, act)
        opt_critic.zero_grad()
        self.manual_backward(F.mse_loss(q1, y) + F.mse_loss(q2, y))
        opt_critic.step()
        a, logp = agent.actor(obs)
        opt_actor.zero_grad()
        self.manual_backward((alpha * logp - torch.min(*agent.critic(obs, a))).mean())
        opt_actor.step()
        opt_alpha.zero_grad()
        self.manual_backward(-(agent.log_alpha * (logp.detach() + agent.target_entropy)).mean())
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
        self.track = self.tracking(self.references(self.trainer.datamodule.train_pool))
        self.info["track_refs"] = float(len(self.track.refs))

    def track_step(self) -> None:
        o = self.cfg["optim"]
        if self.obs is None or self.done:
            self.obs, self.done = self.track.reset(self.rng), False
        if len(self.track_replay) < o["start_steps"]:
            a = self.env.random_action(self.rng)
        else:
            a = self.track_agent.act(self.obs)
        nxt, r, terminal, self.done = self.track.step(a)
        self.track_replay.add(self.obs, a, r, nxt, terminal)
        self.obs, self.t_track = nxt, self.t_track + 1
        if len(self.track_replay) >= o["start_steps"] and self.t_track % o["update_every"] == 0:
            self.sac_update(self.track_agent, self.track_replay, self.optimizers()[3:])

    # --- testing ---------------------------------------------------------------------------
    @staticmethod
    def policy(agent: Agent):
        return lambda obs: agent.act(obs, deterministic=True)

    def evaluate(self, strength: float, policy=None) -> dict:
        pool = self.trainer.datamodule.test_pool
        return evaluate(
            self.env, policy or self.policy(self.agent), pool, strength, self.cfg["eval"], self.height
        )

    def eval_strength(self) -> float:
        """The strength the method ends at: reached by the curriculum, the floor, or full."""
        if "curriculum" in self.phases:
            return self.cur.strength
        return self.cfg["curriculum"]["floor"] if "weak" in self.phases else 1.0

    def test_step(self, batch, batch_idx):
        floor, strength = self.cfg["curriculum"]["floor"], self.eval_strength()
        res = self.evaluate(strength)
        values = dict(res, strength=strength)
        values["success_weak"] = res["success"] if strength == floor else self.evaluate(floor)["success"]
        rng = np.random.default_rng(self.cfg["seed"] + 1)
        values["random_success"] = self.evaluate(1.0, lambda obs: self.env.random_action(rng))["success"]
        values.update(self.info)
        if "curriculum" in self.phases:
            h = self.cur.history
            passed = sum(g > self.cur.threshold for _, g, _ in h)
            values.update(gates=float(len(h)), gates_passed=float(passed), stalled=float(self.cur.stalled))
        if "track" in self.phases:
            values.update(self.test_tracking())
        for k, v in values.items():
            self.summary[k].update(v)
            self.log(f"test/{k}", self.summary[k])
        if self.cfg["render"]["enabled"]:
            render.save_rollout(self, strength)

    def test_tracking(self) -> dict:
        """Stage 3 on references from the held-out states: the tracking policy, and its control,
        replaying the reference with no residual (``replay_*``)."""
        track = self.tracking(self.references(self.trainer.datamodule.test_pool))
        out = {"track_refs_test": float(len(track.refs))}
        if track.refs:
            kappas, zero = self.cfg["tracking"]["eval_kappas"], np.zeros(self.env.act_dim)
            out |= evaluate_tracking(track, self.policy(self.track_agent), kappas, self.height)
            out |= evaluate_tracking(track, lambda obs: zero, kappas, self.height, "replay")
        return out

    def cost(self) -> dict:
        agents = [a for a in (self.agent, getattr(self, "track_agent", None)) if a is not None]
        return {
            "params": sum(p.numel() for a in agents for p in a.parameters()),
            "env_steps": self.t,
            "sac_updates": self.updates,
        }
