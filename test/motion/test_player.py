"""ReferencePlayer (the ROS-free core): idle, blend-in, re-anchoring, playback, end, loop, queue, stop."""

from __future__ import annotations

import numpy as np
import pytest

from g1_description import robot
from motion_server import rotations
from motion_server.motion import sample
from motion_server.player import PlanarTransform, Pose, ReferencePlayer
from motion_server.reference import DEFAULT_FUTURE_OFFSETS, WindowState

DT = robot.CONTROL_PERIOD_S


@pytest.fixture(scope="module")
def motion(g1_moves_library):
    return g1_moves_library.load("M_ShortMove14")  # 6.54 s


@pytest.fixture(scope="module")
def other(g1_moves_library):
    return g1_moves_library.load("B_HandsUp")


def robot_pose(x=1.0, y=-2.0, yaw=0.7) -> Pose:
    pose = Pose.default_standing(x, y, yaw)
    pose.joint_pos = pose.joint_pos + 0.05
    return pose


def make_player(kinematics, **kwargs) -> ReferencePlayer:
    player = ReferencePlayer(kinematics=kinematics, **kwargs)
    player.set_robot_pose(robot_pose())
    return player


def run_until(player, t_end, t0=0.0):
    windows = []
    for k in range(int(round((t_end - t0) / DT)) + 1):
        windows.append(player.window(t0 + k * DT))
    return windows


def test_idle_holds_the_default_pose_at_the_robot(kinematics):
    player = make_player(kinematics)
    w = player.window(0.0)
    w.validate()
    assert w.state == WindowState.IDLE and w.motion_name == ""
    assert w.num_frames == 1 + len(DEFAULT_FUTURE_OFFSETS)
    np.testing.assert_allclose(w.joint_pos, np.tile(robot.DEFAULT_JOINT_POS, (w.num_frames, 1)))
    np.testing.assert_allclose(w.root_pos[:, :2], [[1.0, -2.0]] * w.num_frames)
    assert rotations.yaw(w.root_quat_wxyz[0]) == pytest.approx(0.7)
    np.testing.assert_allclose(w.joint_vel, 0.0)


def test_blend_in_starts_at_the_robot_and_ends_in_the_reanchored_first_frame(kinematics, motion):
    player = make_player(kinematics, blend_in_s=1.0)
    player.play(motion)
    first = player.window(0.0)
    assert first.state == WindowState.BLEND_IN and first.motion_name == motion.name
    start = robot_pose()
    # The next frame is one period into the smoothstep: still within 1 mrad of the robot's joints.
    np.testing.assert_allclose(first.joint_pos[0], start.joint_pos, atol=1e-3)
    np.testing.assert_allclose(first.root_pos[0, :2], start.root_pos[:2], atol=1e-3)
    windows = run_until(player, 1.0, t0=DT)
    at_end = windows[-1]
    assert at_end.state == WindowState.PLAYING
    clip0 = sample(motion, np.array([0.0]))
    np.testing.assert_allclose(windows[-2].joint_pos[0], clip0.joint_pos[0], atol=1e-9)  # tau = 1.0 s
    # Re-anchored: the clip's first frame now has the robot's x/y/yaw; height and tilt unchanged.
    root = windows[-2].root_pos[0]
    np.testing.assert_allclose(root[:2], start.root_pos[:2], atol=1e-9)
    assert root[2] == pytest.approx(clip0.root_pos[0, 2])
    assert rotations.yaw(windows[-2].root_quat_wxyz[0]) == pytest.approx(0.7, abs=1e-9)
    # Smooth: no jump between consecutive next frames during the blend.
    steps = np.abs(np.diff([w.joint_pos[0] for w in windows], axis=0)).max()
    assert steps < 0.05


