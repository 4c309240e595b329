"""Leg odometry: where the pelvis is, from the joint encoders, the knee torques and the IMU orientation.

Policies that observe the robot's position (the shipped ``default.onnx``'s ``ref_root_pos_xy``, mjlab's
``motion_anchor_pos_b``) get ground truth in simulation; a G1 has no such sensor. This estimator is the
simplest one that needs nothing else. Each foot's position relative to the pelvis, in the gravity-aligned
frame of the IMU, comes from forward kinematics of the measured joints; a foot that carries the robot
stands still, so the pelvis moves by minus that foot's relative motion. Which foot carries it: each is
weighted by its knee torque (the G1 reports the motors' estimated torque: ``joint_states.effort``), squared
(``load_power``) to sharpen single support; with no torques (all ~0) the lower foot. The height is absolute
(flat ground: the weighted feet at ankle height). It drifts with every foot slip and has no absolute
reference: its frame starts at ``initial_xy``, axes as the IMU's yaw.

The velocity is the finite difference of the position, low-pass filtered (``velocity_alpha``), in the
pelvis frame (ROS ``Odometry`` twist convention, as the simulator's ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from g1_description import robot

FEET = ("left_ankle_roll_link", "right_ankle_roll_link")
KNEES = (robot.JOINT_INDEX["left_knee_joint"], robot.JOINT_INDEX["right_knee_joint"])


@dataclass(frozen=True)
class LegOdometryConfig:
    load_power: float = 2.0         # weight of a foot = |knee torque| ** load_power (normalised)
    min_load_nm: float = 1.0        # both knee torques below this: no torque readings, the lower foot
    velocity_alpha: float = 0.3     # low-pass weight of each new finite-difference velocity (1 = none)
    initial_xy: tuple[float, float] = (0.0, 0.0)


class LegOdometry:
    """Call :meth:`update` with each joint state + IMU orientation; it returns the pelvis position (world)
    and linear velocity (pelvis frame)."""

    def __init__(self, config: LegOdometryConfig = LegOdometryConfig()):
        import mujoco

        from g1_description import mjcf

        self.config = config
        self._mujoco = mujoco
        self._model = mjcf.build_kinematic_model()
        self._data = mujoco.MjData(self._model)
        self._feet = np.array([self._model.body(name).id for name in FEET])
        self._pelvis = self._model.body(robot.ROOT_BODY).id
        # the ankle link's height above flat ground: the default stand, pelvis at its default height
        self.foot_height_m = float(robot.DEFAULT_ROOT_HEIGHT_M + self.feet_from_pelvis(
            robot.DEFAULT_JOINT_POS, np.array([1.0, 0.0, 0.0, 0.0]))[:, 2].min())
        self.reset()

    def reset(self) -> None:
        self.position = np.array([*self.config.initial_xy, robot.DEFAULT_ROOT_HEIGHT_M], dtype=np.float64)
        self.velocity_body = np.zeros(3)
        self.weights = np.full(2, 0.5)  # the last contact weights (left, right)
        self._velocity_world = np.zeros(3)
        self._feet_prev: np.ndarray | None = None
        self._time_s: float | None = None

    def feet_from_pelvis(self, joint_pos: np.ndarray, quat_wxyz: np.ndarray) -> np.ndarray:
        """(2, 3): each foot's position minus the pelvis', in the world (gravity-aligned) frame. Leaves the
        pelvis orientation (rotation matrix) of this pose in ``self._data.xmat``."""
        d = self._data
        d.qpos[:3] = 0.0
        d.qpos[3:7] = quat_wxyz
        d.qpos[7:] = joint_pos
        self._mujoco.mj_kinematics(self._model, d)
        return d.xpos[self._feet].copy()

    def contact_weights(self, joint_effort: np.ndarray | None, feet: np.ndarray) -> np.ndarray:
        c = self.config
        load = np.zeros(2) if joint_effort is None else np.abs(np.asarray(joint_effort, dtype=np.float64)[list(KNEES)])
        if not np.all(np.isfinite(load)) or load.max() < c.min_load_nm:
            return np.eye(2)[int(np.argmin(feet[:, 2]))]
        w = load ** c.load_power
        return w / w.sum()

    def update(self, joint_pos: np.ndarray, quat_wxyz: np.ndarray, time_s: float,
               joint_effort: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q, quat = np.asarray(joint_pos, dtype=np.float64), np.asarray(quat_wxyz, dtype=np.float64)
        if q.shape != (robot.NUM_JOINTS,) or quat.shape != (4,) or not (
                np.all(np.isfinite(q)) and np.all(np.isfinite(quat)) and abs(np.linalg.norm(quat) - 1.0) < 0.1):
            raise ValueError("leg odometry needs 29 finite joint positions and a finite unit quaternion")
        feet = self.feet_from_pelvis(q, quat)
        w = self.weights = self.contact_weights(joint_effort, feet)
        position = self.position.copy()
        if self._feet_prev is not None:  # a foot that carries the robot stands still: the pelvis moves instead
            position[:2] -= w @ (feet[:, :2] - self._feet_prev[:, :2])
        position[2] = self.foot_height_m - w @ feet[:, 2]
        self._feet_prev = feet
        if self._time_s is not None and time_s > self._time_s:
            v = (position - self.position) / (time_s - self._time_s)
            a = self.config.velocity_alpha
            self._velocity_world = a * v + (1 - a) * self._velocity_world
        self.position, self._time_s = position, time_s
        pelvis_rotation = self._data.xmat[self._pelvis].reshape(3, 3)  # from feet_from_pelvis' kinematics
        self.velocity_body = pelvis_rotation.T @ self._velocity_world
        return self.position.copy(), self.velocity_body.copy()


__all__ = ["FEET", "KNEES", "LegOdometry", "LegOdometryConfig"]
