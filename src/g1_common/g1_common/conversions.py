"""Message <-> numpy conversions shared by all nodes, with validation that names what is wrong."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Imu, JointState

from g1_description import robot
from g1_interfaces.msg import JointCommand, ReferenceFrame, ReferenceWindow
from motion_server.reference import ReferenceWindowData


class MessageError(ValueError):
    """A message that cannot be used (wrong joint names or lengths, NaN, ...)."""


def _finite(arr: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise MessageError(f"{what}: contains NaN or inf")
    return arr


# --- JointState --------------------------------------------------------------------------------

def joint_state_to_arrays(msg: JointState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(q, dq, tau) in SDK order; names may come in any order but must cover all 29 joints."""
    names = list(msg.name)
    try:
        if tuple(names) == robot.JOINT_NAMES:
            q = np.asarray(msg.position, dtype=np.float64)
            dq = np.asarray(msg.velocity, dtype=np.float64) if len(msg.velocity) else np.zeros(robot.NUM_JOINTS)
            tau = np.asarray(msg.effort, dtype=np.float64) if len(msg.effort) else np.zeros(robot.NUM_JOINTS)
            for arr, what in ((q, "position"), (dq, "velocity"), (tau, "effort")):
                robot.check_joint_vector(arr, f"joint_states.{what}")
        else:
            q = robot.reorder_from_names(names, msg.position, "joint_states.position")
            dq = (robot.reorder_from_names(names, msg.velocity, "joint_states.velocity")
                  if len(msg.velocity) else np.zeros(robot.NUM_JOINTS))
            tau = (robot.reorder_from_names(names, msg.effort, "joint_states.effort")
                   if len(msg.effort) else np.zeros(robot.NUM_JOINTS))
    except robot.DescriptionError as exc:
        raise MessageError(str(exc)) from exc
    return _finite(q, "joint_states.position"), _finite(dq, "joint_states.velocity"), _finite(tau, "joint_states.effort")


def make_joint_state(stamp, q, dq, tau=None) -> JointState:
    msg = JointState()
    msg.header.stamp = stamp
    msg.name = list(robot.JOINT_NAMES)
    msg.position = np.asarray(q, dtype=np.float64).tolist()
    msg.velocity = np.asarray(dq, dtype=np.float64).tolist()
    msg.effort = np.asarray(tau if tau is not None else np.zeros(robot.NUM_JOINTS), dtype=np.float64).tolist()
    return msg


# --- IMU -----------------------------------------------------------------------------------------

