"""Physics backends of the tracking task: the only code that touches a simulator.

:class:`g1_train.env.TrackingEnv` owns the MDP (reference sampling, randomisation draws, observations,
rewards, terminations: plain numpy functions of a :class:`~g1_train.env.RobotStateBatch`) and drives a
backend through five calls:

- ``randomise(ids, friction, mass_add, com_offset, gravity, terrain)``: per-env model parameters;
- ``reset_envs(ids, qpos, qvel)``: reset those envs' simulation state to (qpos, qvel), then forward;
- ``step(new_target, prev_target, delay, strength, kp, kd, effort)``: one 50 Hz control step = the
  physics profile's substeps (``g1_description.physics``; drivers_500hz: 10 x 2 ms, actuator_200hz:
  4 x 5 ms) of the G1 drivers' PD, ``tau = strength * (kp (q* - q) - kd dq)`` clipped to +-effort,
  where q* is ``prev_target`` for the env's first ``delay`` physics steps and ``new_target`` after; then
  sensors and body poses are computed for the final state;
- ``push(ids, dv_xy)``: add a velocity kick to the pelvis' world x/y velocity;
- ``gather(state, ids)``: write rows ``ids`` of the RobotStateBatch (root pose, world linear and angular
  velocity, IMU site orientation, IMU-frame gyro, joints, key-body positions).

Backends: ``batch`` (:class:`g1_train.physics_batch.BatchPhysics`: MuJoCo 4's ``mujoco.batch``, one
model, per-env randomised fields, a C++ thread pool; the default), ``mujoco`` (:class:`CMujocoPhysics`:
one C-MuJoCo MjData per env, stepped in a Python loop; the reference, and per-env terrain) and ``warp``
(:class:`g1_train.physics_warp.WarpPhysics`: MuJoCo-Warp with one world per env, PD on the device,
graph-captured substeps; built for GPUs, also runs on CPU).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Protocol, Sequence

import mujoco
import numpy as np

from g1_description import physics as profiles
from g1_description import robot

if TYPE_CHECKING:  # env imports this module; avoid the cycle at run time
    from .config import EnvCfg
    from .env import RobotStateBatch

#: physics steps per control tick of the C-MuJoCo and warp backends (profile drivers_500hz: 10)
PHYSICS_STEPS = profiles.get_profile(profiles.DEFAULT_PROFILE).substeps
NQ0, NV0 = 7, 6  # floating-base entries of qpos / qvel; joint j is qpos[7 + j], qvel[6 + j], ctrl[j]
BACKENDS = ("batch", "mujoco", "warp")


class Physics(Protocol):
    """What TrackingEnv needs from a simulator (see the module docstring for the semantics)."""

    num_envs: int
    name: str

    def randomise(self, ids: np.ndarray, friction: np.ndarray, mass_add: np.ndarray, com_offset: np.ndarray,
                  gravity: np.ndarray, terrain: np.ndarray | None = None) -> None: ...

    def reset_envs(self, ids: np.ndarray, qpos: np.ndarray, qvel: np.ndarray) -> None: ...

    def step(self, new_target: np.ndarray, prev_target: np.ndarray, delay: np.ndarray, strength: np.ndarray,
             kp: np.ndarray, kd: np.ndarray, effort: np.ndarray) -> None: ...

    def push(self, ids: np.ndarray, dv_xy: np.ndarray) -> None: ...

    def gather(self, state: "RobotStateBatch", ids: Sequence[int] | np.ndarray) -> None: ...


class ModelIds:
    """Indices into the model that the backends read (one source for both)."""

    def __init__(self, model: mujoco.MjModel, key_body_names: Sequence[str]):
        self.imu_site = model.site(robot.IMU_SITE).id
        self.gyro_adr = next(int(model.sensor_adr[i]) for i in range(model.nsensor)
                             if model.sensor_type[i] == mujoco.mjtSensor.mjSENS_GYRO
                             and model.sensor_objid[i] == self.imu_site)
        self.pelvis_id = model.body(robot.ROOT_BODY).id
        self.torso_id = model.body("torso_link").id
        self.key_ids = np.array([model.body(b).id for b in key_body_names])
        # the PD writes ctrl[j] for joint j: check that actuator j drives the j-th hinge after the free joint
        jnt = model.actuator_trnid[:, 0]
        if model.nu != robot.NUM_JOINTS or not np.array_equal(model.jnt_dofadr[jnt], NV0 + np.arange(model.nu)):
            raise ValueError("training model: actuator j must drive joint j (qvel index 6 + j); got actuator "
                             f"dof addresses {model.jnt_dofadr[jnt].tolist()}")


def mat_to_quat_wxyz(mat: np.ndarray) -> np.ndarray:
    """(..., 9) row-major rotation matrices -> (..., 4) wxyz quaternions, the branches of C MuJoCo's
    ``mju_mat2Quat`` (so both backends report the same sign for the same orientation)."""
    m = np.asarray(mat, dtype=np.float64).reshape(-1, 9)
    q = np.zeros((m.shape[0], 4))
    tr = m[:, 0] + m[:, 4] + m[:, 8]
    c0 = tr > 0
    c1 = ~c0 & (m[:, 0] > m[:, 4]) & (m[:, 0] > m[:, 8])
    c2 = ~c0 & ~c1 & (m[:, 4] > m[:, 8])
    c3 = ~c0 & ~c1 & ~c2
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 0.5 * np.sqrt(np.maximum(1 + tr, 0))
        q[c0] = np.stack([s, 0.25 * (m[:, 7] - m[:, 5]) / s, 0.25 * (m[:, 2] - m[:, 6]) / s,
                          0.25 * (m[:, 3] - m[:, 1]) / s], 1)[c0]
        s = 0.5 * np.sqrt(np.maximum(1 + m[:, 0] - m[:, 4] - m[:, 8], 0))
        q[c1] = np.stack([0.25 * (m[:, 7] - m[:, 5]) / s, s, 0.25 * (m[:, 1] + m[:, 3]) / s,
                          0.25 * (m[:, 2] + m[:, 6]) / s], 1)[c1]
        s = 0.5 * np.sqrt(np.maximum(1 - m[:, 0] + m[:, 4] - m[:, 8], 0))
        q[c2] = np.stack([0.25 * (m[:, 2] - m[:, 6]) / s, 0.25 * (m[:, 1] + m[:, 3]) / s, s,
                          0.25 * (m[:, 5] + m[:, 7]) / s], 1)[c2]
        s = 0.5 * np.sqrt(np.maximum(1 - m[:, 0] - m[:, 4] + m[:, 8], 0))
        q[c3] = np.stack([0.25 * (m[:, 3] - m[:, 1]) / s, 0.25 * (m[:, 2] + m[:, 6]) / s,
                          0.25 * (m[:, 5] + m[:, 7]) / s, s], 1)[c3]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return q.reshape(np.shape(mat)[:-1] + (4,)) if np.ndim(mat) > 1 else q[0]


class CMujocoPhysics:
    """C MuJoCo: one MjData per env (and one MjModel per env when randomised), Python loops.

    Fastest on few-core CPU machines (no kernel launch overhead, float64); scales only with CPU cores.
    """

    name = "mujoco"

    def __init__(self, model: mujoco.MjModel, num_envs: int, key_body_names: Sequence[str], per_env_models: bool):
        self.base_model = model
        self.num_envs = num_envs
        self.ids = ModelIds(model, key_body_names)
        # Per-env model copies: friction, masses, gravity and terrain differ per env.
        self.models = [copy.deepcopy(model) for _ in range(num_envs)] if per_env_models else [model] * num_envs
        self.per_env_models = per_env_models
        self.datas = [mujoco.MjData(m) for m in self.models]
        self._nominal = (model.body_mass[self.ids.torso_id], model.body_ipos[self.ids.torso_id].copy())

    def randomise(self, ids, friction, mass_add, com_offset, gravity, terrain=None) -> None:
        if not self.per_env_models:
            raise RuntimeError("CMujocoPhysics.randomise: built with shared models (randomisation disabled)")
        mass, ipos = self._nominal
        torso = self.ids.torso_id
        for j, i in enumerate(ids):
            model = self.models[i]
            model.geom_friction[:, 0] = friction[j]
            model.body_mass[torso] = mass + mass_add[j]
            model.body_ipos[torso] = ipos + com_offset[j]
            model.opt.gravity[:] = gravity[j]
            if model.nhfield and terrain is not None:
                model.hfield_data[:] = terrain[j]

    def reset_envs(self, ids, qpos, qvel) -> None:
        for j, i in enumerate(ids):
            d, model = self.datas[i], self.models[i]
            mujoco.mj_resetData(model, d)
            d.qpos[:] = qpos[j]
            d.qvel[:] = qvel[j]
            mujoco.mj_forward(model, d)

    def step(self, new_target, prev_target, delay, strength, kp, kd, effort) -> None:
        for i in range(self.num_envs):
            d, model, st = self.datas[i], self.models[i], strength[i]
            for k in range(PHYSICS_STEPS):
                # Action delay: the drivers keep the previous target for `delay` physics steps.
                tgt = prev_target[i] if k < delay[i] else new_target[i]
                tau = st * (kp * (tgt - d.qpos[NQ0:]) - kd * d.qvel[NV0:])
                d.ctrl[:] = np.clip(tau, -effort, effort)
                mujoco.mj_step(model, d)
            mujoco.mj_forward(model, d)  # sensors and body poses of the state at this tick

    def push(self, ids, dv_xy) -> None:
        for j, i in enumerate(ids):
            self.datas[i].qvel[:2] += dv_xy[j]

    def gather(self, state, ids) -> None:
        s, mi = state, self.ids
        quat = np.zeros(4)
        for i in ids:
            d = self.datas[i]
            s.root_pos[i] = d.qpos[:3]
            s.root_quat[i] = d.qpos[3:7]
            s.root_lin_vel[i] = d.qvel[:3]
            s.root_ang_vel[i] = d.xmat[mi.pelvis_id].reshape(3, 3) @ d.qvel[3:6]
            mujoco.mju_mat2Quat(quat, d.site_xmat[mi.imu_site])
            s.imu_quat[i] = quat
            s.imu_gyro[i] = d.sensordata[mi.gyro_adr:mi.gyro_adr + 3]
            s.joint_pos[i] = d.qpos[NQ0:]
            s.joint_vel[i] = d.qvel[NV0:]
            s.key_body_pos[i] = d.xpos[mi.key_ids]


#: each backend's physics profile when ``env.physics_profile`` is empty, and the profiles it can run
BACKEND_PROFILES = {"batch": (profiles.TRAINING_PROFILE, tuple(profiles.PROFILES)),
                    "mujoco": (profiles.DEFAULT_PROFILE, (profiles.DEFAULT_PROFILE,)),
                    "warp": (profiles.DEFAULT_PROFILE, (profiles.DEFAULT_PROFILE,))}


def resolve_profile(cfg: "EnvCfg") -> profiles.PhysicsProfile:
    """The physics profile ``cfg`` simulates with (``env.physics_profile``, or the backend's default)."""
    if cfg.backend not in BACKEND_PROFILES:
        raise ValueError(f"env.backend {cfg.backend!r}: expected one of {BACKENDS}")
    default, supported = BACKEND_PROFILES[cfg.backend]
    prof = profiles.get_profile(cfg.physics_profile or default)
    if prof.name not in supported:
        raise ValueError(f"env.physics_profile {prof.name!r}: env.backend {cfg.backend} simulates only "
                         f"{list(supported)}; use env.backend: batch for {prof.name}")
    return prof


def delay_in_steps(delay: np.ndarray, profile: profiles.PhysicsProfile) -> np.ndarray:
    """Action delays drawn in 2 ms units as whole physics steps of ``profile`` (rounded; at most a tick)."""
    return np.minimum(profile.delay_steps(delay), profile.substeps)


def make_physics(cfg: "EnvCfg", model: mujoco.MjModel, key_body_names: Sequence[str]) -> Physics:
    """The backend named by ``cfg.backend`` for ``cfg.num_envs`` envs of ``model`` (built with
    :func:`resolve_profile`'s profile)."""
    randomised = cfg.randomization.enabled
    prof = resolve_profile(cfg)
    if cfg.backend == "batch":
        from .physics_batch import BatchPhysics
        return BatchPhysics(model, cfg.num_envs, key_body_names, randomised=randomised, profile=prof,
                            nthread=cfg.batch_threads)
    if cfg.backend == "mujoco":
        return CMujocoPhysics(model, cfg.num_envs, key_body_names, per_env_models=randomised)
    try:
        from . import physics_warp
    except ImportError as e:
        raise ImportError(
            f"env.backend: warp needs mujoco-warp and warp-lang ({e}); install the training workspace's "
            "requirements (bash src/training_ws/setup.sh) or choose env.backend: batch") from e
    return physics_warp.WarpPhysics(model, cfg.num_envs, key_body_names, randomised=randomised,
                                    device=cfg.warp_device, nconmax=cfg.warp_nconmax, njmax=cfg.warp_njmax,
                                    graph=cfg.warp_graph)
