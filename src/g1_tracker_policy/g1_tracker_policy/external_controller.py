"""The controller for policies trained elsewhere (mjlab / BeyondMimic, holosoma WBT): their observation
terms computed from OUR inputs (joint states, pelvis IMU, odometry, the motion server's reference
window), their ONNX run unchanged, their actions mapped back by joint name. No ROS here.

Observation conventions (each term unit-tested against hand-computed values in
test/policy/test_external_observation.py):

- joint vectors in the artifact's own joint order (mapped by name from the SDK order);
- ``command`` / ``motion_command`` (58): reference joint positions then velocities of the reference
  frame the policy tracks this tick (the window's frame 0, the next frame: one time_step per tick);
- anchor body (``torso_link`` for both exporters): reference and robot poses by forward kinematics on
  the G1 model (reference: the window's pelvis pose and joints; robot: the IMU orientation, odometry
  position, measured joints);
- ``motion_anchor_pos_b`` / ``motion_ref_pos_b`` (3): R_anchor_robot^T (p_anchor_ref - p_anchor_robot);
- ``motion_anchor_ori_b`` / ``motion_ref_ori_b`` (6): the first two COLUMNS of
  R_anchor_robot^T R_anchor_ref, flattened ROW-major ([R00, R01, R10, R11, R20, R21]);
- ``base_lin_vel`` (3): pelvis-frame linear velocity, zero or the odometry's (``base_lin_vel_source``);
- ``base_ang_vel`` (3): the pelvis IMU gyro (pelvis frame);
- ``projected_gravity`` (3): gravity in the pelvis frame;
- ``joint_pos`` / ``dof_pos`` (29): q - the artifact's default pose; ``joint_vel`` / ``dof_vel``: dq;
- ``actions`` (29): the previous raw action (after the artifact's action clip).
Quaternions are wxyz inside the stack; holosoma's xyzw outputs are converted once where they are read.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

from g1_description import robot
from g1_tracker_policy import external as ext
from g1_tracker_policy.controllers import ControllerOutput, RobotState, make_session
from g1_tracker_policy.observation import ObservationError, projected_gravity_from_quat, quat_to_rotmat


# --- term functions (plain numpy, hand-testable) ----------------------------------------------------

def relative_position_b(robot_pos_w: np.ndarray, robot_quat_wxyz: np.ndarray, ref_pos_w: np.ndarray) -> np.ndarray:
    """The reference point in the robot body's frame: R_robot^T (p_ref - p_robot)."""
    return quat_to_rotmat(robot_quat_wxyz).T @ (np.asarray(ref_pos_w, float) - np.asarray(robot_pos_w, float))


def relative_rotation_6d(robot_quat_wxyz: np.ndarray, ref_quat_wxyz: np.ndarray) -> np.ndarray:
    """First two columns of R_robot^T R_ref, flattened row-major: [R00, R01, R10, R11, R20, R21]."""
    rel = quat_to_rotmat(robot_quat_wxyz).T @ quat_to_rotmat(ref_quat_wxyz)
    return rel[:, :2].reshape(-1)


def command_term(ref_joint_pos_sdk: np.ndarray, ref_joint_vel_sdk: np.ndarray, joints: ext.JointMap) -> np.ndarray:
    """Reference joint positions then velocities, in the artifact's joint order (58)."""
    return np.concatenate([joints.from_sdk(ref_joint_pos_sdk), joints.from_sdk(ref_joint_vel_sdk)])


class AnchorKinematics:
    """World pose of the anchor body for a (pelvis position, pelvis orientation, joints) pose."""

    def __init__(self, body: str):
        from motion_server.kinematics import KeyBodyKinematics

        self.body = body
        self._fk = KeyBodyKinematics()

    def pose(self, root_pos: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray):
        p, q = self._fk.body_poses(self.body, np.asarray(root_pos, float)[None],
                                   np.asarray(root_quat_wxyz, float)[None], np.asarray(joint_pos, float)[None])
        return p[0], q[0]