def test_window_at_clip_time_t_holds_library_frames_t_to_t_plus_2s(kinematics, motion):
    player = make_player(kinematics, blend_in_s=0.0)
    player.play(motion)
    windows = run_until(player, 3.0)
    w = windows[100]  # tick at 2.0 s
    assert w.state == WindowState.PLAYING and w.clip_time_s == pytest.approx(2.0)
    offsets = np.array([1, *DEFAULT_FUTURE_OFFSETS])
    frames = 100 + offsets  # 50 Hz library frames at t + offset * 20 ms
    np.testing.assert_allclose(w.times_s, frames * DT)
    np.testing.assert_allclose(w.joint_pos, motion.joint_pos[frames], atol=1e-9)
    np.testing.assert_allclose(w.joint_vel, motion.joint_vel[frames], atol=1e-9)
    anchor = PlanarTransform.between(Pose.from_frames(sample(motion, np.array([0.0])), 0), robot_pose())
    np.testing.assert_allclose(w.root_pos, anchor.points(motion.root_pos[frames]), atol=1e-9)
    np.testing.assert_allclose(w.key_body_pos, anchor.points(motion.key_body_pos[frames]), atol=1e-9)
    np.testing.assert_allclose(w.root_lin_vel, anchor.rotate(motion.root_lin_vel[frames]), atol=1e-9)


def test_speed_and_start_time(kinematics, motion):
    player = make_player(kinematics, blend_in_s=0.0)
    player.play(motion, speed=2.0, start_time_s=1.0)
    windows = run_until(player, 1.0)
    assert windows[50].clip_time_s == pytest.approx(3.0)
    np.testing.assert_allclose(windows[50].joint_pos[0], motion.joint_pos[152], atol=1e-9)
    np.testing.assert_allclose(windows[50].joint_vel[0], 2.0 * motion.joint_vel[152], atol=1e-9)
    with pytest.raises(ValueError, match="start_time_s"):
        player.play(motion, start_time_s=60.0)


def test_end_holds_the_last_frame(kinematics, motion):
    player = make_player(kinematics, blend_in_s=0.0)
    player.play(motion)
    windows = run_until(player, motion.duration_s + 0.5)
    assert windows[-1].state == WindowState.HOLD_END
    assert windows[-1].clip_time_s == pytest.approx(motion.duration_s)
    np.testing.assert_allclose(windows[-1].joint_pos, np.tile(motion.joint_pos[-1], (windows[-1].num_frames, 1)), atol=1e-9)
    np.testing.assert_allclose(windows[-1].joint_vel, 0.0)
    # Shortly before the end the future frames already show the hold.
    before = windows[-40]
    assert before.state == WindowState.PLAYING
    np.testing.assert_allclose(before.joint_pos[-1], motion.joint_pos[-1], atol=1e-9)


def test_end_can_blend_to_the_default_pose(kinematics, motion):
    player = make_player(kinematics, blend_in_s=0.0, end_behavior="default", end_blend_s=1.0)
    player.play(motion)
    last = run_until(player, motion.duration_s + 1.5)[-1]
    assert last.state == WindowState.HOLD_END
    np.testing.assert_allclose(last.joint_pos[0], robot.DEFAULT_JOINT_POS, atol=1e-9)
    assert last.root_pos[0, 2] == pytest.approx(robot.DEFAULT_ROOT_HEIGHT_M)


def test_loop_continues_from_where_the_cycle_ended(kinematics, motion):
    player = make_player(kinematics, blend_in_s=0.0)
    player.play(motion, loop=True)
    windows = run_until(player, motion.duration_s + 1.0)
    after = windows[-1]
    assert after.state == WindowState.PLAYING and after.loop
    assert after.clip_time_s == pytest.approx(1.0 + DT * (round(motion.duration_s / DT) - motion.duration_s / DT))
    roots = np.array([w.root_pos[0] for w in windows])
    # The root keeps moving continuously across the seam (no jump back to the first cycle's start).
    assert np.abs(np.diff(roots[:, :2], axis=0)).max() < 0.05


def test_playlist_plays_queued_motions_in_order(kinematics, motion, other):
    player = make_player(kinematics, blend_in_s=0.5)
    player.play(motion)
    player.play(other, enqueue=True)
    windows = run_until(player, motion.duration_s + 1.5)
    names = [w.motion_name for w in windows]
    assert names[0] == motion.name and names[-1] == other.name
    switch = names.index(other.name)
    assert windows[switch].state == WindowState.BLEND_IN
    # The queued clip blends from the first clip's last reference pose, so nothing jumps.
    jump = np.abs(windows[switch].joint_pos[0] - windows[switch - 1].joint_pos[0]).max()
    assert jump < 0.05


