"""rsl-rl's VecEnv interface over :class:`g1_train.env.TrackingEnv` (numpy <-> torch, TensorDict)."""

from __future__ import annotations

import numpy as np
import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict

from .env import TrackingEnv


class RslRlTrackingEnv(VecEnv):
    """Observation groups: ``policy`` (deployment observation), ``privileged`` (teacher/critic extras),
    and, when ``with_context``, ``policy_context`` + ``context_len`` for the transformer student."""

    def __init__(self, env: TrackingEnv, device: str = "cpu", with_context: bool = False):
        self.env = env
        self.device = device
        self.with_context = with_context
        env.keep_context = with_context  # the window is built only when a model reads it
        if with_context and "policy_context" not in env.obs:
            raise ValueError("RslRlTrackingEnv(with_context=True): the env stopped building policy_context; "
                             "build a new TrackingEnv")
        self.num_envs = env.num_envs
        self.num_actions = env.num_actions
        self.max_episode_length = env.max_episode_length
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=device)
        self.cfg = env.cfg

    def _obs(self, obs: dict[str, np.ndarray]) -> TensorDict:
        keys = ["policy", "privileged"] + (["policy_context", "context_len"] if self.with_context else []) \
            + (["expert_action"] if "expert_action" in obs else [])
        return TensorDict({k: torch.as_tensor(obs[k], device=self.device) for k in keys},
                          batch_size=[self.num_envs], device=self.device)

    def get_observations(self) -> TensorDict:
        return self._obs(self.env.obs)

    def step(self, actions: torch.Tensor):
        obs, reward, terminated, time_out, info = self.env.step(actions.detach().cpu().numpy().astype(np.float64))
        self.episode_length_buf = torch.as_tensor(self.env.episode_len, device=self.device)
        dones = torch.as_tensor(terminated | time_out, device=self.device, dtype=torch.long)
        extras = {"time_outs": torch.as_tensor(time_out, device=self.device), "log": info["log"]}
        return self._obs(obs), torch.as_tensor(reward, device=self.device), dones, extras