class ExternalObservation:
    """Builds the flat observation of one external artifact, term by term in the model's order."""

    def __init__(self, artifact: ext.ExternalArtifact):
        self.art = artifact
        self.kin = AnchorKinematics(artifact.anchor_body)
        self.history: dict[str, deque] = {}
        self.reset()

    def reset(self) -> None:
        self.history = {t: deque(maxlen=self.art.history_length) for t, _ in self.art.observation_terms}

    def terms(self, state: RobotState, window, last_action_sdk: np.ndarray) -> dict[str, np.ndarray]:
        """Every term this artifact observes, unscaled (neither exporter scales these terms)."""
        art, joints = self.art, self.art.joints
        names = {t for t, _ in art.observation_terms}
        out: dict[str, np.ndarray] = {}
        ref_q, ref_dq = np.asarray(window.joint_pos[0], float), np.asarray(window.joint_vel[0], float)
        if names & {"command", "motion_command"}:
            cmd = command_term(ref_q, ref_dq, joints)
            out["command"] = out["motion_command"] = cmd
        anchor_terms = names & {"motion_anchor_pos_b", "motion_anchor_ori_b", "motion_ref_pos_b", "motion_ref_ori_b"}
        if anchor_terms:
            needs_pos = bool(anchor_terms & set(ext.POSITION_TERMS))
            if needs_pos and state.base_pos_world is None:
                raise ObservationError(f"{art.name} observes the anchor position ({sorted(anchor_terms)}) and needs "
                                       "the robot's world position: no odometry received (policy node "
                                       "parameter odom_topic)")
            base_pos = state.base_pos_world if state.base_pos_world is not None else np.zeros(3)
            ref_p, ref_r = self.kin.pose(window.root_pos[0], window.root_quat_wxyz[0], ref_q)
            rob_p, rob_r = self.kin.pose(base_pos, state.base_quat_wxyz, state.joint_pos)
            pos_b = relative_position_b(rob_p, rob_r, ref_p) if needs_pos else None
            ori_b = relative_rotation_6d(rob_r, ref_r)
            out["motion_anchor_pos_b"] = out["motion_ref_pos_b"] = pos_b
            out["motion_anchor_ori_b"] = out["motion_ref_ori_b"] = ori_b
        if "base_lin_vel" in names:
            if art.base_lin_vel_source == "zero":
                out["base_lin_vel"] = np.zeros(3)
            elif state.base_lin_vel_body is None:
                raise ObservationError(f"{art.name}: base_lin_vel from odometry, but no odometry received "
                                       "(policy node parameter odom_topic)")
            else:
                out["base_lin_vel"] = np.asarray(state.base_lin_vel_body, float)
        out["base_ang_vel"] = np.asarray(state.base_ang_vel_body, float)
        out["projected_gravity"] = projected_gravity_from_quat(np.asarray(state.base_quat_wxyz, float))
        out["joint_pos"] = out["dof_pos"] = joints.from_sdk(np.asarray(state.joint_pos, float) - art.default_joint_pos)
        out["joint_vel"] = out["dof_vel"] = joints.from_sdk(state.joint_vel)
        out["actions"] = joints.from_sdk(last_action_sdk)
        return {t: out[t] for t in names}

    def build(self, state: RobotState, window, last_action_sdk: np.ndarray) -> np.ndarray:
        terms = self.terms(state, window, last_action_sdk)
        parts = []
        for name, size in self.art.observation_terms:
            value = np.asarray(terms[name], dtype=np.float64).reshape(-1)
            if value.size != size:  # pragma: no cover - sizes are fixed by TERM_SIZES
                raise ObservationError(f"observation term {name}: {value.size} values, expected {size}")
            hist = self.history[name]
            if self.art.history_length == 1:
                parts.append(value)
                continue
            if not hist and self.art.format == ext.FORMAT_MJLAB:  # IsaacLab fills a fresh history with the first value
                hist.extend([value] * (self.art.history_length - 1))
            hist.append(value)
            pad = [np.zeros(size)] * (self.art.history_length - len(hist))  # holosoma pads with zeros, oldest first
            parts.extend(pad + list(hist))
        obs = np.concatenate(parts).astype(np.float32)
        if not np.all(np.isfinite(obs)):
            raise ObservationError(f"{self.art.name}: non-finite observation")
        return obs


class ExternalPolicyController:
    """A policy trained elsewhere, behind the same interface as :class:`PolicyController`.

    ``time_step`` (the model's motion index) is derived from the reference the motion server streams:
    round(clip time of the window's frame 0 x 50 Hz), so it stays in lockstep with what the evaluator,
    the bag and RViz see. The actions do not depend on it (checked when the artifact is loaded).
    """

    is_baseline = False

    def __init__(self, artifact: ext.ExternalArtifact, warm_up_runs: int = 20):
        self.artifact = artifact
        self.name = f"policy:{artifact.format}:{artifact.name}"
        self.needs_odometry = artifact.needs_odometry
        self.kp, self.kd = artifact.kp, artifact.kd
        self.builder = ExternalObservation(artifact)
        self.session = make_session(str(artifact.path))
        self.last_time_step = 0
        self.warm_inference_s = 0.0
        self._feed_obs = np.zeros((1, artifact.obs_size), np.float32)
        self._feed_step = np.zeros((1, 1), np.float32)
        rng = np.random.default_rng(0)
        times = []
        for _ in range(max(1, warm_up_runs)):
            t = time.perf_counter()
            self.run_model(rng.normal(0, 0.1, artifact.obs_size).astype(np.float32), 0)
            times.append(time.perf_counter() - t)
        self.warm_inference_s = float(np.median(times[len(times) // 2:]))

    def run_model(self, obs: np.ndarray, time_step: int) -> np.ndarray:
        """The model's raw action (its own joint order, after its action clip) for one flat observation."""
        self._feed_obs[0] = obs
        self._feed_step[0, 0] = float(time_step)
        feed = {"obs": self._feed_obs, ext.INPUT_TIME_STEP: self._feed_step}
        (action,) = self.session.run([ext.OUTPUT_ACTIONS], feed)
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if self.artifact.action_clip is not None:
            action = np.clip(action, -self.artifact.action_clip, self.artifact.action_clip)
        return action

    def reset(self) -> None:
        self.builder.reset()

    def accept_window(self, window) -> None:
        """Any future offsets are fine: these policies read frame 0 (the next frame) only."""

    @staticmethod
    def time_step(window) -> int:
        return max(0, int(round(float(window.times_s[0]) * robot.CONTROL_RATE_HZ)))

    def observe_command(self, position: np.ndarray, window=None) -> np.ndarray:
        return self.artifact.target_to_action(position)

    def compute(self, state: RobotState, window, last_action: np.ndarray) -> ControllerOutput:
        t0 = time.perf_counter()
        obs = self.builder.build(state, window, last_action)
        t1 = time.perf_counter()
        self.last_time_step = self.time_step(window)
        action_theirs = self.run_model(obs, self.last_time_step)
        t2 = time.perf_counter()
        action_sdk = self.artifact.joints.to_sdk(action_theirs)
        target = self.artifact.default_joint_pos + self.artifact.action_scale * action_sdk
        return ControllerOutput(position=target, kp=self.kp, kd=self.kd, action=action_sdk,
                                observation_ms=(t1 - t0) * 1e3, inference_ms=(t2 - t1) * 1e3)