def test_stop_holds_the_current_reference_pose(kinematics, motion):
    player = make_player(kinematics, blend_in_s=0.0)
    player.play(motion)
    windows = run_until(player, 2.0)
    player.stop()
    stopped = [player.window(2.0 + k * DT) for k in range(1, 30)]
    assert all(w.state == WindowState.STOPPED for w in stopped)
    held = stopped[0].joint_pos[0]
    np.testing.assert_allclose(held, motion.joint_pos[101], atol=1e-9)  # the reference at the stop tick
    for w in stopped:
        np.testing.assert_allclose(w.joint_pos, np.tile(held, (w.num_frames, 1)))
    assert stopped[-1].clip_time_s == pytest.approx(2.02)
    assert windows[-1].state == WindowState.PLAYING


def test_bad_arguments_are_refused(kinematics, motion):
    with pytest.raises(ValueError, match="end_behavior"):
        ReferencePlayer(kinematics=kinematics, end_behavior="fly")
    with pytest.raises(ValueError, match="future_offsets"):
        ReferencePlayer(kinematics=kinematics, future_offsets=(5, 1))
    player = make_player(kinematics)
    with pytest.raises(ValueError, match="speed"):
        player.play(motion, speed=float("nan"))


def test_queueing_behind_a_looping_clip_is_refused(kinematics, motion, other):
    player = make_player(kinematics)
    player.play(motion, loop=True)
    with pytest.raises(ValueError, match="loops forever"):
        player.play(other, enqueue=True)  # before the next tick applies the loop request
    player.window(0.0)
    with pytest.raises(ValueError, match="loops forever"):
        player.play(other, enqueue=True)
    player.play(other)  # replacing it is fine
    assert player.window(DT).motion_name == other.name


def test_reanchor_after_blend_starts_the_clip_where_the_robot_stands(kinematics, motion):
    """A blend-in moves the reference's feet, the robot cannot slide its own: with reanchor_after_blend
    the clip is anchored a second time, at the pose the robot has when the blend ends."""
    player = make_player(kinematics, blend_in_s=1.0, reanchor_after_blend=True)
    player.play(motion)
    run_until(player, 1.0 - DT)                         # the blend-in (ticks to 0.98 s), robot at robot_pose()
    moved = robot_pose(x=1.3, y=-2.1, yaw=0.9)          # where the robot ended up
    player.set_robot_pose(moved)
    w = player.window(1.0)                              # the first tick after the blend
    assert w.state == WindowState.PLAYING
    clip = sample(motion, np.array([0.0, DT]))
    # the clip's first frame is now at the robot's x/y/yaw, so the next frame is one step from it
    expected = PlanarTransform.between(Pose.from_frames(clip, 0), moved).points(clip.root_pos[1])
    np.testing.assert_allclose(w.root_pos[0], expected, atol=1e-9)
    assert rotations.yaw(w.root_quat_wxyz[0]) == pytest.approx(
        0.9 + rotations.yaw(clip.root_quat_wxyz[1]) - rotations.yaw(clip.root_quat_wxyz[0]), abs=1e-9)
    np.testing.assert_allclose(w.joint_pos[0], clip.joint_pos[1], atol=1e-9)   # joints untouched
    # later ticks keep that anchor (it happens once), and the default player does not re-anchor at all
    player.set_robot_pose(robot_pose())
    np.testing.assert_allclose(player.window(1.0 + DT).root_pos[0][:2],
                               PlanarTransform.between(Pose.from_frames(clip, 0), moved).points(
                                   sample(motion, np.array([2 * DT])).root_pos)[0][:2], atol=1e-9)
    plain = make_player(kinematics, blend_in_s=1.0)
    plain.play(motion)
    run_until(plain, 1.0 - DT)
    plain.set_robot_pose(moved)
    at_start = PlanarTransform.between(Pose.from_frames(clip, 0), robot_pose())  # anchored at play time only
    np.testing.assert_allclose(plain.window(1.0).root_pos[0], at_start.points(clip.root_pos[1]), atol=1e-9)