def imu_to_arrays(msg: Imu) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quat_wxyz, angular_velocity (body), linear_acceleration (body))."""
    o, w, a = msg.orientation, msg.angular_velocity, msg.linear_acceleration
    quat = _finite(np.array([o.w, o.x, o.y, o.z]), "imu.orientation")
    n = np.linalg.norm(quat)
    if not 0.9 < n < 1.1:
        raise MessageError(f"imu.orientation: quaternion norm {n:.3f} is not 1")
    return (quat / n, _finite(np.array([w.x, w.y, w.z]), "imu.angular_velocity"),
            _finite(np.array([a.x, a.y, a.z]), "imu.linear_acceleration"))


# --- JointCommand --------------------------------------------------------------------------------

def make_joint_command(stamp, position, kp, kd, velocity=None, effort=None,
                       source: int = JointCommand.SOURCE_POLICY, out: JointCommand | None = None) -> JointCommand:
    """``out``: a previously published command to refill in place (rclpy serialises at publish time)."""
    zeros = np.zeros(robot.NUM_JOINTS)
    msg = out if out is not None else JointCommand()
    msg.header.stamp = stamp
    msg.source = source
    if len(msg.joint_names) != robot.NUM_JOINTS:
        msg.joint_names = list(robot.JOINT_NAMES)
    msg.position = np.asarray(position, dtype=np.float32).tolist()
    msg.velocity = np.asarray(zeros if velocity is None else velocity, dtype=np.float32).tolist()
    msg.kp = np.asarray(kp, dtype=np.float32).tolist()
    msg.kd = np.asarray(kd, dtype=np.float32).tolist()
    msg.effort = np.asarray(zeros if effort is None else effort, dtype=np.float32).tolist()
    return msg


def joint_command_to_arrays(msg: JointCommand) -> dict[str, np.ndarray]:
    """Validated arrays in SDK order: position, velocity, kp, kd, effort. Raises MessageError."""
    names = list(msg.joint_names)
    out = {}
    for field in ("position", "velocity", "kp", "kd", "effort"):
        values = np.asarray(getattr(msg, field), dtype=np.float64)
        try:
            out[field] = (robot.check_joint_vector(values, f"joint_command.{field}") if tuple(names) == robot.JOINT_NAMES
                          else robot.reorder_from_names(names, values, f"joint_command.{field}"))
        except robot.DescriptionError as exc:
            raise MessageError(str(exc)) from exc
        _finite(out[field], f"joint_command.{field}")
    if np.any(out["kp"] < 0) or np.any(out["kd"] < 0):
        raise MessageError("joint_command: negative kp or kd")
    return out


# --- ReferenceWindow -----------------------------------------------------------------------------

def _frame_to_msg(data: ReferenceWindowData, i: int, f: ReferenceFrame | None = None) -> ReferenceFrame:
    # Fill the sub-messages the constructor already made (constructing new ones costs twice as much);
    # numpy arrays go into rosidl float32[] fields without a per-element Python loop.
    f = f if f is not None else ReferenceFrame()
    f.time_s = float(data.times_s[i])
    f.joint_positions = data.joint_pos[i].astype(np.float32)
    f.joint_velocities = data.joint_vel[i].astype(np.float32)
    f.key_body_positions = data.key_body_pos[i].astype(np.float32).ravel()
    p, q = data.root_pos[i].tolist(), data.root_quat_wxyz[i].tolist()
    v, w = data.root_lin_vel[i].tolist(), data.root_ang_vel[i].tolist()
    rp, ro, rv, rw = f.root_position, f.root_orientation, f.root_linear_velocity, f.root_angular_velocity
    rp.x, rp.y, rp.z = p
    ro.w, ro.x, ro.y, ro.z = q
    rv.x, rv.y, rv.z = v
    rw.x, rw.y, rw.z = w
    return f


def window_to_msg(data: ReferenceWindowData, stamp, sequence: int = 0,
                  out: ReferenceWindow | None = None) -> ReferenceWindow:
    """The message for ``data``. Pass the previously published message as ``out`` to refill it in place:
    constructing the ~20 nested frame messages dominates the cost at 50 Hz (rclpy serialises at
    publish time, so reusing the object afterwards is safe)."""
    msg = out if out is not None else ReferenceWindow()
    msg.header.stamp = stamp
    msg.header.frame_id = "world"
    msg.sequence = int(sequence) & 0xFFFFFFFF
    msg.state = int(data.state)
    msg.motion_name = data.motion_name
    msg.clip_time_s = float(data.clip_time_s)
    msg.clip_duration_s = float(data.clip_duration_s)
    msg.speed = float(data.speed)
    msg.loop = bool(data.loop)
    msg.frame_period_s = float(data.frame_period_s)
    msg.joint_names = list(robot.JOINT_NAMES)
    msg.key_body_names = list(data.key_body_names)
    _frame_to_msg(data, 0, msg.next_frame)
    msg.future_offsets = [int(o) for o in data.future_offsets]
    old = msg.future_frames if len(msg.future_frames) == data.num_frames - 1 else [None] * (data.num_frames - 1)
    msg.future_frames = [_frame_to_msg(data, i, old[i - 1]) for i in range(1, data.num_frames)]
    return msg


def msg_to_window(msg: ReferenceWindow) -> ReferenceWindowData:
    """Parse and validate a ReferenceWindow (joint order must be SDK order; frames consistent)."""
    if tuple(msg.joint_names) != robot.JOINT_NAMES:
        raise MessageError("reference_window.joint_names: not the G1 SDK joint order "
                           f"(got {len(msg.joint_names)} names starting {list(msg.joint_names)[:2]})")
    if len(msg.future_frames) != len(msg.future_offsets):
        raise MessageError(f"reference_window: {len(msg.future_frames)} future frames for "
                           f"{len(msg.future_offsets)} offsets")
    frames = [msg.next_frame, *msg.future_frames]
    k = len(msg.key_body_names)
    try:
        data = ReferenceWindowData(
            times_s=np.array([f.time_s for f in frames]),
            joint_pos=np.array([f.joint_positions for f in frames], dtype=np.float64),
            joint_vel=np.array([f.joint_velocities for f in frames], dtype=np.float64),
            root_pos=np.array([[f.root_position.x, f.root_position.y, f.root_position.z] for f in frames]),
            root_quat_wxyz=np.array([[f.root_orientation.w, f.root_orientation.x, f.root_orientation.y,
                                      f.root_orientation.z] for f in frames]),
            root_lin_vel=np.array([[f.root_linear_velocity.x, f.root_linear_velocity.y,
                                    f.root_linear_velocity.z] for f in frames]),
            root_ang_vel=np.array([[f.root_angular_velocity.x, f.root_angular_velocity.y,
                                    f.root_angular_velocity.z] for f in frames]),
            key_body_pos=np.array([f.key_body_positions for f in frames], dtype=np.float64).reshape(len(frames), k, 3),
            future_offsets=tuple(int(o) for o in msg.future_offsets),
            key_body_names=tuple(msg.key_body_names),
            motion_name=msg.motion_name,
            clip_time_s=msg.clip_time_s,
            clip_duration_s=msg.clip_duration_s,
            state=msg.state,
            frame_period_s=msg.frame_period_s,
            speed=msg.speed,
            loop=msg.loop,
        )
        data.validate()
    except ValueError as exc:  # ragged arrays, wrong shapes, NaN
        raise MessageError(f"reference_window: {exc}") from exc
    return data
