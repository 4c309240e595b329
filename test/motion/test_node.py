"""motion_server over real DDS: the node runs as its own process, this test talks to it with rclpy."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest
import rclpy
import yaml
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from g1_common import conversions, ticks, topics
from g1_description import robot
from g1_interfaces.msg import ReferenceWindow
from g1_interfaces.srv import ListMotions, PlayMotion, StopMotion
from motion_server import cli, rotations
from motion_server.importers import import_motion
from motion_server.library import MotionLibrary
from motion_server.motion import sample
from motion_server.player import PlanarTransform, Pose
from motion_server.reference import DEFAULT_FUTURE_OFFSETS, WindowState

from motion_helpers import make_bad_files

CLIPS = ("karate/M_ShortMove14.csv", "bonus/B_HandsUp.csv")


@pytest.fixture
def library(tmp_path, g1_moves_dir, kinematics) -> MotionLibrary:
    library = MotionLibrary(tmp_path / "library")
    for clip in CLIPS:
        library.add(import_motion(g1_moves_dir / clip, kinematics=kinematics).motion)
    return library


def start_server(node_processes, tmp_path, library, **params):
    params = {"library": str(library.root), "blend_in_s": 0.0, **params}
    path = tmp_path / "motion_server.yaml"
    path.write_text(yaml.safe_dump({"motion_server": {"ros__parameters": params}}))
    return node_processes.start("-m", "motion_server.node", "--ros-args", "--params-file", str(path),
                                name="motion_server")


class Peer:
    """The test side: an in-process rclpy node that records windows and calls the services."""

    def __init__(self):
        rclpy.init()
        self.node = Node("motion_test_peer")
        self.windows: list[ReferenceWindow] = []
        self.ready: list[str] = []
        self.markers: list[MarkerArray] = []
        n = self.node
        n.create_subscription(ReferenceWindow, topics.REFERENCE_WINDOW, self.windows.append, topics.CONTROL_QOS)
        n.create_subscription(String, topics.READY, lambda m: self.ready.append(m.data), topics.LATCHED_QOS)
        n.create_subscription(MarkerArray, topics.REFERENCE_MARKERS, self.markers.append, topics.VIS_QOS)
        self.play_client = n.create_client(PlayMotion, topics.PLAY_MOTION)
        self.stop_client = n.create_client(StopMotion, topics.STOP_MOTION)
        self.list_client = n.create_client(ListMotions, topics.LIST_MOTIONS)

    def spin_until(self, condition, timeout_s: float, what: str, proc=None):
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"motion_server exited with {proc.returncode} while waiting for {what}")
            rclpy.spin_once(self.node, timeout_sec=0.02)

    def call(self, client, request, timeout_s=10.0):
        self.spin_until(lambda: client.service_is_ready(), timeout_s, f"service {client.srv_name}")
        future = client.call_async(request)
        self.spin_until(future.done, timeout_s, f"a reply from {client.srv_name}")
        return future.result()

    def play(self, name, **kwargs):
        return self.call(self.play_client, PlayMotion.Request(name=name, **kwargs))

    def wait_windows(self, count: int, timeout_s=5.0, proc=None) -> list[ReferenceWindow]:
        start = len(self.windows)
        self.spin_until(lambda: len(self.windows) >= start + count, timeout_s, f"{count} more windows", proc)
        return self.windows[start:]

    def close(self):
        self.node.destroy_node()
        rclpy.shutdown()


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


def test_real_time_stream_services_and_bad_data(node_processes, tmp_path, library, peer, good_csv):
    proc = start_server(node_processes, tmp_path, library)
    idle = peer.wait_windows(10, timeout_s=15.0, proc=proc)
    assert all(w.state == ReferenceWindow.STATE_IDLE for w in idle)
    assert list(idle[-1].future_offsets) == list(DEFAULT_FUTURE_OFFSETS)
    periods = np.diff([ticks.stamp_to_ns(w.header.stamp) for w in peer.wait_windows(26, proc=proc)]) * 1e-9
    assert abs(np.median(periods) - 0.02) < 0.002  # 50 Hz
    listed = peer.call(peer.list_client, ListMotions.Request())
    assert sorted(listed.names) == ["B_HandsUp", "M_ShortMove14"]
    assert all(s.endswith(".csv") for s in listed.sources) and set(listed.fps) == {50.0}

    reply = peer.play("NoSuchDance")
    assert not reply.success and "no motion named 'NoSuchDance'" in reply.message
    assert peer.wait_windows(5, proc=proc)[-1].state == ReferenceWindow.STATE_IDLE  # still serving

    reply = peer.play("M_ShortMove14")
    assert reply.success and reply.duration_s == pytest.approx(6.54)
    peer.spin_until(lambda: peer.windows[-1].state == ReferenceWindow.STATE_PLAYING, 3.0, "PLAYING", proc)
    playing = peer.wait_windows(10, proc=proc)
    assert all(w.motion_name == "M_ShortMove14" for w in playing)
    assert playing[-1].clip_time_s > playing[0].clip_time_s
    assert peer.markers and len(peer.markers[-1].markers[0].points) == len(robot.KEY_BODIES)

    # Bad files imported into the live library fail alone; a damaged library file is refused on play.
    make_bad_files(tmp_path / "bad", good_csv)
    args = argparse.ArgumentParser()
    cli.add_arguments(args)
    assert cli.run(args.parse_args(["--library", str(library.root), "import", str(tmp_path / "bad")])) == 1
    (library.root / "B_HandsUp.npz").write_bytes(b"PK\x03\x04 corrupted")
    reply = peer.play("B_HandsUp")
    assert not reply.success and "not a readable motion file" in reply.message
    assert peer.wait_windows(5, proc=proc)[-1].motion_name == "M_ShortMove14"  # still playing, still serving

    reply = peer.call(peer.stop_client, StopMotion.Request())
    assert reply.success
    peer.spin_until(lambda: peer.windows[-1].state == ReferenceWindow.STATE_STOPPED, 3.0, "STOPPED", proc)
    held = [conversions.msg_to_window(w) for w in peer.wait_windows(10, proc=proc)]
    for w in held:
        assert w.state == WindowState.STOPPED
        np.testing.assert_array_equal(w.joint_pos, np.tile(held[0].joint_pos[0], (w.num_frames, 1)))
        np.testing.assert_array_equal(w.root_pos, held[0].root_pos)
    assert proc.poll() is None


def test_lockstep_window_at_clip_time_t_holds_library_frames(node_processes, tmp_path, library, peer):
    """use_sim_time: joint_states stamped t_k bring the window stamped t_(k+1) (one tick ahead; the first one
    also its own tick's window); with the robot at
    (x, y, yaw) = (1.0, 2.0, 0.5) the window holds the library frames t..t+2 s re-anchored there."""
    proc = start_server(node_processes, tmp_path, library, use_sim_time=True)
    n = peer.node
    pub_clock = n.create_publisher(Clock, "/clock", 10)
    pub_joints = n.create_publisher(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    pub_odom = n.create_publisher(Odometry, topics.GROUND_TRUTH_ODOM, topics.CONTROL_QOS)
    peer.spin_until(lambda: "motion_server" in peer.ready, 15.0, "motion_server on g1/ready", proc)
    robot_at = Pose.default_standing(1.0, 2.0, 0.5)

    def tick(k: int) -> ReferenceWindow:
        stamp = ticks.stamp_from_tick(k)
        pub_clock.publish(Clock(clock=stamp))
        odom = Odometry()
        odom.header.stamp = stamp
        odom.pose.pose.position.x, odom.pose.pose.position.y, odom.pose.pose.position.z = robot_at.root_pos
        w, x, y, z = robot_at.root_quat_wxyz
        odom.pose.pose.orientation.w, odom.pose.pose.orientation.x = w, x
        odom.pose.pose.orientation.y, odom.pose.pose.orientation.z = y, z
        pub_odom.publish(odom)
        pub_joints.publish(conversions.make_joint_state(stamp, robot.DEFAULT_JOINT_POS, np.zeros(29)))
        ahead = ticks.stamp_from_tick(k + 1)
        peer.spin_until(lambda: any(w.header.stamp == ahead for w in peer.windows[-3:]), 5.0,
                        f"the window stamped tick {k + 1}", proc)
        return next(w for w in peer.windows if w.header.stamp == stamp)

    for k in range(5):
        assert tick(k).state == ReferenceWindow.STATE_IDLE
    assert peer.play("M_ShortMove14").success
    start = 6  # the window of tick 5 was computed with tick 4's state: the request applies from tick 6
    windows = [tick(k) for k in range(start, start + 151)]
    assert [ticks.stamp_to_tick(w.header.stamp) for w in windows] == list(range(start, start + 151))
    motion = library.load("M_ShortMove14")
    anchor = PlanarTransform.between(Pose.from_frames(sample(motion, np.array([0.0])), 0), robot_at)
    offsets = np.array([1, *DEFAULT_FUTURE_OFFSETS])
    for i in (0, 50, 150):  # clip times 0, 1 and 3 s
        w = conversions.msg_to_window(windows[i])
        assert w.state == WindowState.PLAYING and w.clip_time_s == pytest.approx(i * 0.02)
        frames = i + offsets
        np.testing.assert_allclose(w.times_s, frames * 0.02, atol=1e-9)
        np.testing.assert_allclose(w.joint_pos, motion.joint_pos[frames], atol=1e-6)  # float32 on the wire
        np.testing.assert_allclose(w.root_pos, anchor.points(motion.root_pos[frames]), atol=1e-9)
        np.testing.assert_allclose(w.key_body_pos, anchor.points(motion.key_body_pos[frames]), atol=1e-5)  # float32
    first = conversions.msg_to_window(windows[0])
    # Re-anchored: the clip's first frame sits at the robot's x/y with its yaw.
    np.testing.assert_allclose(anchor.points(motion.root_pos[0])[:2], [1.0, 2.0], atol=1e-9)
    assert rotations.yaw(first.root_quat_wxyz[0]) == pytest.approx(
        0.5 + rotations.yaw(motion.root_quat_wxyz[1]) - rotations.yaw(motion.root_quat_wxyz[0]), abs=1e-6)
    assert proc.poll() is None
