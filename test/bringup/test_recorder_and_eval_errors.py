"""Recorder writes standard rosbag2/MCAP over real DDS; g1 eval / g1 track refuse bad input clearly."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
import rclpy
from rclpy.node import Node
from rosbags.rosbag2 import Reader
from std_msgs.msg import String

from g1_common import conversions, ticks, topics
from g1_interfaces.msg import TrackingStatus

G1 = [sys.executable, "-m", "g1_bringup.cli"]


def _run_g1(*args, timeout=120):
    return subprocess.run([*G1, *args], capture_output=True, text=True, timeout=timeout)


def test_recorder_writes_a_standard_bag_without_loss(tmp_path, node_processes):
    bag = tmp_path / "bag"
    rec = node_processes.start("-m", "g1_bringup.recorder", "--ros-args", "-p", f"output:={bag}",
                               "-p", "topics:=[joint_states,tracking_status]", name="recorder")
    rclpy.init()
    node = Node("recorder_test_pub")
    try:
        js = node.create_publisher(__import__("sensor_msgs.msg", fromlist=["JointState"]).JointState,
                                   topics.JOINT_STATES, topics.CONTROL_QOS)
        st = node.create_publisher(TrackingStatus, topics.TRACKING_STATUS, topics.CONTROL_QOS)
        ready = []
        node.create_subscription(String, topics.READY, lambda m: ready.append(m.data), topics.LATCHED_QOS)
        deadline = time.monotonic() + 30
        while not ready and time.monotonic() < deadline:
            rclpy.spin_once(node, timeout_sec=0.05)
        assert ready == ["g1_recorder"], node_processes.logs()
        n = 1500  # 30 s of 50 Hz data at 500 Hz, i.e. a lockstep run at 10x real time
        for k in range(n):
            time.sleep(0.002)
            js.publish(conversions.make_joint_state(ticks.stamp_from_tick(k), np.full(29, k * 1e-3), np.zeros(29)))
            status = TrackingStatus(tick=k)
            status.header.stamp = ticks.stamp_from_tick(k)
            st.publish(status)
        time.sleep(1.0)
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert node_processes.stop(rec) == 0, node_processes.logs()
    with Reader(bag) as reader:
        counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == {"/joint_states": n, "/tracking_status": n}
        stamps = [t for _, t, _ in reader.messages()]
        assert sorted(stamps)[0] == 0 and max(stamps) == ticks.tick_to_ns(n - 1)  # logged at tick stamps


def test_eval_of_a_bag_without_the_needed_topics_fails_clearly(tmp_path):
    from g1_bringup.recorder import BagRecorder

    bag = tmp_path / "partial"
    recorder = BagRecorder(bag, {topics.JOINT_STATES: "sensor_msgs.msg.JointState"})
    recorder.close()
    out = _run_g1("eval", str(bag), "--out", str(tmp_path / "report"))
    assert out.returncode != 0
    assert "lacks topics" in out.stderr and "reference_window" in out.stderr
    assert not (tmp_path / "report" / "report.json").exists()


def test_eval_of_a_bag_whose_topics_stayed_silent_fails_clearly(tmp_path):
    """The recorder subscribed to everything but the simulator never published (it did not start)."""
    from g1_bringup.recorder import DEFAULT_TOPICS, BagRecorder

    bag = tmp_path / "silent"
    BagRecorder(bag, dict(DEFAULT_TOPICS)).close()
    out = _run_g1("eval", str(bag), "--out", str(tmp_path / "report"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "has no" in out.stderr and "messages" in out.stderr
    assert not (tmp_path / "report" / "report.json").exists()


def test_eval_of_a_missing_bag_fails_clearly(tmp_path):
    out = _run_g1("eval", str(tmp_path / "nope"))
    assert out.returncode != 0 and "not a rosbag2 directory" in out.stderr


def test_track_refuses_unknown_motion_and_missing_policy(tmp_path):
    out = _run_g1("track", "--motion", "no_such_motion_xyz", "--library", str(tmp_path / "lib"),
                  "--out", str(tmp_path / "run1"))
    assert out.returncode != 0 and "no_such_motion_xyz" in out.stderr
    assert not (tmp_path / "run1").exists()
    out = _run_g1("track", "--policy", str(tmp_path / "missing.onnx"), "--out", str(tmp_path / "run2"))
    assert out.returncode != 0 and "missing.onnx does not exist" in out.stderr
    assert not (tmp_path / "run2").exists()
    (tmp_path / "a_file").write_text("not a directory")
    out = _run_g1("track", "--baseline", "--out", str(tmp_path / "a_file"))
    assert out.returncode == 2 and "is not a directory" in out.stderr and "Traceback" not in out.stderr
    assert (tmp_path / "a_file").read_text() == "not a directory"


def test_eval_reads_reference_windows_by_both_decoders_alike(tmp_path):
    """Windows are decoded with numpy (window_cdr); one that does not validate (NaN) falls back to rosbags
    and is still read, as recorded. Both paths give the evaluation the same next frame."""
    from rclpy.serialization import serialize_message

    from g1_bringup.evaluation import _next_frame, as_window, read_bag
    from g1_bringup.recorder import DEFAULT_TOPICS, BagRecorder
    from g1_common import window_cdr
    from g1_description import robot
    from motion_server.reference import DEFAULT_FUTURE_OFFSETS, ReferenceWindowData, WindowState

    rng = np.random.default_rng(3)
    f, k = 1 + len(DEFAULT_FUTURE_OFFSETS), len(robot.KEY_BODIES)
    q = rng.normal(size=(f, 4))
    good = ReferenceWindowData(
        times_s=np.arange(f) * 0.02, joint_pos=rng.normal(size=(f, 29)), joint_vel=rng.normal(size=(f, 29)),
        root_pos=rng.normal(size=(f, 3)), root_quat_wxyz=q / np.linalg.norm(q, axis=1, keepdims=True),
        root_lin_vel=rng.normal(size=(f, 3)), root_ang_vel=rng.normal(size=(f, 3)),
        key_body_pos=rng.normal(size=(f, k, 3)), motion_name="wave", clip_time_s=1.0, clip_duration_s=8.0,
        state=WindowState.PLAYING)
    bad_msg = conversions.window_to_msg(good, ticks.stamp_from_tick(1))
    bad_msg.next_frame.joint_positions[3] = float("nan")
    bag = tmp_path / "windows"
    recorder = BagRecorder(bag, dict(DEFAULT_TOPICS))
    recorder.write(topics.REFERENCE_WINDOW, window_cdr.encode(good, ticks.tick_to_ns(0)), 0)
    recorder.write(topics.REFERENCE_WINDOW, serialize_message(bad_msg), 0)
    recorder.close()

    (_, fast), (_, slow) = read_bag(bag)[topics.REFERENCE_WINDOW]
    assert isinstance(fast, ReferenceWindowData) and not isinstance(slow, ReferenceWindowData)
    a, b = _next_frame(fast), _next_frame(slow)
    for i, (x, y) in enumerate(zip(a, b)):
        if i == 1:  # the NaN joint
            assert np.isnan(y[3]) and np.array_equal(np.delete(np.asarray(x), 3), np.delete(np.asarray(y), 3))
        else:
            np.testing.assert_array_equal(np.asarray(x, dtype=float), np.asarray(y, dtype=float), err_msg=str(i))
    assert (slow.motion_name, slow.state, tuple(slow.key_body_names)) == (fast.motion_name, fast.state,
                                                                          fast.key_body_names)
    with pytest.raises(conversions.MessageError, match="not finite|NaN"):
        as_window(slow)  # replay refuses what the policy node would have refused


def test_track_with_a_damaged_library_fails_clearly(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "index.json").write_text('{"motions": []}')  # JSON, but not an index
    out = _run_g1("track", "--motion", "any_clip", "--library", str(lib), "--out", str(tmp_path / "run"))
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "index.json" in out.stderr
