"""Off-policy teacher: soft actor-critic in the FastSAC / FastTD3 style (``teacher_algo.kind: sac``).

Same task as the PPO teacher - the same :class:`g1_train.env.TrackingEnv` (deployment observation builder,
rewards, terminations, resets, randomisation) and the same actor input (``policy`` + ``privileged``) -
trained with:

- many parallel envs feeding one replay buffer (``sac.buffer_size`` transitions, float32 on ``device``);
  each env's observations are stored once, the next observation of step t is the env's row of step t+1,
  so the buffer holds one copy of each observation. A step that ended by a time-out is not learnt from
  (its true next observation was replaced by the reset; bootstrapping from the reset would be wrong),
  a terminated step has no bootstrap (done = 1);
- ``sac.updates_per_step`` gradient updates per vectorised env step on batches of ``sac.batch_size``;
- clipped double Q (two critics, the minimum of two Polyak-averaged target critics), entropy temperature
  tuned to ``sac.target_entropy`` (default -num_actions);
- observation normalisation (rsl-rl's ``EmpiricalNormalization``, updated with every collected batch and
  applied to actor and critic inputs when they are used);
- a tanh-squashed Gaussian actor: the teacher's network (``teacher.kind``: the MoE with its conv future
  encoder, or an MLP) with a head of mean and log-std; the env receives ``sac.action_bound * tanh(u)``,
  the deterministic policy is ``action_bound * tanh(mean)``.

Campaign behaviour as for PPO where it applies: ``--max-seconds`` stops at an "iteration" boundary
(``teacher_algo.num_steps_per_env`` vectorised steps) with a checkpoint, checkpoints every
``campaign.checkpoint_every_s``, SIGTERM/SIGINT checkpoint and exit 0, ``progress.jsonl`` one line per
iteration. ``model_<it>.pt`` holds networks, target critics, optimisers, normaliser, temperature, iteration
and counters (tensors and plain types: read weights-only); ``policy.pt`` the actor + normaliser.
``--resume`` restores those; the replay buffer and the episodes in flight start afresh (a buffer of
transitions is far too large for a checkpoint), so a SAC resume is not bit-exact like PPO's.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from rsl_rl.modules import EmpiricalNormalization

from . import campaign
from .checkpoint_io import load_checkpoint
from .config import TrainCfg, to_dict
from .env import TrackingEnv
from .models import MotionMoE, _mlp

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
SLIM_KEY = "sac_actor_state_dict"


def teacher_obs(obs: dict[str, np.ndarray]) -> np.ndarray:
    """The teacher's input: [policy | privileged] (the PPO teacher's ``obs_groups`` order)."""
    return np.concatenate([obs["policy"], obs["privileged"]], 1).astype(np.float32)


class SacActor(nn.Module):
    """Normaliser + the teacher's network (MoE or MLP) with a (mean, log-std) head, tanh-squashed."""

    def __init__(self, cfg: TrainCfg, obs_dim: int, act_dim: int):
        super().__init__()
        from .train import layout_kwargs

        m = cfg.teacher
        self.act_dim, self.bound = act_dim, float(cfg.sac.action_bound)
        self.normalizer = EmpiricalNormalization(obs_dim)
        if m.kind == "moe":
            lay = layout_kwargs(cfg)
            extra = obs_dim - lay["proprio_size"] - lay["num_frames"] * lay["frame_size"]
            self.net = MotionMoE(lay["proprio_size"], lay["num_frames"], lay["frame_size"], extra, 2 * act_dim,
                                 m.num_experts, list(m.expert_hidden), list(m.gate_hidden), list(m.encoder_channels),
                                 m.encoder_out)
        elif m.kind == "mlp":
            self.net = _mlp([obs_dim, *m.expert_hidden, 2 * act_dim])
        else:
            raise ValueError(f"teacher.kind {m.kind!r}: a SAC actor is a moe or an mlp")

    def _head(self, x_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, raw = self.net(x_norm).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(raw) + 1.0)
        return mean, log_std

    def sample(self, x_norm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(squashed action in [-1, 1], log-probability) by the reparameterisation trick."""
        mean, log_std = self._head(x_norm)
        std = log_std.exp()
        u = mean + std * torch.randn_like(mean)
        a = torch.tanh(u)
        logp = (-0.5 * ((u - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        logp = logp - (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)  # log|d tanh(u)/du|
        return a, logp

    def deterministic(self, x_norm: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self._head(x_norm)[0])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Raw teacher observation -> the env's action (deterministic): what evaluation runs."""
        return self.bound * self.deterministic(self.normalizer(obs))


class DoubleQ(nn.Module):
    """Two independent critics Q(o, a) (MLP with LayerNorm); ``forward`` returns (2, B)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int]):
        super().__init__()

        def net():
            layers: list[nn.Module] = []
            d = obs_dim + act_dim
            for h in hidden:
                layers += [nn.Linear(d, h), nn.LayerNorm(h), nn.ReLU()]
                d = h
            return nn.Sequential(*layers, nn.Linear(d, 1))

        self.q = nn.ModuleList([net(), net()])

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        x = torch.cat([obs, act], -1)
        return torch.stack([q(x).squeeze(-1) for q in self.q])


class ReplayBuffer:
    """Per-env rings of (obs, action, reward, done, learnable); next obs of row t = row t+1 of that env."""

    def __init__(self, capacity: int, num_envs: int, obs_dim: int, act_dim: int, device: str):
        self.rows = max(2, capacity // num_envs)
        self.n, self.device = num_envs, device
        z = lambda *s: torch.zeros(s, device=device)  # noqa: E731
        self.obs, self.act = z(self.rows, num_envs, obs_dim), z(self.rows, num_envs, act_dim)
        self.rew, self.done, self.ok = z(self.rows, num_envs), z(self.rows, num_envs), z(self.rows, num_envs)
        self.cursor, self.size = 0, 0

    def add(self, obs: torch.Tensor, act: torch.Tensor, rew: torch.Tensor, done: torch.Tensor,
            ok: torch.Tensor) -> None:
        c = self.cursor
        self.obs[c], self.act[c], self.rew[c], self.done[c], self.ok[c] = obs, act, rew, done, ok
        self.cursor = (c + 1) % self.rows
        self.size = min(self.size + 1, self.rows)

    @property
    def transitions(self) -> int:
        """Rows that have a successor (the newest row has none yet) x envs."""
        return max(0, self.size - 1) * self.n

    def sample(self, batch: int, gen: torch.Generator | None = None):
        # row t is usable unless it is the newest (its next observation is not written yet)
        k = torch.randint(0, self.size - 1, (batch,), device=self.device, generator=gen)
        oldest = (self.cursor if self.size == self.rows else 0)
        t = (oldest + k) % self.rows            # k-th row from the oldest: never the newest
        e = torch.randint(0, self.n, (batch,), device=self.device, generator=gen)
        t2 = (t + 1) % self.rows
        return self.obs[t, e], self.act[t, e], self.rew[t, e], self.done[t, e], self.ok[t, e], self.obs[t2, e]


class SacLearner:
    """Networks, optimisers and the update rule (no env): also what a checkpoint saves."""

    def __init__(self, cfg: TrainCfg, obs_dim: int, act_dim: int):
        s, self.device = cfg.sac, cfg.device
        self.cfg = s
        self.actor = SacActor(cfg, obs_dim, act_dim).to(self.device)
        self.critic = DoubleQ(obs_dim, act_dim, list(s.critic_hidden)).to(self.device)
        self.critic_target = DoubleQ(obs_dim, act_dim, list(s.critic_hidden)).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.log_alpha = torch.tensor(math.log(s.alpha_init), device=self.device, requires_grad=True)
        self.target_entropy = float(s.target_entropy) if s.target_entropy is not None else -float(act_dim)
        self.actor_opt = torch.optim.Adam(self.actor.net.parameters(), lr=s.actor_lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=s.critic_lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=s.alpha_lr)
        self.updates = 0

    def update(self, batch) -> dict[str, float]:
        s = self.cfg
        obs, act, rew, done, ok, nxt = batch
        norm = self.actor.normalizer
        o, o2 = norm(obs), norm(nxt)
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, logp2 = self.actor.sample(o2)
            q_next = self.critic_target(o2, a2).min(0).values - alpha * logp2
            y = s.reward_scale * rew + s.gamma * (1.0 - done) * q_next
        q = self.critic(o, act)
        w = ok / ok.sum().clamp(min=1.0)
        critic_loss = (((q - y) ** 2) * w).sum()
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        if s.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.critic.parameters(), s.max_grad_norm)
        self.critic_opt.step()

        a, logp = self.actor.sample(o)
        q_pi = self.critic(o, a).min(0).values
        actor_loss = (alpha * logp - q_pi).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()
        if s.max_grad_norm > 0:
            nn.utils.clip_grad_norm_(self.actor.net.parameters(), s.max_grad_norm)
        self.actor_opt.step()
        self.critic.zero_grad(set_to_none=True)  # the actor's backward went through the critic

        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()

        with torch.no_grad():
            for p, pt in zip(self.critic.parameters(), self.critic_target.parameters()):
                pt.lerp_(p, s.tau)
        self.updates += 1
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(),
                "alpha": alpha.item(), "entropy": -logp.mean().item(), "q": q.mean().item()}

    def state_dict(self) -> dict:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict(), "updates": self.updates}

    def load_state_dict(self, d: dict) -> None:
        self.actor.load_state_dict(d["actor"])
        self.critic.load_state_dict(d["critic"])
        self.critic_target.load_state_dict(d["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(d["log_alpha"])
        self.actor_opt.load_state_dict(d["actor_opt"])
        self.critic_opt.load_state_dict(d["critic_opt"])
        self.alpha_opt.load_state_dict(d["alpha_opt"])
        self.updates = int(d["updates"])


def load_sac_actor(cfg: TrainCfg, state: dict, obs_dim: int, act_dim: int) -> SacActor:
    """The actor of a SAC checkpoint (``model_<it>.pt``) or slim ``policy.pt``, in eval mode."""
    actor = SacActor(cfg, obs_dim, act_dim)
    actor.load_state_dict(state[SLIM_KEY] if SLIM_KEY in state else state["sac"]["actor"])
    return actor.eval()


def is_sac_checkpoint(state: dict) -> bool:
    return SLIM_KEY in state or "sac" in state


def _save(run: Path, learner: SacLearner, cfg: TrainCfg, it: int, totals: dict, reason: str) -> None:
    t0 = time.monotonic()
    state = {"sac": learner.state_dict(), "iter": it, "algorithm": "sac",
             "campaign": {"format": campaign.FORMAT, "env_steps": int(totals["env_steps"]),
                          "wall_s": float(totals["wall_s"]), "leg": int(totals["leg"])}}
    path = campaign.atomic_save(state, run / f"model_{it}.pt")
    slim = {SLIM_KEY: {k: v.detach().cpu().clone() for k, v in learner.actor.state_dict().items()},
            "iter": it, "slim": True, "algorithm": "sac", "config": to_dict(cfg)}
    campaign.atomic_save(slim, run / campaign.SLIM_NAME)
    campaign.prune_checkpoints(run, cfg.campaign.keep_checkpoints)
    with open(run / "campaign.jsonl", "a") as f:
        f.write(json.dumps(campaign.leg_record("checkpoint", it=it, path=path.name, reason=reason,
                                               env_steps=int(totals["env_steps"]),
                                               write_s=round(time.monotonic() - t0, 3))) + "\n")


def train_sac(cfg: TrainCfg, env: TrackingEnv, run: Path, iterations: int, max_seconds: float | None,
              started: float | None, resume_ckpt: Path | None = None) -> Path:
    """Train until ``iterations`` iterations of ``num_steps_per_env`` vectorised steps are done, or the
    campaign control stops the leg. Returns the last checkpoint."""
    s, dev = cfg.sac, cfg.device
    torch.manual_seed(cfg.env.seed)
    gen = torch.Generator(device=dev)
    gen.manual_seed(cfg.env.seed + 1)
    env.keep_context = False
    n, act_dim = env.num_envs, env.num_actions
    obs = torch.as_tensor(teacher_obs(env.obs), device=dev)
    learner = SacLearner(cfg, obs.shape[1], act_dim)
    totals, start_it = {"env_steps": 0, "wall_s": 0.0, "leg": 0}, 0
    if resume_ckpt is not None:
        state = load_checkpoint(resume_ckpt, map_location=dev)
        if "sac" not in state:
            raise ValueError(f"{resume_ckpt} is not a SAC checkpoint (teacher_algo.kind: sac); resume it with the "
                             "algorithm it was trained with")
        learner.load_state_dict(state["sac"])
        c = state.get("campaign", {})
        totals = {"env_steps": c.get("env_steps", 0), "wall_s": c.get("wall_s", 0.0), "leg": c.get("leg", -1) + 1}
        start_it = int(state["iter"]) + 1
        print(f"resumed SAC from {resume_ckpt} at iteration {start_it} (replay buffer and episodes start afresh)")
    buf = ReplayBuffer(s.buffer_size, n, obs.shape[1], act_dim, dev)
    control = campaign.CampaignControl(max_seconds, cfg.campaign.checkpoint_every_s, started, dev)
    control.install_signals()
    with open(run / "campaign.jsonl", "a") as f:
        f.write(json.dumps(campaign.leg_record("start", leg=int(totals["leg"]), it=start_it, iterations=iterations,
                                               algorithm="sac", max_seconds=max_seconds, device=dev, num_envs=n,
                                               resumed_from=str(resume_ckpt) if resume_ckpt else None)) + "\n")
    steps_per_it = cfg.teacher_algo.num_steps_per_env
    reason, it, last = None, start_it, None
    try:
        for it in range(start_it, start_it + iterations):
            t_it = time.monotonic()
            losses: list[dict] = []
            ep_s, succ = [], []
            for _ in range(steps_per_it):
                with torch.no_grad():
                    a, _ = learner.actor.sample(learner.actor.normalizer(obs))
                nobs, rew, term, tout, info = env.step((s.action_bound * a).cpu().numpy().astype(np.float64))
                buf.add(obs, a, torch.as_tensor(rew, device=dev), torch.as_tensor(term, dtype=torch.float32, device=dev),
                        torch.as_tensor(~tout, dtype=torch.float32, device=dev))
                learner.actor.normalizer.update(obs)
                obs = torch.as_tensor(teacher_obs(nobs), device=dev)
                log = info["log"]
                if "/tracking/episode_s" in log:
                    ep_s.append(log["/tracking/episode_s"])
                    succ.append(log["/tracking/success_rate"])
                if buf.transitions >= max(s.learning_starts, s.batch_size):
                    for _ in range(s.updates_per_step):
                        losses.append(learner.update(buf.sample(s.batch_size, gen)))
            totals["env_steps"] += steps_per_it * n
            totals["wall_s"] += time.monotonic() - t_it
            entry = {"it": it, "fps": round(steps_per_it * n / max(time.monotonic() - t_it, 1e-9), 1),
                     "env_steps": int(totals["env_steps"]), "wall_s": round(totals["wall_s"], 1),
                     "updates": learner.updates}
            if losses:
                for k in losses[0]:
                    v = float(np.mean([d[k] for d in losses]))
                    if not math.isfinite(v):
                        raise FloatingPointError(f"SAC {k} is {v} at iteration {it}: training diverged")
                    entry[k] = round(v, 5)
            if ep_s:
                entry["mean_episode_s"] = round(float(np.mean(ep_s)), 3)
                entry["train_success"] = round(float(np.mean(succ)), 4)
            with open(run / "progress.jsonl", "a") as f:
                f.write(json.dumps(entry) + "\n")
            timed, reason = control.decide()
            if timed or reason or it == start_it + iterations - 1 or (it + 1) % cfg.teacher_algo.save_interval == 0:
                t0 = time.monotonic()
                _save(run, learner, cfg, it, totals, reason or ("end" if it == start_it + iterations - 1 else "timer"))
                control.checkpointed(time.monotonic() - t0)
                last = it
            if reason:
                break
    finally:
        control.restore_signals()
    with open(run / "campaign.jsonl", "a") as f:
        f.write(json.dumps(campaign.leg_record("stop", it=it, reason=reason or "iterations done",
                                               env_steps=int(totals["env_steps"]))) + "\n")
    if reason:
        print(f"leg stopped at iteration {it}: {reason} (checkpoint written)")
    return run / f"model_{last}.pt"
