"""A balance feedback prior: a fixed linear map from the deployment observation to joint-target changes,
added to the policy's action (``env.balance_feedback``), fitted by a derivative-free search
(``scripts/fit_balance_feedback.py``) and exported inside the ONNX.

Why: the residual-on-reference task starts PPO at the pass-through, which falls within ~2 s of most
clips; on this CPU PPO did not learn balance within ~4 M env steps (README "Foot grounding", "Exploration
noise"). A handful of gains on the torso's tilt error and tilt rate, fed to the ankles, knees, hips and
waist (the ankle/hip strategies of humanoid balance), moves that start point without any learning.

Signals (all read from the policy's own observation, so the policy node computes nothing new):

- pitch error ``e_p = g_x - ref_pitch`` and roll error ``e_r = -g_y - ref_roll`` (``g`` = the newest
  ``projected_gravity``: ``g_x = sin(pitch)``, ``-g_y = sin(roll) cos(pitch)``, the small-angle values of
  the body's pitch and roll; ``ref_roll_pitch`` of the next reference frame);
- pitch rate ``w_p`` and roll rate ``w_r`` (the newest ``base_ang_vel``, y and x, un-scaled).

Outputs: ``GROUPS`` below; every joint of a group gets ``k_P * e + k_D * w`` of its axis (both legs the
same sign), clipped to +-``LIMIT_RAD``. The map is ``delta = clip(W @ obs + 0, -L, L)`` with ``W`` (29, D)
built from the observation layout, in radians; the env and the exported model divide it by the action
scale, so the policy's action (what ``last_action`` observes and the artifact outputs) is
``net(obs) + delta / action_scale``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from g1_description import robot
from g1_tracker_policy import observation as obs_lib

#: (axis, joints): each group has a P gain (rad per rad of tilt error) and a D gain (rad per rad/s)
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("pitch", ("left_ankle_pitch_joint", "right_ankle_pitch_joint")),
    ("pitch", ("left_knee_joint", "right_knee_joint")),
    ("pitch", ("left_hip_pitch_joint", "right_hip_pitch_joint")),
    ("pitch", ("waist_pitch_joint",)),
    ("roll", ("left_ankle_roll_joint", "right_ankle_roll_joint")),
    ("roll", ("left_hip_roll_joint", "right_hip_roll_joint")),
    ("roll", ("waist_roll_joint",)),
)
NUM_GAINS = 2 * len(GROUPS)
#: the largest joint-target change the feedback may ask for (rad)
LIMIT_RAD = 0.5


def gain_names() -> list[str]:
    """``ankle_pitch_P``, ``ankle_pitch_D``, ... ``knee_P`` (pitch), ... ``waist_roll_D``: the config's order."""
    return [f"{joints[0].replace('left_', '').replace('_joint', '')}_{pd}" for _, joints in GROUPS for pd in ("P", "D")]


def feedback_matrix(obs_cfg: obs_lib.ObservationConfig, gains: Sequence[float]) -> np.ndarray:
    """(29, D) float64: ``delta_rad = W @ obs`` (before the clip). Needs ``projected_gravity`` and
    ``base_ang_vel`` among the proprio terms and ``ref_roll_pitch`` among the reference terms."""
    gains = np.asarray(gains, dtype=np.float64)
    if gains.shape != (NUM_GAINS,) or not np.all(np.isfinite(gains)):
        raise ValueError(f"balance feedback: expected {NUM_GAINS} finite gains ({', '.join(gain_names())}), "
                         f"got {gains.tolist()}")
    lay = obs_cfg.layout()
    try:
        g, w, rp = lay.find("projected_gravity"), lay.find("base_ang_vel"), lay.find("ref_roll_pitch")
    except KeyError as e:
        raise ValueError(f"balance feedback needs projected_gravity, base_ang_vel and ref_roll_pitch in the "
                         f"observation: {e}") from None
    # the four signals as rows over the observation (obs values are term * scale)
    sig = np.zeros((4, lay.size))
    sig[0, g.start + 0] = 1.0 / g.scale            # e_p = g_x - ref_pitch
    sig[0, rp.start + 1] = -1.0 / rp.scale
    sig[1, w.start + 1] = 1.0 / w.scale            # w_p
    sig[2, g.start + 1] = -1.0 / g.scale           # e_r = -g_y - ref_roll
    sig[2, rp.start + 0] = -1.0 / rp.scale
    sig[3, w.start + 0] = 1.0 / w.scale            # w_r
    m = np.zeros((robot.NUM_JOINTS, lay.size))
    for k, (axis, joints) in enumerate(GROUPS):
        e, rate = (sig[0], sig[1]) if axis == "pitch" else (sig[2], sig[3])
        for name in joints:
            m[robot.JOINT_INDEX[name]] += gains[2 * k] * e + gains[2 * k + 1] * rate
    return m


class BalanceFeedback:
    """``action_delta(obs) -> (N, 29)`` in policy action units (radians / the action scale)."""

    def __init__(self, obs_cfg: obs_lib.ObservationConfig, gains: Sequence[float], action_scale: np.ndarray):
        self.matrix = feedback_matrix(obs_cfg, gains)
        self.action_scale = np.broadcast_to(np.asarray(action_scale, dtype=np.float64), (robot.NUM_JOINTS,)).copy()

    def delta_rad(self, obs: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(obs, dtype=np.float64) @ self.matrix.T, -LIMIT_RAD, LIMIT_RAD)

    def action_delta(self, obs: np.ndarray) -> np.ndarray:
        return self.delta_rad(obs) / self.action_scale

    def torch_module(self):
        """The same map as a torch module (float32), for the exported graph."""
        import torch

        class _Feedback(torch.nn.Module):
            def __init__(self, matrix: np.ndarray, scale: np.ndarray):
                super().__init__()
                self.register_buffer("matrix", torch.as_tensor(matrix.T, dtype=torch.float32))
                self.register_buffer("inv_scale", torch.as_tensor(1.0 / scale, dtype=torch.float32))

            def forward(self, obs):
                return torch.clamp(obs @ self.matrix, -LIMIT_RAD, LIMIT_RAD) * self.inv_scale

        return _Feedback(self.matrix, self.action_scale)
