"""The Unitree G1 (29 DoF, rev 1.0): the one place that defines joints, limits and gains.

Everything in the stack (simulator, real driver, motion library, observation builder, training,
evaluation) imports these constants; nothing else may hard-code a joint order or a gain.

Joint order is the Unitree SDK motor order 0..28, which is also the MJCF depth-first order:
left leg, right leg (hip pitch/roll/yaw, knee, ankle pitch/roll), waist yaw/roll/pitch,
left arm, right arm (shoulder pitch/roll/yaw, elbow, wrist roll/pitch/yaw).

Sources of the numbers (facts, not copied code):
- position limits, axes, effort limits: MuJoCo Menagerie ``unitree_g1`` (g1.xml); tests check them.
- armature per motor: Menagerie ``g1_mjx.xml``.
- kp/kd: kp = armature * (2*pi*10 Hz)^2, kd = 2 * 2.0 * armature * 2*pi*10 Hz (the natural frequency /
  damping-ratio rule used by BeyondMimic and mjlab), computed below from the armature.
- velocity limits: Unitree's own URDF (g1_29dof_rev_1_0.urdf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

NUM_JOINTS = 29
CONTROL_RATE_HZ = 50.0
CONTROL_PERIOD_S = 1.0 / CONTROL_RATE_HZ
PHYSICS_DT_S = 0.002  # 500 Hz, the rate of the G1's motor PD loop in our simulator
#: Number of motor slots in Unitree's LowCmd_/LowState_ (unitree_hg); slots 29..34 are unused on G1-29.
SDK_MOTOR_SLOTS = 35


@dataclass(frozen=True)
class Motor:
    """A G1 actuator type: reflected rotor inertia and the torque it can give."""

    name: str
    armature_kgm2: float
    effort_limit_nm: float
    velocity_limit_rads: float


# Natural frequency and damping ratio of the position loop that the gains are derived from.
_NATURAL_FREQ_RAD_S = 2.0 * math.pi * 10.0
_DAMPING_RATIO = 2.0

MOTORS = {
    "7520-14": Motor("7520-14", 0.01017752004, 88.0, 32.0),
    "7520-22": Motor("7520-22", 0.025101925, 139.0, 20.0),
    "5020": Motor("5020", 0.003609725, 25.0, 37.0),
    "4010": Motor("4010", 0.00425, 5.0, 22.0),
    # Waist roll/pitch and ankles are driven by two 5020 motors through a linkage.
    "2x5020": Motor("2x5020", 0.00721945, 50.0, 30.0),
}


@dataclass(frozen=True)
class Joint:
    """One actuated joint, in SDK order (``index`` is the motor slot)."""

    index: int
    name: str
    motor: str
    lower_rad: float
    upper_rad: float
    axis: tuple[float, float, float]
    default_rad: float

    @property
    def armature(self) -> float:
        return MOTORS[self.motor].armature_kgm2

    @property
    def kp(self) -> float:
        return self.armature * _NATURAL_FREQ_RAD_S**2

    @property
    def kd(self) -> float:
        return 2.0 * _DAMPING_RATIO * self.armature * _NATURAL_FREQ_RAD_S

    @property
    def effort_limit(self) -> float:
        return MOTORS[self.motor].effort_limit_nm

    @property
    def velocity_limit(self) -> float:
        return MOTORS[self.motor].velocity_limit_rads


_X, _Y, _Z = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)

# The default standing pose: knees slightly bent, arms relaxed (the pose BeyondMimic/mjlab train from).
JOINTS: tuple[Joint, ...] = (
    Joint(0, "left_hip_pitch_joint", "7520-14", -2.5307, 2.8798, _Y, -0.312),
    Joint(1, "left_hip_roll_joint", "7520-22", -0.5236, 2.9671, _X, 0.0),
    Joint(2, "left_hip_yaw_joint", "7520-14", -2.7576, 2.7576, _Z, 0.0),
    Joint(3, "left_knee_joint", "7520-22", -0.087267, 2.8798, _Y, 0.669),
    Joint(4, "left_ankle_pitch_joint", "2x5020", -0.87267, 0.5236, _Y, -0.363),
    Joint(5, "left_ankle_roll_joint", "2x5020", -0.2618, 0.2618, _X, 0.0),
    Joint(6, "right_hip_pitch_joint", "7520-14", -2.5307, 2.8798, _Y, -0.312),
    Joint(7, "right_hip_roll_joint", "7520-22", -2.9671, 0.5236, _X, 0.0),
    Joint(8, "right_hip_yaw_joint", "7520-14", -2.7576, 2.7576, _Z, 0.0),
    Joint(9, "right_knee_joint", "7520-22", -0.087267, 2.8798, _Y, 0.669),
    Joint(10, "right_ankle_pitch_joint", "2x5020", -0.87267, 0.5236, _Y, -0.363),
    Joint(11, "right_ankle_roll_joint", "2x5020", -0.2618, 0.2618, _X, 0.0),
    Joint(12, "waist_yaw_joint", "7520-14", -2.618, 2.618, _Z, 0.0),
    Joint(13, "waist_roll_joint", "2x5020", -0.52, 0.52, _X, 0.0),
    Joint(14, "waist_pitch_joint", "2x5020", -0.52, 0.52, _Y, 0.0),
    Joint(15, "left_shoulder_pitch_joint", "5020", -3.0892, 2.6704, _Y, 0.2),
    Joint(16, "left_shoulder_roll_joint", "5020", -1.5882, 2.2515, _X, 0.2),
    Joint(17, "left_shoulder_yaw_joint", "5020", -2.618, 2.618, _Z, 0.0),
    Joint(18, "left_elbow_joint", "5020", -1.0472, 2.0944, _Y, 0.6),
    Joint(19, "left_wrist_roll_joint", "5020", -1.97222, 1.97222, _X, 0.0),
    Joint(20, "left_wrist_pitch_joint", "4010", -1.61443, 1.61443, _Y, 0.0),
    Joint(21, "left_wrist_yaw_joint", "4010", -1.61443, 1.61443, _Z, 0.0),
    Joint(22, "right_shoulder_pitch_joint", "5020", -3.0892, 2.6704, _Y, 0.2),
    Joint(23, "right_shoulder_roll_joint", "5020", -2.2515, 1.5882, _X, -0.2),
    Joint(24, "right_shoulder_yaw_joint", "5020", -2.618, 2.618, _Z, 0.0),
    Joint(25, "right_elbow_joint", "5020", -1.0472, 2.0944, _Y, 0.6),
    Joint(26, "right_wrist_roll_joint", "5020", -1.97222, 1.97222, _X, 0.0),
    Joint(27, "right_wrist_pitch_joint", "4010", -1.61443, 1.61443, _Y, 0.0),
    Joint(28, "right_wrist_yaw_joint", "4010", -1.61443, 1.61443, _Z, 0.0),
)

JOINT_NAMES: tuple[str, ...] = tuple(j.name for j in JOINTS)
JOINT_INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}

# Arrays in SDK order (float64). Treat as read-only.
DEFAULT_JOINT_POS = np.array([j.default_rad for j in JOINTS])
JOINT_LOWER = np.array([j.lower_rad for j in JOINTS])
JOINT_UPPER = np.array([j.upper_rad for j in JOINTS])
KP = np.array([j.kp for j in JOINTS])
KD = np.array([j.kd for j in JOINTS])
EFFORT_LIMIT = np.array([j.effort_limit for j in JOINTS])
VELOCITY_LIMIT = np.array([j.velocity_limit for j in JOINTS])
ARMATURE = np.array([j.armature for j in JOINTS])
for _a in (DEFAULT_JOINT_POS, JOINT_LOWER, JOINT_UPPER, KP, KD, EFFORT_LIMIT, VELOCITY_LIMIT, ARMATURE):
    _a.setflags(write=False)

#: Gains for holding a pose without a balancing policy (stand / hold / ramps). The realistic gains
#: above cannot hold the robot up by PD alone (it collapses in 2-4 s), so standing uses stiffer ones.
STAND_KP = np.clip(KP * 4.0, 60.0, 350.0)
STAND_KP[[20, 21, 27, 28]] = 20.0  # 4010 wrist motors: 5 N·m, stiff gains only saturate
# Ankles: the body's centre of mass sits in front of the ankles; at 4x28.5 N·m/rad the robot tips
# forward and falls within 2 s (measured in MuJoCo), at 300 it stands (< 1 cm drift over 10 s).
STAND_KP[[4, 5, 10, 11]] = 300.0
STAND_KD = np.clip(KD * 2.0, 2.0, 10.0)
STAND_KD[[20, 21, 27, 28]] = 1.0
STAND_KP.setflags(write=False)
STAND_KD.setflags(write=False)

#: Damping mode (PASSIVE/DAMP): no position stiffness, velocity damping only.
DAMPING_KD = np.full(NUM_JOINTS, 2.0)
DAMPING_KD[[20, 21, 27, 28]] = 0.5
DAMPING_KD.setflags(write=False)

ROOT_BODY = "pelvis"
IMU_SITE = "imu_in_pelvis"
#: Standing pelvis height (m) in the default pose with feet flat on the ground (checked in tests).
DEFAULT_ROOT_HEIGHT_M = 0.757

#: Key bodies whose positions the reference window carries and the evaluator scores (E_mpkpe).
KEY_BODIES: tuple[str, ...] = (
    "pelvis",
    "left_hip_roll_link",
    "left_knee_link",
    "left_ankle_roll_link",
    "right_hip_roll_link",
    "right_knee_link",
    "right_ankle_roll_link",
    "torso_link",
    "left_shoulder_roll_link",
    "left_elbow_link",
    "left_wrist_yaw_link",
    "right_shoulder_roll_link",
    "right_elbow_link",
    "right_wrist_yaw_link",
)


class DescriptionError(ValueError):
    """Input that does not fit the G1 description (wrong joint count, unknown joint names, ...)."""


def check_joint_vector(values: Sequence[float], what: str = "joint vector") -> np.ndarray:
    """Return ``values`` as a float64 array of the 29 joints, or raise a clear ``DescriptionError``."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (NUM_JOINTS,):
        raise DescriptionError(
            f"{what}: expected {NUM_JOINTS} values in G1 SDK joint order, got shape {arr.shape}"
        )
    return arr


def reorder_from_names(names: Sequence[str], values: Sequence[float], what: str = "joint vector") -> np.ndarray:
    """Map ``values`` given for ``names`` (any order) onto SDK order; every G1 joint must be present."""
    if len(names) != len(values):
        raise DescriptionError(f"{what}: {len(names)} joint names but {len(values)} values")
    unknown = [n for n in names if n not in JOINT_INDEX]
    if unknown:
        raise DescriptionError(f"{what}: unknown joint names {unknown[:5]} (expected G1 names such as "
                               f"'{JOINT_NAMES[0]}')")
    if len(set(names)) != len(names):
        raise DescriptionError(f"{what}: duplicate joint names")
    missing = [n for n in JOINT_NAMES if n not in set(names)]
    if missing:
        raise DescriptionError(f"{what}: missing joints {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    out = np.empty(NUM_JOINTS)
    for n, v in zip(names, values):
        out[JOINT_INDEX[n]] = v
    return out


def clip_to_limits(q: np.ndarray) -> np.ndarray:
    """Clip joint positions (SDK order) to the joint position limits."""
    return np.clip(q, JOINT_LOWER, JOINT_UPPER)
