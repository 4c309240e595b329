"""Multi-motion tracking task on the G1: batched, numpy, no torch; the simulator is a pluggable backend.

The MDP terms below (observations, rewards, terminations, resets, randomisation draws) work on plain
state arrays with a leading env axis, gathered from the simulator once per control step
(:class:`RobotStateBatch`); the simulator is touched only through :mod:`g1_train.physics`
(``env.backend``: ``batch`` = MuJoCo 4's mujoco.batch, the default; ``mujoco`` = C-MuJoCo, one MjData
per env; ``warp`` = MuJoCo-Warp, one world per env, for GPUs), so all backends reuse the same terms - they
are single-sourced. The deployment observation is not even defined here: it is
``g1_tracker_policy.observation.compute_observation``, the function the policy node runs.

One control step (50 Hz) = the physics profile's substeps (``g1_description.physics``, the profiles the
sim node runs too: ``actuator_200hz`` 4 x 5 ms with the PD in MuJoCo's position actuators, or
``drivers_500hz`` 10 x 2 ms with the PD in Python) of the G1 drivers' PD (tau = strength * (kp (q* - q)
- kd dq), clipped to the effort limit), like ``g1_hardware.sim_core``: the policy outputs joint targets
q* = base + action_scale * action, base = the default pose or the
reference's next frame (the artifact's ``action_base``), with the gains of ``g1_description.robot``.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from g1_description import mjcf, robot
from g1_description import physics as physics_profiles
from g1_tracker_policy import contract
from g1_tracker_policy import observation as obs_lib
from motion_server.motion import FrameBatch

from .config import EnvCfg
from .experts import MotionExperts
from .feedback import BalanceFeedback
from .motions import MotionSet
from .physics import NQ0 as _NQ0
from .physics import NV0 as _NV0
from .physics import delay_in_steps, make_physics, resolve_profile
from .sampling import AdaptiveSampler

TERRAIN_HALF_SIZE_M = 12.0
TERRAIN_RES = 48


def deployment_observation_config(cfg: EnvCfg) -> obs_lib.ObservationConfig:
    """The ObservationConfig that goes into the exported artifact (built by the deployment module)."""
    o = cfg.observation
    offsets = tuple(o.future_offsets) if o.future_offsets else tuple(obs_lib.DEFAULT_FUTURE_OFFSETS)
    return obs_lib.ObservationConfig(proprio_terms=tuple(o.proprio_terms), history_length=o.history_length,
                                     reference_terms=tuple(o.reference_terms), future_offsets=offsets)


GAINS = ("tracking", "stand")


def pd_gains(cfg: EnvCfg) -> tuple[np.ndarray, np.ndarray]:
    """(kp, kd) of the joint PD for ``cfg.gains``; the env simulates with them and the export writes them."""
    if cfg.gains == "tracking":
        return robot.KP.copy(), robot.KD.copy()
    if cfg.gains == "stand":
        return np.array(robot.STAND_KP, dtype=np.float64), np.array(robot.STAND_KD, dtype=np.float64)
    raise ValueError(f"env.gains {cfg.gains!r}: expected one of {GAINS}")


ACTION_SCALE_MODES = ("constant", "effort_over_kp")


def action_scales(cfg: EnvCfg) -> np.ndarray:
    """(29,) rad per unit action for ``cfg.action_scale_mode``: the env steps with it and ``export`` writes
    it into the artifact. ``effort_over_kp``: ``action_scale * robot.EFFORT_LIMIT / kp`` with kp the gains
    of ``cfg.gains`` (BeyondMimic's 0.25 * effort / stiffness)."""
    if cfg.action_scale_mode == "constant":
        return np.full(robot.NUM_JOINTS, float(cfg.action_scale))
    if cfg.action_scale_mode == "effort_over_kp":
        kp, _ = pd_gains(cfg)
        return float(cfg.action_scale) * robot.EFFORT_LIMIT / kp
    raise ValueError(f"env.action_scale_mode {cfg.action_scale_mode!r}: expected one of {ACTION_SCALE_MODES}")


def build_train_model(terrain_height_m: float, profile: str = physics_profiles.DEFAULT_PROFILE) -> mujoco.MjModel:
    """The simulator's model (``mjcf.build_sim_spec`` with the physics profile: its time step, torque motors
    or position actuators, per-motor armature) plus a heightfield for terrain-height randomisation (flat
    while its data is zero)."""
    spec = mjcf.build_sim_spec(scene=True, profile=profile)
    if terrain_height_m > 0:
        hfield = spec.add_hfield(name="terrain", size=[TERRAIN_HALF_SIZE_M, TERRAIN_HALF_SIZE_M, terrain_height_m,
                                                        0.05], nrow=TERRAIN_RES, ncol=TERRAIN_RES)
        hfield.userdata = [0.0] * (TERRAIN_RES * TERRAIN_RES)
        geom = spec.worldbody.add_geom(name="terrain", type=mujoco.mjtGeom.mjGEOM_HFIELD)
        geom.hfieldname = "terrain"
    model = spec.compile()
    mjcf.check_model(model)
    return model


@dataclass
class RobotStateBatch:
    """What the MDP terms read, gathered once per control step (world frame unless said)."""

    root_pos: np.ndarray        # (N, 3)
    root_quat: np.ndarray       # (N, 4) wxyz, pelvis body
    root_lin_vel: np.ndarray    # (N, 3) world
    root_ang_vel: np.ndarray    # (N, 3) world
    imu_quat: np.ndarray        # (N, 4) wxyz, IMU site (what the robot reports)
    imu_gyro: np.ndarray        # (N, 3) IMU frame
    joint_pos: np.ndarray       # (N, 29)
    joint_vel: np.ndarray       # (N, 29)
    key_body_pos: np.ndarray    # (N, K, 3)

    @classmethod
    def empty(cls, n: int, k: int) -> "RobotStateBatch":
        z = np.zeros
        return cls(z((n, 3)), z((n, 4)), z((n, 3)), z((n, 3)), z((n, 4)), z((n, 3)), z((n, 29)), z((n, 29)),
                   z((n, k, 3)))


#: Reference frames, (N, F, ...): the motion server's frame layout (one definition, motion_server.motion).
ReferenceBatch = FrameBatch


class TrackingEnv:
    """N G1s tracking clips of a MotionSet. ``step(action) -> (obs, reward, terminated, time_out, info)``.

    ``obs`` is a dict of float32 arrays: ``policy`` (the deployment observation, (N, D)), ``privileged``
    (teacher/critic extras), ``policy_context`` ((N, C, D) rolling window for the transformer student,
    oldest first, zero-padded at the front exactly like the policy node's ONNX runner) and
    ``context_len`` ((N, 1) valid steps in it).
    """

    def __init__(self, cfg: EnvCfg, motions: MotionSet):
        self.cfg = cfg
        self.motions = motions
        self.num_envs = n = cfg.num_envs
        self.rng = np.random.default_rng(cfg.seed)
        self.obs_cfg = deployment_observation_config(cfg)
        self.offsets = np.array((1,) + tuple(self.obs_cfg.future_offsets))  # frame 0 = next frame
        self.dt = robot.CONTROL_PERIOD_S
        dr = cfg.randomization
        self.profile = resolve_profile(cfg)  # g1_description.physics: dt, substeps, where the PD runs
        self.base_model = build_train_model(dr.terrain_height_m if dr.enabled else 0.0, self.profile.name)
        self.terrain = bool(self.base_model.nhfield)
        # The simulator (env.backend): per-env friction, masses, gravity and terrain when randomised.
        self.physics = make_physics(cfg, self.base_model, motions.key_body_names)
        self.default_q = robot.DEFAULT_JOINT_POS.copy()
        (self.kp, self.kd), self.effort = pd_gains(cfg), robot.EFFORT_LIMIT.copy()
        self.action_scale = action_scales(cfg)
        # fixed balance feedback added to every action (g1_train.feedback; exported inside the ONNX)
        self.feedback = BalanceFeedback(self.obs_cfg, cfg.balance_feedback, self.action_scale) \
            if cfg.balance_feedback else None
        #: motion experts labelling every state (obs["expert_action"], g1_train.experts), or None
        self.expert = MotionExperts(cfg.experts, list(motions.names), n, self.kp, self.kd,
                                    position_gain=cfg.expert_position_gain) if cfg.experts else None
        if cfg.rewards.key_body_frame not in KEY_BODY_FRAMES:
            raise ValueError(f"env.rewards.key_body_frame {cfg.rewards.key_body_frame!r}: expected one of "
                             f"{KEY_BODY_FRAMES}")
        self.sampler = AdaptiveSampler(motions, cfg.sampling, self.rng, self.dt)

        # per-env randomisation parameters (privileged information for the teacher)
        self.friction = np.ones(n)
        self.mass_add = np.zeros(n)
        self.com_offset = np.zeros((n, 3))
        self.strength = np.ones((n, 29))
        self.delay = np.zeros(n, dtype=np.int64)
        self.push_timer = np.zeros(n)

        # episode bookkeeping
        self.episode_last = np.zeros(n, dtype=np.int64)  # clip frame at which the episode succeeds
        self.clip = np.zeros(n, dtype=np.int64)
        self.frame = np.zeros(n, dtype=np.int64)        # clip frame the robot should be at now
        self.episode_len = np.zeros(n, dtype=np.int64)
        self.max_kp_err = np.zeros(n)
        self.action = np.zeros((n, 29))
        self.last_action = np.zeros((n, 29))
        self.target = np.tile(self.default_q, (n, 1))
        self.state = RobotStateBatch.empty(n, len(motions.key_body_names))
        self.history = obs_lib.ProprioHistory(self.obs_cfg, n)
        self.context_len = cfg.observation.student_context
        self.context = np.zeros((n, self.context_len, self.obs_cfg.size), dtype=np.float32)
        self.context_steps = np.zeros(n, dtype=np.int64)
        #: build ``policy_context`` every step (only a Transformer student reads it: RslRlTrackingEnv turns it
        #: off otherwise; copying the (N, C, D) window cost ~40% of the host MDP time)
        self.keep_context = True
        self.episode_sums: dict[str, np.ndarray] = {}
        self.reset(np.ones(n, dtype=bool))
        self.obs = self._observe()

    # --- sizes -------------------------------------------------------------------------------------
    @property
    def num_actions(self) -> int:
        return robot.NUM_JOINTS

    @property
    def max_episode_length(self) -> int:
        return int(round(self.cfg.sampling.max_segment_s / self.dt)) + 1

    # --- reference ---------------------------------------------------------------------------------
    def reference(self, frames_ahead: np.ndarray | None = None) -> ReferenceBatch:
        """Reference frames at ``frame + frames_ahead`` (clamped to the clip end), (N, F, ...)."""
        ahead = self.offsets if frames_ahead is None else np.asarray(frames_ahead)
        ms = self.motions
        idx = np.minimum(self.frame[:, None] + ahead[None], ms.length[self.clip][:, None] - 1)
        g = ms.start[self.clip][:, None] + idx
        f64 = lambda a: a[g].astype(np.float64)  # noqa: E731
        return ReferenceBatch(times_s=idx * self.dt, joint_pos=f64(ms.joint_pos), joint_vel=f64(ms.joint_vel),
                              root_pos=f64(ms.root_pos), root_quat_wxyz=f64(ms.root_quat_wxyz),
                              root_lin_vel=f64(ms.root_lin_vel), root_ang_vel=f64(ms.root_ang_vel),
                              key_body_pos=f64(ms.key_body_pos))

    def action_base(self) -> np.ndarray:
        """(N, 29) what the scaled action is added to for the step from ``frame`` to ``frame + 1``: the
        default pose (the exported action offset), or the reference's next frame (the frame the policy
        node's reference window starts with, what the pass-through baseline commands)."""
        if self.cfg.action_base == contract.ACTION_BASE_OFFSET:
            return np.broadcast_to(self.default_q, (self.num_envs, robot.NUM_JOINTS))
        if self.cfg.action_base == contract.ACTION_BASE_REFERENCE:
            return self.reference(np.array([1])).joint_pos[:, 0]
        raise ValueError(f"env.action_base {self.cfg.action_base!r}: expected one of {contract.ACTION_BASES}")

    @property
    def models(self) -> list[mujoco.MjModel]:
        """The per-env MjModels (C-MuJoCo backend only)."""
        return self.physics.models

    # --- randomisation -----------------------------------------------------------------------------
    def _draw_randomisation(self, i: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Draw env i's physics parameters (kept here as privileged information); returns its gravity
        vector and terrain heights (or None) for the backend."""
        dr, rng = self.cfg.randomization, self.rng
        self.friction[i] = rng.uniform(*dr.friction)
        self.mass_add[i] = rng.uniform(*dr.base_mass_add_kg)
        self.com_offset[i] = rng.uniform(*dr.com_offset_m, size=3)
        self.strength[i] = rng.uniform(*dr.motor_strength, size=29)
        self.delay[i] = rng.integers(dr.action_delay_steps[0], dr.action_delay_steps[1] + 1)
        tilt = rng.uniform(-dr.gravity_tilt_rad, dr.gravity_tilt_rad, size=2)
        gravity = 9.81 * np.array([np.sin(tilt[1]), -np.sin(tilt[0]), -np.cos(tilt[0]) * np.cos(tilt[1])])
        terrain = None
        if self.terrain:
            # Smooth random bumps: coarse noise upsampled, in [0, 1] of the hfield's elevation range.
            coarse = rng.uniform(0, 1, (TERRAIN_RES // 8 + 1, TERRAIN_RES // 8 + 1))
            terrain = np.kron(coarse, np.ones((8, 8)))[:TERRAIN_RES, :TERRAIN_RES].ravel()
        self.push_timer[i] = rng.uniform(*dr.push_interval_s)
        return gravity, terrain

    # --- reset -------------------------------------------------------------------------------------
    def reset(self, mask: np.ndarray, episodes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> None:
        """Start new episodes in the envs of ``mask``: drawn by the sampler, or ``episodes`` = (clip, first
        frame, last frame) per masked env (evaluation: every clip from its start)."""
        ids = np.flatnonzero(mask)
        if ids.size == 0:
            return
        if episodes is None:
            episodes = self.sampler.sample_episodes(ids.size)
        elif any(len(a) != ids.size for a in episodes):
            raise ValueError(f"TrackingEnv.reset: episodes for {ids.size} envs expected, got "
                             f"{[len(a) for a in episodes]}")
        self.clip[ids], self.frame[ids], self.episode_last[ids] = episodes
        self.episode_len[ids] = 0
        self.max_kp_err[ids] = 0.0
        self.action[ids] = 0.0
        self.last_action[ids] = 0.0
        ref = self.reference(np.array([0]))
        dr = self.cfg.randomization
        m = self.base_model
        qpos, qvel = np.zeros((ids.size, m.nq)), np.zeros((ids.size, m.nv))
        gravity, terrain = np.zeros((ids.size, 3)), []
        for j, i in enumerate(ids):
            if dr.enabled:
                gravity[j], terr = self._draw_randomisation(i)
                terrain.append(terr)
            # Reference state initialisation: the robot starts in the episode's first frame, moving.
            q = ref.joint_pos[i, 0] + self.rng.normal(0, dr.init_joint_noise_rad if dr.enabled else 0.0, 29)
            qpos[j, :3] = ref.root_pos[i, 0] + np.array([0, 0, dr.terrain_height_m if dr.enabled else 0.0])
            qpos[j, 3:7] = ref.root_quat_wxyz[i, 0]
            qpos[j, _NQ0:] = robot.clip_to_limits(q)
            qvel[j, :3] = ref.root_lin_vel[i, 0]
            ang_world = ref.root_ang_vel[i, 0]
            if dr.enabled and (dr.init_root_xy_m > 0 or dr.init_yaw_rad > 0):  # start off the reference
                qpos[j, :2] += self.rng.uniform(-dr.init_root_xy_m, dr.init_root_xy_m, 2)
                turn = _yaw_quat(self.rng.uniform(-dr.init_yaw_rad, dr.init_yaw_rad))
                qpos[j, 3:7] = _quat_mul(turn, qpos[j, 3:7])
                rz = obs_lib.quat_to_rotmat(turn)  # the motion turned with the body: same body-frame velocities
                qvel[j, :3], ang_world = rz @ qvel[j, :3], rz @ ang_world
            rot = obs_lib.quat_to_rotmat(qpos[j, 3:7])
            qvel[j, 3:6] = rot.T @ ang_world  # free joint angular velocity is in the body frame
            qvel[j, _NV0:] = ref.joint_vel[i, 0]
            self.target[i] = qpos[j, _NQ0:]
        if dr.enabled:
            self.physics.randomise(ids, self.friction[ids], self.mass_add[ids], self.com_offset[ids], gravity,
                                   np.array(terrain) if self.terrain else None)
        self.physics.reset_envs(ids, qpos, qvel)
        self.physics.gather(self.state, ids)
        self.history.reset(mask)
        if self.expert is not None:
            self.expert.reset(ids)
        self.context[ids] = 0.0
        self.context_steps[ids] = 0

    # --- stepping ----------------------------------------------------------------------------------
    def step(self, action: np.ndarray):
        n = self.num_envs
        self.last_action[:] = self.action
        if self.feedback is not None:  # the policy's action is net + feedback (what the artifact outputs)
            action = np.asarray(action, dtype=np.float64) + self.feedback.action_delta(self.obs["policy"])
        self.action[:] = np.clip(np.nan_to_num(action, nan=0.0), -10.0, 10.0)
        commanded = self.action_base() + self.action_scale * self.action
        # What deployment applies: the policy node's safety (safety.sanitize_command) clips every position
        # target to the joint limits, so a target past a limit buys no extra torque here either.
        new_target = robot.clip_to_limits(commanded)
        dr = self.cfg.randomization
        # 10 physics steps of the drivers' PD; the first `delay` of them still act on the previous target
        self.physics.step(new_target, self.target, delay_in_steps(self.delay, self.profile), self.strength, self.kp,
                          self.kd, self.effort)
        self.target[:] = new_target
        if self.expert is not None:  # the raw target: an expert's last action in the graph is its raw output
            self.expert.observe_commanded(commanded)
        if dr.enabled:
            self.push_timer -= self.dt
            pushed = np.flatnonzero(self.push_timer <= 0)
            if pushed.size:
                dv = np.zeros((pushed.size, 2))
                for j, i in enumerate(pushed):
                    dv[j] = self.rng.uniform(-dr.push_vel_mps, dr.push_vel_mps, 2)
                    self.push_timer[i] = self.rng.uniform(*dr.push_interval_s)
                self.physics.push(pushed, dv)
        self.frame += 1
        self.episode_len += 1
        self.physics.gather(self.state, np.arange(n))

        ref_now = self.reference(np.array([0]))
        errors = tracking_errors(self.state, ref_now)
        self.max_kp_err = np.maximum(self.max_kp_err, errors["key_body_max_m"])
        terms = reward_terms(self.cfg, self.state, ref_now, errors, self.action, self.last_action)
        terminated = termination(self.cfg, errors, self.sampler.error_threshold(self.clip))
        time_out = (self.frame >= self.episode_last) & ~terminated
        time_out |= (self.episode_len >= self.max_episode_length) & ~terminated
        terms["termination"] = self.cfg.rewards.termination * terminated
        reward = sum(terms.values())
        for k, v in terms.items():
            self.episode_sums.setdefault(k, np.zeros(n))
            self.episode_sums[k] += v

        done = terminated | time_out
        info = {"log": {}}
        if done.any():
            ids = np.flatnonzero(done)
            success = self.frame[ids] >= self.episode_last[ids]
            self.sampler.update(self.clip[ids], success, self.max_kp_err[ids], self.frame[ids])
            lens = np.maximum(self.episode_len[ids], 1)
            for k, v in self.episode_sums.items():
                info["log"][f"/reward/{k}"] = float(np.mean(v[ids] / lens))
                v[ids] = 0.0
            info["log"]["/tracking/success_rate"] = float(np.mean(success))
            info["log"]["/tracking/episode_s"] = float(np.mean(lens) * self.dt)
            self.reset(done)
        info["log"]["/tracking/key_body_err_m"] = float(np.mean(errors["key_body_mean_m"]))
        info["log"]["/tracking/joint_err_rad"] = float(np.mean(errors["joint_rmse_rad"]))
        info["log"]["/sampling/completion_mean"] = float(self.sampler.completion.mean())
        self.obs = self._observe()
        return self.obs, reward.astype(np.float32), terminated, time_out, info

    # --- observations ------------------------------------------------------------------------------
    def _observe(self) -> dict[str, np.ndarray]:
        s, ref = self.state, self.reference()
        policy = obs_lib.compute_observation(
            self.obs_cfg, self.history, base_quat_wxyz=s.imu_quat, base_ang_vel_body=s.imu_gyro,
            joint_pos=s.joint_pos, joint_vel=s.joint_vel, last_action=self.action,
            ref_root_pos=ref.root_pos, ref_root_quat_wxyz=ref.root_quat_wxyz, ref_root_lin_vel=ref.root_lin_vel,
            ref_root_ang_vel=ref.root_ang_vel, ref_joint_pos=ref.joint_pos, ref_key_body_pos=ref.key_body_pos,
            base_pos_world=s.root_pos)
        obs = {"policy": policy, "privileged": self.privileged(ref)}
        if self.expert is not None:
            obs["expert_action"] = self.expert_action(ref, policy)
        if self.keep_context:
            self.context[:, :-1] = self.context[:, 1:]
            self.context[:, -1] = policy
            self.context_steps += 1
            obs["policy_context"] = self.context.copy()
            obs["context_len"] = np.minimum(self.context_steps, self.context_len)[:, None].astype(np.float32)
        return obs

    def expert_action(self, ref: ReferenceBatch, policy_obs: np.ndarray) -> np.ndarray:
        """(N, 29) float32 the motion expert's label in the student's action space: the network output that
        commands the expert's joint target (the balance feedback prior, when on, is added by the env)."""
        # clipped like every applied target (step): the student learns the command that deployment executes
        target = robot.clip_to_limits(self.expert.targets(self.state, ref, self.clip))
        label = (target - self.action_base()) / self.action_scale
        if self.feedback is not None:
            label = label - self.feedback.action_delta(policy_obs)
        return label.astype(np.float32)

    def privileged(self, ref: ReferenceBatch) -> np.ndarray:
        """What only the simulator knows: true velocities, tracking errors, randomised physics."""
        s = self.state
        yaw = obs_lib.yaw_from_quat(s.root_quat)
        lin_vel_heading = obs_lib.rotate_by_yaw(s.root_lin_vel, yaw)
        root_err = obs_lib.rotate_by_yaw(ref.root_pos[:, 0] - s.root_pos, yaw)
        rel = s.key_body_pos - s.root_pos[:, None]
        rel_ref = ref.key_body_pos[:, 0] - ref.root_pos[:, 0][:, None]
        kb_err = obs_lib.rotate_by_yaw(rel_ref - rel, yaw[:, None]).reshape(self.num_envs, -1)
        rp = obs_lib.roll_pitch_from_quat(s.root_quat)
        physics = np.concatenate([self.friction[:, None], self.mass_add[:, None] / 3.0, self.com_offset * 10.0,
                                  self.strength - 1.0, self.delay[:, None] / 10.0], 1)
        return np.concatenate([lin_vel_heading, root_err, kb_err, rp, s.root_pos[:, 2:3], physics], 1).astype(np.float32)


# --- MDP terms: plain functions of state arrays (backend-agnostic) --------------------------------

def _yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def _quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product of wxyz quaternions (a applied after b)."""
    out = np.empty(4)
    mujoco.mju_mulQuat(out, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out


def tracking_errors(s: RobotStateBatch, ref: ReferenceBatch) -> dict[str, np.ndarray]:
    """Errors against reference frame 0 of ``ref`` (the frame the robot should be at now)."""
    rel = s.key_body_pos - s.root_pos[:, None]
    rel_ref = ref.key_body_pos[:, 0] - ref.root_pos[:, 0][:, None]
    # compare pelvis-relative key bodies in each one's heading frame (yaw drift is not an error here)
    rel_h = obs_lib.rotate_by_yaw(rel, obs_lib.yaw_from_quat(s.root_quat)[:, None])
    rel_ref_h = obs_lib.rotate_by_yaw(rel_ref, obs_lib.yaw_from_quat(ref.root_quat_wxyz[:, 0])[:, None])
    kb = np.linalg.norm(rel_h - rel_ref_h, axis=-1)
    up = obs_lib.quat_to_rotmat(s.root_quat)[..., :, 2]
    up_ref = obs_lib.quat_to_rotmat(ref.root_quat_wxyz[:, 0])[..., :, 2]
    return {
        "key_body_mean_m": kb.mean(1),
        "key_body_max_m": kb.max(1),
        "key_body_sq": (kb ** 2).mean(1),
        "joint_sq": ((s.joint_pos - ref.joint_pos[:, 0]) ** 2).sum(1),
        "joint_rmse_rad": np.sqrt(((s.joint_pos - ref.joint_pos[:, 0]) ** 2).mean(1)),
        "orientation_rad": np.arccos(np.clip((up * up_ref).sum(-1), -1.0, 1.0)),
        "height_m": np.abs(s.root_pos[:, 2] - ref.root_pos[:, 0, 2]),
        "lin_vel_sq": ((s.root_lin_vel - ref.root_lin_vel[:, 0]) ** 2).sum(1),
        "root_xy_sq": ((s.root_pos[:, :2] - ref.root_pos[:, 0, :2]) ** 2).sum(1),
        "ang_vel_sq": ((s.root_ang_vel - ref.root_ang_vel[:, 0]) ** 2).sum(1),
    }


KEY_BODY_FRAMES = ("heading", "anchor")


def anchor_key_body_sq(s: RobotStateBatch, ref: ReferenceBatch) -> np.ndarray:
    """(N,) mean squared key-body position error in the body (anchor) frame, BeyondMimic/mjlab style: the
    reference's key bodies relative to its pelvis, turned by the yaw difference and placed at the robot's
    pelvis xy and the reference's pelvis height, against the robot's world key bodies."""
    yaw = obs_lib.yaw_from_quat(s.root_quat)
    d_yaw = yaw - obs_lib.yaw_from_quat(ref.root_quat_wxyz[:, 0])
    rel_ref = ref.key_body_pos[:, 0] - ref.root_pos[:, 0][:, None]
    turned = obs_lib.rotate_by_yaw(rel_ref, -d_yaw[:, None])  # rotate_by_yaw turns by -yaw: this is +d_yaw
    anchor = np.concatenate([s.root_pos[:, :2], ref.root_pos[:, 0, 2:3]], 1)
    err = s.key_body_pos - (anchor[:, None] + turned)
    return (err ** 2).sum(-1).mean(1)


def reward_terms(cfg: EnvCfg, s: RobotStateBatch, ref: ReferenceBatch, e: dict, action, last_action) -> dict:
    r = cfg.rewards
    lower, upper = robot.JOINT_LOWER, robot.JOINT_UPPER
    soft = 0.05 * (upper - lower)
    over = np.clip(s.joint_pos - (upper - soft), 0, None) + np.clip((lower + soft) - s.joint_pos, 0, None)
    return {
        "joint_pos": r.joint_pos * np.exp(-e["joint_sq"] / r.joint_pos_sigma ** 2),
        "key_body_pos": r.key_body_pos * np.exp(-(anchor_key_body_sq(s, ref) if r.key_body_frame == "anchor"
                                                  else e["key_body_sq"]) / r.key_body_sigma_m ** 2),
        "root_orientation": r.root_orientation * np.exp(-e["orientation_rad"] ** 2 / r.root_orientation_sigma ** 2),
        "root_lin_vel": r.root_lin_vel * np.exp(-e["lin_vel_sq"] / r.root_lin_vel_sigma ** 2),
        "root_ang_vel": r.root_ang_vel * np.exp(-e["ang_vel_sq"] / r.root_ang_vel_sigma ** 2),
        "root_pos_xy": r.root_pos_xy * np.exp(-e["root_xy_sq"] / r.root_pos_xy_sigma_m ** 2),
        "action_rate": r.action_rate * ((action - last_action) ** 2).sum(1),
        "joint_limit": r.joint_limit * over.sum(1),
    }


def termination(cfg: EnvCfg, e: dict, key_body_threshold_m: np.ndarray) -> np.ndarray:
    """Fall or lost track: height/orientation error, or the worst key body beyond the clip's adaptive
    GMT threshold (capped by the config's absolute limit)."""
    t = cfg.terminations
    kb_limit = np.minimum(key_body_threshold_m, t.key_body_error_m)
    return (e["height_m"] > t.root_height_error_m) | (e["orientation_rad"] > t.orientation_error_rad) \
        | (e["key_body_max_m"] > kb_limit)
