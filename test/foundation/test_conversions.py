"""Message <-> numpy conversions: exact round trips and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from g1_common import conversions as conv
from g1_common import ticks
from g1_description import robot
from motion_server.reference import DEFAULT_FUTURE_OFFSETS, ReferenceWindowData, WindowState


def _window(rng, f=1 + len(DEFAULT_FUTURE_OFFSETS)):
    k = len(robot.KEY_BODIES)
    q = rng.normal(size=(f, 4))
    return ReferenceWindowData(
        times_s=np.arange(f) * 0.02, joint_pos=rng.normal(size=(f, 29)).astype(np.float32).astype(float),
        joint_vel=rng.normal(size=(f, 29)).astype(np.float32).astype(float), root_pos=rng.normal(size=(f, 3)),
        root_quat_wxyz=q / np.linalg.norm(q, axis=1, keepdims=True), root_lin_vel=rng.normal(size=(f, 3)),
        root_ang_vel=rng.normal(size=(f, 3)), key_body_pos=rng.normal(size=(f, k, 3)).astype(np.float32).astype(float),
        motion_name="wave", clip_time_s=1.25, clip_duration_s=8.0, state=WindowState.PLAYING)


def test_reference_window_round_trip():
    data = _window(np.random.default_rng(1))
    back = conv.msg_to_window(conv.window_to_msg(data, ticks.stamp_from_tick(7), sequence=3))
    for name in ("times_s", "joint_pos", "joint_vel", "root_pos", "root_quat_wxyz", "root_lin_vel",
                 "root_ang_vel", "key_body_pos"):
        np.testing.assert_array_equal(getattr(back, name), getattr(data, name), err_msg=name)
    assert (back.motion_name, back.state, back.future_offsets) == ("wave", WindowState.PLAYING, DEFAULT_FUTURE_OFFSETS)


def test_reference_window_message_reuse_gives_the_same_message():
    rng = np.random.default_rng(5)
    a, b = _window(rng), _window(rng)
    reused = conv.window_to_msg(a, ticks.stamp_from_tick(1))
    reused = conv.window_to_msg(b, ticks.stamp_from_tick(2), sequence=9, out=reused)
    assert reused == conv.window_to_msg(b, ticks.stamp_from_tick(2), sequence=9)


def test_reference_window_rejects_nan_and_wrong_joint_order():
    data = _window(np.random.default_rng(2))
    msg = conv.window_to_msg(data, ticks.stamp_from_tick(0))
    msg.future_frames[3].joint_positions[5] = float("nan")
    with pytest.raises(conv.MessageError, match="joint_pos contains NaN"):
        conv.msg_to_window(msg)
    msg = conv.window_to_msg(data, ticks.stamp_from_tick(0))
    msg.joint_names = list(reversed(msg.joint_names))
    with pytest.raises(conv.MessageError, match="not the G1 SDK joint order"):
        conv.msg_to_window(msg)


def test_joint_state_any_order_and_errors():
    q = np.linspace(-1, 1, 29)
    msg = conv.make_joint_state(ticks.stamp_from_tick(1), q, -q)
    perm = np.random.default_rng(3).permutation(29)
    msg.name = [msg.name[i] for i in perm]
    msg.position = [msg.position[i] for i in perm]
    msg.velocity = [msg.velocity[i] for i in perm]
    msg.effort = [msg.effort[i] for i in perm]
    q2, dq2, _ = conv.joint_state_to_arrays(msg)
    np.testing.assert_array_equal(q2, q)
    np.testing.assert_array_equal(dq2, -q)
    msg.position[0] = float("inf")
    with pytest.raises(conv.MessageError, match="NaN or inf"):
        conv.joint_state_to_arrays(msg)
    msg = conv.make_joint_state(ticks.stamp_from_tick(1), q[:23].tolist() + [0] * 6, q)
    msg.name = msg.name[:23]
    msg.position = msg.position[:23]
    with pytest.raises(conv.MessageError, match="missing joints"):
        conv.joint_state_to_arrays(msg)


def test_joint_command_validation():
    cmd = conv.make_joint_command(ticks.stamp_from_tick(2), robot.DEFAULT_JOINT_POS, robot.KP, robot.KD)
    arrays = conv.joint_command_to_arrays(cmd)
    np.testing.assert_allclose(arrays["position"], robot.DEFAULT_JOINT_POS, atol=1e-6)
    cmd.kp = cmd.kp[:10]
    with pytest.raises(conv.MessageError, match="kp"):
        conv.joint_command_to_arrays(cmd)
    cmd = conv.make_joint_command(ticks.stamp_from_tick(2), robot.DEFAULT_JOINT_POS, robot.KP, robot.KD)
    cmd.joint_names[4] = "tail_joint"
    with pytest.raises(conv.MessageError, match="unknown joint names"):
        conv.joint_command_to_arrays(cmd)


def test_tick_stamps_are_exact():
    for k in (0, 1, 49, 50, 123456789):
        assert ticks.stamp_to_tick(ticks.stamp_from_tick(k)) == k
    off_grid = ticks.stamp_from_ns(ticks.tick_to_ns(5) + 1)
    assert ticks.stamp_to_tick(off_grid) is None


# --- the numpy CDR codec of ReferenceWindow (motion_server publishes it, the policy node decodes it) ---

def _rclpy_bytes(data, stamp_tick=7, sequence=3):
    from rclpy.serialization import serialize_message

    return serialize_message(conv.window_to_msg(data, ticks.stamp_from_tick(stamp_tick), sequence=sequence))


def _assert_same_window(a, b):
    for name in ("times_s", "joint_pos", "joint_vel", "root_pos", "root_quat_wxyz", "root_lin_vel",
                 "root_ang_vel", "key_body_pos"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("future_offsets", "key_body_names", "motion_name", "clip_time_s", "clip_duration_s", "state",
                 "frame_period_s", "speed", "loop"):
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("case", ["playing", "idle_no_name", "few_frames_two_bodies", "next_frame_only"])
def test_window_cdr_is_the_standard_encoding(case):
    """encode() writes what rclpy writes (same length; only CDR padding bytes may differ, rclpy leaves
    them uninitialised), rclpy reads it back to the same window, and decode() reads rclpy's bytes to
    exactly what msg_to_window gives."""
    from rclpy.serialization import deserialize_message

    from g1_common import window_cdr
    from g1_interfaces.msg import ReferenceWindow

    rng = np.random.default_rng(11)
    data = _window(rng)
    if case == "idle_no_name":
        data.motion_name, data.state, data.loop, data.speed = "", WindowState.IDLE, True, 0.5
    elif case in ("few_frames_two_bodies", "next_frame_only"):
        f = 4 if case == "few_frames_two_bodies" else 1
        data = _window(rng, f=f)
        data.future_offsets = tuple(range(1, f))
        data.key_body_names = tuple(robot.KEY_BODIES[:2])
        data.key_body_pos = data.key_body_pos[:, :2]
    ours = window_cdr.encode(data, ticks.tick_to_ns(7), sequence=3)
    theirs = _rclpy_bytes(data)
    assert len(ours) == len(theirs)
    assert all(o == 0 for o, t in zip(ours, theirs) if o != t)  # differences only in (zeroed) padding
    _assert_same_window(conv.msg_to_window(deserialize_message(ours, ReferenceWindow)),
                        conv.msg_to_window(deserialize_message(theirs, ReferenceWindow)))
    _assert_same_window(window_cdr.decode(theirs), conv.msg_to_window(deserialize_message(theirs, ReferenceWindow)))
    _assert_same_window(window_cdr.decode(ours), conv.msg_to_window(deserialize_message(ours, ReferenceWindow)))
    for name in ("times_s", "joint_pos", "joint_vel", "root_pos", "root_quat_wxyz", "key_body_pos"):
        np.testing.assert_array_equal(getattr(window_cdr.decode(ours), name), getattr(data, name), err_msg=name)
    assert ticks.cdr_header_stamp_ns(ours) == ticks.tick_to_ns(7)


def test_window_cdr_decode_rejects_bad_content_like_msg_to_window():
    from rclpy.serialization import serialize_message

    from g1_common import window_cdr

    data = _window(np.random.default_rng(12))
    msg = conv.window_to_msg(data, ticks.stamp_from_tick(0))
    msg.future_frames[3].joint_positions[5] = float("nan")
    with pytest.raises(conv.MessageError, match="joint_pos contains NaN"):
        window_cdr.decode(serialize_message(msg))
    msg = conv.window_to_msg(data, ticks.stamp_from_tick(0))
    msg.joint_names = list(reversed(msg.joint_names))
    with pytest.raises(conv.MessageError, match="not the G1 SDK joint order"):
        window_cdr.decode(serialize_message(msg))
    msg = conv.window_to_msg(data, ticks.stamp_from_tick(0))
    msg.future_frames[2].joint_velocities = msg.future_frames[2].joint_velocities[:28]  # a ragged frame
    with pytest.raises(conv.MessageError, match="reference_window"):
        window_cdr.decode(serialize_message(msg))
    good = window_cdr.encode(data, 0)
    with pytest.raises(conv.MessageError, match="reference_window"):
        window_cdr.decode(good[: len(good) // 2])  # truncated
