"""The g1_policy node running a policy that observes the robot's position - one trained elsewhere (an
mjlab-style export with a shuffled joint order) and one of ours with the ``ref_root_pos_xy`` term - over
real DDS in lockstep: it waits for the odometry it observes, tracks with the artifact's own gains, and
holds when the odometry stops (never a stale position), refusing to track again until it is back."""

import pytest

import numpy as np
from nav_msgs.msg import Odometry

from g1_common import ticks, topics
from g1_description import robot
from g1_interfaces.msg import JointCommand, ReferenceWindow, TrackingStatus
from g1_tracker_policy import external
from g1_tracker_policy.observation import ObservationConfig
from g1_tracker_policy.testing import make_external_test_policy, make_test_policy, standing_window
from policy_harness import Harness, playing
from policy_harness import harness  # noqa: F401  (pytest fixture)

NODE = ("-m", "g1_tracker_policy.node", "--ros-args", "-p", "use_sim_time:=true",
        "-p", "lockstep_input_timeout_s:=0.05")
ODOM = "test/odom"


@pytest.mark.parametrize("which", ["mjlab", "ours_with_root_position"])
def test_policy_observing_position_tracks_with_its_gains_and_holds_without_odometry(which, harness, node_processes,
                                                                                     tmp_path):
    if which == "mjlab":
        names = tuple(np.random.default_rng(5).permutation(robot.JOINT_NAMES))
        path = make_external_test_policy("mjlab", tmp_path / "theirs.onnx", joint_names=names)
        name = "policy:mjlab:theirs"
    else:
        cfg = ObservationConfig(reference_terms=("ref_root_height", "ref_roll_pitch", "ref_root_pos_xy", "ref_joint_pos"))
        assert cfg.needs_odometry
        path = tmp_path / "ours.onnx"
        make_test_policy("moe", path, obs_config=cfg)
        name = "policy:test-moe-small"
    art = external.load_policy(path)
    pub_odom = harness.create_publisher(Odometry, ODOM, topics.CONTROL_QOS)
    node_processes.start(*NODE, "-p", f"policy_path:={path}", "-p", f"odom_topic:={ODOM}", "-p", "stand_ramp_s:=0.4",
                         "-p", "auto_track:=true", "-p", "track_ramp_skip_rad:=1.0", name="g1_policy")
    harness.wait_ready()  # needs an odometry publisher too

    def tick(k, window, odom=True):
        if odom:
            msg = Odometry()
            msg.header.stamp = ticks.stamp_from_tick(k)
            msg.pose.pose.position.z = robot.DEFAULT_ROOT_HEIGHT_M
            msg.pose.pose.orientation.w = 1.0
            pub_odom.publish(msg)
        return harness.lockstep_tick(k, window)

    idle = standing_window(state=ReferenceWindow.STATE_IDLE, motion_name="")
    k = 0
    for _ in range(3):
        cmd, st = tick(k, idle)
        k += 1
    assert st.controller == name
    assert harness.set_mode("stand").success
    for _ in range(25):
        cmd, st = tick(k, idle)
        k += 1
    assert st.mode == TrackingStatus.MODE_STAND
    for i in range(20):  # auto_track: the policy runs
        cmd, st = tick(k, playing(t=i * robot.CONTROL_PERIOD_S))
        k += 1
    assert st.mode == TrackingStatus.MODE_TRACK and cmd.source == JointCommand.SOURCE_POLICY
    np.testing.assert_allclose(cmd.kp, art.kp, rtol=1e-6)       # SDK order on the wire, the file's gains
    np.testing.assert_allclose(cmd.kd, art.kd, rtol=1e-6)
    assert list(cmd.joint_names) == list(robot.JOINT_NAMES)
    # the odometry stops: the tick still runs (after the input timeout) and the policy is not fed a stale
    # position: it holds the last target (damping would drop a robot whose joint state and IMU are fine)
    cmd, st = tick(k, playing(t=0.5), odom=False)
    k += 1
    assert st.mode == TrackingStatus.MODE_HOLD and st.watchdog == TrackingStatus.WATCHDOG_STATE_LATE, st.watchdog_detail
    assert cmd.source == JointCommand.SOURCE_SAFETY and min(cmd.kp) > 0
    assert "odometry" in st.watchdog_detail, st.watchdog_detail
    for i in range(3):  # still none: held
        cmd, st = tick(k, playing(t=0.52 + i * robot.CONTROL_PERIOD_S), odom=False)
        k += 1
    assert st.mode == TrackingStatus.MODE_HOLD and min(cmd.kp) > 0, st.watchdog_detail
    # and a track request is refused until a fresh position comes (the latest is 80 ms old), with the reason
    refused = harness.set_mode("track")
    assert not refused.success and "odometry" in refused.message, refused.message
    for i in range(3):
        cmd, st = tick(k, playing(t=0.6 + i * robot.CONTROL_PERIOD_S))
        k += 1
    assert harness.set_mode("track").success
