"""MuJoCo G1 with the motor drivers' PD loop: the physics behind the simulator node and the fake G1.

No ROS in here: the nodes are thin shells over :class:`MujocoG1`, and unit tests call it directly.

What it models, per control tick (50 Hz) = the physics profile's substeps (``g1_description.physics``,
``SimConfig.physics_profile``; ``drivers_500hz``, the default: 10 x 2 ms; ``actuator_200hz``: 4 x 5 ms,
the setting policies trained with the fast training backend and mjlab use):
- the G1's motor drivers: tau = kp*(q_des - q) + kd*(dq_des - dq) + tau_ff on the latest command, at
  every physics step, scaled by the motor's strength and clipped to its effort limit - computed here in
  Python (drivers_500hz) or by MuJoCo's position actuators (actuator_200hz: gains and target written
  into the model when a command becomes active, force clamped by ``actuator_forcerange``);
- action latency: a command takes effect ``action_latency_steps`` x 2 ms after it is set (rounded to
  whole physics steps of the profile);
- the pelvis IMU as the robot reports it (orientation, body-frame gyro, body-frame specific force);
- ground truth for evaluation (pelvis pose/twist, key-body positions), never for the policy;
- pushes (a velocity kick of the pelvis) and seeded domain randomisation of friction, mass, strength.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Sequence

import mujoco
import numpy as np

from g1_description import mjcf, robot
from g1_description import physics as physics_profiles

#: physics steps per control tick of the default profile (drivers_500hz: 10); a MujocoG1's own profile
#: is ``sim.profile`` (``sim.profile.substeps``, ``sim.profile.timestep_s``)
PHYSICS_STEPS_PER_TICK = physics_profiles.get_profile(physics_profiles.DEFAULT_PROFILE).substeps
_FREE_QPOS = 7  # floating base: position (3) + quaternion wxyz (4)
_FREE_QVEL = 6  # floating base: linear velocity (world) + angular velocity (body)
_FIELDS = ("position", "velocity", "kp", "kd", "effort")

log = logging.getLogger(__name__)


class CommandError(ValueError):
    """A joint command that cannot be applied at all (NaN, wrong length, unknown joints)."""


@dataclass(frozen=True)
class MotorCommand:
    """Per-joint PD targets in SDK order (float64 arrays of 29)."""

    position: np.ndarray
    velocity: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    effort: np.ndarray

    @staticmethod
    def damping() -> "MotorCommand":
        """The safe state of the motor drivers: no stiffness, velocity damping only."""
        zeros = np.zeros(robot.NUM_JOINTS)
        return MotorCommand(zeros, zeros, zeros, robot.DAMPING_KD.copy(), zeros)

    @staticmethod
    def hold(position: Sequence[float], kp=robot.STAND_KP, kd=robot.STAND_KD) -> "MotorCommand":
        """Hold ``position`` with stiff gains (default: the stand gains that keep the robot up)."""
        zeros = np.zeros(robot.NUM_JOINTS)
        return MotorCommand(np.array(position, dtype=np.float64), zeros, np.array(kp, dtype=np.float64),
                            np.array(kd, dtype=np.float64), zeros)


#: Damping when joint commands stop for this long: the real driver (``g1_driver``) and the real-time
#: simulator apply the same rule (5 missed 50 Hz ticks). Lockstep simulation needs no such timeout: every
#: tick waits for its own command and damps on the tick that lacks one.
COMMAND_TIMEOUT_S = 0.1


@dataclass(frozen=True)
class CommandLimits:
    """Sanity limits for incoming commands (the stand gains are 350 / 10 at most)."""

    kp_max: float = 500.0
    kd_max: float = 50.0


def validate_command(names: Sequence[str], fields: dict[str, Sequence[float]],
                     limits: CommandLimits = CommandLimits()) -> tuple[MotorCommand, list[str]]:
    """Check a command given as joint names + per-field values; return it in SDK order plus the list of
    things that were clipped. Raises :class:`CommandError` for what cannot be applied at all."""
    names = list(names)
    arrays = {}
    for name in _FIELDS:
        values = np.asarray(fields[name], dtype=np.float64)
        try:
            arrays[name] = (robot.check_joint_vector(values, f"joint_command.{name}")
                            if tuple(names) == robot.JOINT_NAMES
                            else robot.reorder_from_names(names, values, f"joint_command.{name}"))
        except robot.DescriptionError as exc:
            raise CommandError(str(exc)) from exc
        if not np.all(np.isfinite(arrays[name])):
            bad = [robot.JOINT_NAMES[i] for i in np.flatnonzero(~np.isfinite(arrays[name]))]
            raise CommandError(f"joint_command.{name}: NaN or inf for {bad[:3]}")
    notes = []
    arrays["position"] = _clip_noted(arrays["position"], robot.JOINT_LOWER, robot.JOINT_UPPER,
                                     "position beyond joint limits", notes)
    arrays["kp"] = _clip_noted(arrays["kp"], 0.0, limits.kp_max, f"kp outside [0, {limits.kp_max}]", notes)
    arrays["kd"] = _clip_noted(arrays["kd"], 0.0, limits.kd_max, f"kd outside [0, {limits.kd_max}]", notes)
    arrays["effort"] = _clip_noted(arrays["effort"], -robot.EFFORT_LIMIT, robot.EFFORT_LIMIT,
                                   "feed-forward torque beyond effort limits", notes)
    return MotorCommand(**arrays), notes


def _clip_noted(values: np.ndarray, lo, hi, what: str, notes: list[str]) -> np.ndarray:
    clipped = np.clip(values, lo, hi)
    changed = np.flatnonzero(clipped != values)
    if changed.size:
        joints = ", ".join(f"{robot.JOINT_NAMES[i]}={values[i]:.3g}" for i in changed[:3])
        notes.append(f"{what}, clipped: {joints}{' ...' if changed.size > 3 else ''}")
    return clipped


@dataclass(frozen=True)
class Randomization:
    """Seeded domain randomisation, drawn once per simulator instance (uniform scale ranges)."""

    enabled: bool = False
    friction_scale: tuple[float, float] = (0.7, 1.3)      # sliding friction of every geom
    mass_scale: tuple[float, float] = (0.9, 1.1)          # mass (and inertia) of every body
    motor_strength_scale: tuple[float, float] = (0.9, 1.1)  # torque output and limit of every motor


@dataclass(frozen=True)
class SimConfig:
    seed: int = 0
    action_latency_steps: int = 0  # 2 ms units between setting a command and its effect (profile-rounded)
    physics_profile: str = physics_profiles.DEFAULT_PROFILE  # g1_description.physics
    randomization: Randomization = field(default_factory=Randomization)
    limits: CommandLimits = field(default_factory=CommandLimits)


@dataclass(frozen=True)
class ImuReading:
    quat_wxyz: np.ndarray        # pelvis orientation in the world (gravity-aligned) frame
    angular_velocity: np.ndarray  # rad/s, IMU frame
    linear_acceleration: np.ndarray  # m/s^2, IMU frame, specific force (+9.81 up when at rest)


@dataclass(frozen=True)
class GroundTruth:
    position: np.ndarray          # pelvis origin, world, m
    quat_wxyz: np.ndarray         # pelvis orientation, world
    linear_velocity: np.ndarray   # m/s, pelvis frame (ROS Odometry twist convention)
    angular_velocity: np.ndarray  # rad/s, pelvis frame
    key_body_positions: np.ndarray  # (len(KEY_BODIES), 3), world, m


class MujocoG1:
    """The simulated G1: physics, motor PD, sensors. One control tick at a time, deterministic."""

    def __init__(self, config: SimConfig = SimConfig(), warn: Callable[[str], None] | None = None):
        self.config = config
        self._warn = warn or log.warning
        self.profile = physics_profiles.get_profile(config.physics_profile)
        self._actuator_pd = self.profile.pd == physics_profiles.PD_ACTUATOR
        self._latency_steps = int(self.profile.delay_steps(config.action_latency_steps))
        self.model = mjcf.build_sim_model(profile=self.profile)
        self.data = mujoco.MjData(self.model)
        self._check_layout()
        self._imu_site = self.model.site(robot.IMU_SITE).id
        self._gyro_adr = self._sensor_adr(mujoco.mjtSensor.mjSENS_GYRO)
        self._accel_adr = self._sensor_adr(mujoco.mjtSensor.mjSENS_ACCELEROMETER)
        self._key_body_ids = np.array([self.model.body(n).id for n in robot.KEY_BODIES])
        self._foot_geoms = self._foot_contact_geoms()
        self.motor_strength = np.ones(robot.NUM_JOINTS)
        self._randomize(np.random.default_rng(config.seed))
        self._effort_limit = robot.EFFORT_LIMIT * self.motor_strength
        if self._actuator_pd:
            self.model.actuator_forcerange[:, 0], self.model.actuator_forcerange[:, 1] = \
                -self._effort_limit, self._effort_limit
        self._gains_of: MotorCommand | None = None  # the command whose PD the actuators hold
        self.command = MotorCommand.damping()
        self._pending: deque[tuple[int, MotorCommand]] = deque()
        self.physics_step_count = 0
        self.tick = 0
        self.last_torque = np.zeros(robot.NUM_JOINTS)
        self.reset_standing()

    # --- set-up ---------------------------------------------------------------------------------

    def _check_layout(self) -> None:
        """The PD loop writes ctrl[i] for joint i: actuators must be torque motors in SDK order."""
        m = self.model
        if m.nq != _FREE_QPOS + robot.NUM_JOINTS or m.nu != robot.NUM_JOINTS:
            raise robot.DescriptionError(f"sim model has nq={m.nq}, nu={m.nu}; expected a floating base "
                                         f"and {robot.NUM_JOINTS} actuated joints")
        targets = [m.joint(m.actuator_trnid[i, 0]).name for i in range(m.nu)]
        if tuple(targets) != robot.JOINT_NAMES:
            raise robot.DescriptionError("sim model actuators are not in SDK joint order")

    def _sensor_adr(self, kind) -> int:
        for i in range(self.model.nsensor):
            if self.model.sensor_type[i] == kind and self.model.sensor_objid[i] == self._imu_site \
                    and self.model.sensor_objtype[i] == mujoco.mjtObj.mjOBJ_SITE:
                return int(self.model.sensor_adr[i])
        raise robot.DescriptionError(f"sim model has no {kind.name} sensor on site {robot.IMU_SITE!r}")

    def _foot_contact_geoms(self) -> np.ndarray:
        m = self.model
        feet = {m.body(n).id for n in ("left_ankle_roll_link", "right_ankle_roll_link")}
        geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] in feet and m.geom_contype[g]
                 and m.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE]
        if not geoms:
            raise robot.DescriptionError("sim model has no sphere contact geoms on the feet")
        return np.array(geoms)

    def _randomize(self, rng: np.random.Generator) -> None:
        r = self.config.randomization
        if not r.enabled:
            return
        m = self.model
        m.geom_friction[:, 0] *= rng.uniform(*r.friction_scale, size=m.ngeom)
        scale = rng.uniform(*r.mass_scale, size=m.nbody)
        scale[0] = 1.0  # the world body
        m.body_mass[:] *= scale
        m.body_inertia[:] *= scale[:, None]
        self.motor_strength = rng.uniform(*r.motor_strength_scale, size=robot.NUM_JOINTS)
        mujoco.mj_setConst(m, self.data)

    # --- state ------------------------------------------------------------------------------------

    @property
    def sim_time_s(self) -> float:
        return self.data.time

    @property
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[_FREE_QPOS:].copy()

    @property
    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[_FREE_QVEL:].copy()

    def reset_standing(self, joint_positions: Sequence[float] | None = None, xy=(0.0, 0.0),
                       yaw_rad: float = 0.0) -> None:
        """Joints at ``joint_positions`` (default pose), at rest, lowered until the feet touch the floor."""
        q = robot.DEFAULT_JOINT_POS if joint_positions is None else robot.check_joint_vector(joint_positions)
        quat = np.array([np.cos(yaw_rad / 2), 0.0, 0.0, np.sin(yaw_rad / 2)])
        self.reset_to(np.array([xy[0], xy[1], 1.0]), quat, q)
        lowest = np.min(self.data.geom_xpos[self._foot_geoms, 2] - self.model.geom_size[self._foot_geoms, 0])
        self.data.qpos[2] -= lowest
        mujoco.mj_forward(self.model, self.data)

    def reset_to(self, root_position, root_quat_wxyz, joint_positions) -> None:
        """An explicit pose at rest. Keeps the command, time and tick counter (time never jumps back)."""
        quat = np.asarray(root_quat_wxyz, dtype=np.float64)
        if not 0.9 < np.linalg.norm(quat) < 1.1:
            raise ValueError(f"reset: root orientation quaternion has norm {np.linalg.norm(quat):.3f}, not 1")
        q = robot.check_joint_vector(joint_positions, "reset joint_positions")
        if not np.all(np.isfinite(q)) or not np.all(np.isfinite(root_position)):
            raise ValueError("reset: NaN or inf in the pose")
        time_s = self.data.time
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = time_s
        self.data.qpos[:3] = root_position
        self.data.qpos[3:7] = quat / np.linalg.norm(quat)
        self.data.qpos[_FREE_QPOS:] = robot.clip_to_limits(q)
        mujoco.mj_forward(self.model, self.data)

    # --- commands ---------------------------------------------------------------------------------

    def set_command(self, command: MotorCommand) -> None:
        """Queue ``command``; it replaces the active one after the configured action latency."""
        effective = self.physics_step_count + self._latency_steps
        self._pending.append((effective, command))

    def apply_command(self, names: Sequence[str], fields: dict[str, Sequence[float]]) -> bool:
        """Validate and queue a command. On rejection log why and keep the previous one (initially
        damping). Out-of-range values are clipped with a logged reason. Returns whether accepted."""
        try:
            command, notes = validate_command(names, fields, self.config.limits)
        except CommandError as exc:
            self._warn(f"command rejected, keeping the previous command: {exc}")
            return False
        for note in notes:
            self._warn(f"command {note}")
        self.set_command(command)
        return True

    def damp(self) -> None:
        """Switch to damping now (no latency: this is what the motor drivers do on a timeout)."""
        self._pending.clear()
        self.command = MotorCommand.damping()

    # --- stepping ---------------------------------------------------------------------------------

    def step_physics(self) -> None:
        """One physics step (the profile's ``timestep_s``) with the motor PD on the active command."""
        while self._pending and self._pending[0][0] <= self.physics_step_count:
            self.command = self._pending.popleft()[1]
        if self._actuator_pd:
            self._actuator_command()
            mujoco.mj_step(self.model, self.data)
            self.last_torque = self.data.actuator_force.copy()
        else:
            self.data.ctrl[:] = self._pd_torque()
            mujoco.mj_step(self.model, self.data)
        self.physics_step_count += 1

    def step_tick(self) -> None:
        """One control tick (20 ms): the profile's ``substeps`` physics steps."""
        for _ in range(self.profile.substeps):
            self.step_physics()
        self.finish_tick()

    def finish_tick(self) -> None:
        """Close a control tick after its physics steps (the real-time loop paces them itself)."""
        # mj_step leaves positions, sensors and body poses one step behind the integrated state;
        # recompute them so that what is published for this tick is the state at this tick.
        mujoco.mj_forward(self.model, self.data)
        self.tick += 1

    def _actuator_command(self) -> None:
        """The drivers' PD as position actuators: force = kp q* + (kd dq* + tau_ff) - kp q - kd dq, all
        scaled by the motor strength (the force range is the strength-scaled effort limit)."""
        c = self.command
        if c is not self._gains_of:
            st, m = self.motor_strength, self.model
            m.actuator_gainprm[:, 0] = c.kp * st
            m.actuator_biasprm[:, 0] = (c.kd * c.velocity + c.effort) * st
            m.actuator_biasprm[:, 1] = -c.kp * st
            m.actuator_biasprm[:, 2] = -c.kd * st
            self._gains_of = c
        self.data.ctrl[:] = c.position  # every step: a reset clears ctrl

    def _pd_torque(self) -> np.ndarray:
        c, d = self.command, self.data
        tau = c.kp * (c.position - d.qpos[_FREE_QPOS:]) + c.kd * (c.velocity - d.qvel[_FREE_QVEL:]) + c.effort
        self.last_torque = np.clip(tau * self.motor_strength, -self._effort_limit, self._effort_limit)
        return self.last_torque

    def push(self, linear_velocity_world, angular_velocity_world=(0.0, 0.0, 0.0)) -> None:
        """A velocity kick of the pelvis (world frame), like an external push."""
        dv, dw = np.asarray(linear_velocity_world, float), np.asarray(angular_velocity_world, float)
        if not (np.all(np.isfinite(dv)) and np.all(np.isfinite(dw))):
            raise ValueError("push: NaN or inf in the velocity change")
        self.data.qvel[:3] += dv
        self.data.qvel[3:6] += self._pelvis_rotation().T @ dw  # free-joint angular velocity is body-frame

    # --- readouts ---------------------------------------------------------------------------------

    def _pelvis_rotation(self) -> np.ndarray:
        mat = np.empty(9)
        mujoco.mju_quat2Mat(mat, self.data.qpos[3:7])
        return mat.reshape(3, 3)

    def imu(self) -> ImuReading:
        """The pelvis IMU: orientation of the IMU site, gyro and accelerometer sensors of the model
        (as of the end of the last tick or reset)."""
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self.data.site_xmat[self._imu_site])
        s = self.data.sensordata
        return ImuReading(quat, s[self._gyro_adr:self._gyro_adr + 3].copy(),
                          s[self._accel_adr:self._accel_adr + 3].copy())

    def ground_truth(self) -> GroundTruth:
        rot = self._pelvis_rotation()
        return GroundTruth(
            position=self.data.qpos[:3].copy(), quat_wxyz=self.data.qpos[3:7].copy(),
            linear_velocity=rot.T @ self.data.qvel[:3], angular_velocity=self.data.qvel[3:6].copy(),
            key_body_positions=self.data.xpos[self._key_body_ids].copy())

    def state_bytes(self) -> bytes:
        """The full physical state, for bit-identical comparisons of runs."""
        return self.data.qpos.tobytes() + self.data.qvel.tobytes() + self.data.act.tobytes()
