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
