"""Leg odometry (g1_hardware.leg_odometry): the pelvis from the joint encoders, knee torques and IMU."""

from __future__ import annotations

import time

import numpy as np
import pytest

from g1_description import robot
from g1_hardware.leg_odometry import KNEES, LegOdometry, LegOdometryConfig

UPRIGHT = np.array([1.0, 0.0, 0.0, 0.0])


def yaw_quat(yaw: float) -> np.ndarray:
    return np.array([np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)])


def effort(left_knee_nm: float, right_knee_nm: float) -> np.ndarray:
    tau = np.zeros(robot.NUM_JOINTS)
    tau[list(KNEES)] = (left_knee_nm, right_knee_nm)
    return tau


def test_standing_still_at_the_default_pose_is_the_default_height_at_the_start():
    odo = LegOdometry(LegOdometryConfig(initial_xy=(1.0, -2.0)))
    for k in range(20):
        pos, vel = odo.update(robot.DEFAULT_JOINT_POS, yaw_quat(0.7), k * 0.02, effort(-10, -10))
    np.testing.assert_allclose(pos, [1.0, -2.0, robot.DEFAULT_ROOT_HEIGHT_M], atol=1e-9)
    np.testing.assert_allclose(vel, 0.0, atol=1e-9)


def test_the_loaded_foot_stands_still_and_the_swing_foot_does_not_move_the_pelvis():
    """Moving the right leg's hip pitch while the left knee carries the load moves the right foot, not
    the pelvis; the same motion with the right leg loaded moves the pelvis by minus the right foot's motion."""
    odo = LegOdometry()
    hip = robot.JOINT_INDEX["right_hip_pitch_joint"]
    q = robot.DEFAULT_JOINT_POS.copy()
    odo.update(q, UPRIGHT, 0.0, effort(-20, 0))
    q2 = q.copy()
    q2[hip] -= 0.3  # the right foot swings forward
    pos, _ = odo.update(q2, UPRIGHT, 0.02, effort(-20, 0))
    np.testing.assert_allclose(pos[:2], [0.0, 0.0], atol=1e-9)
    feet_before, feet_after = odo.feet_from_pelvis(q, UPRIGHT), odo.feet_from_pelvis(q2, UPRIGHT)
    assert feet_after[1, 0] - feet_before[1, 0] > 0.05  # it did move forward relative to the pelvis
    odo2 = LegOdometry()
    odo2.update(q, UPRIGHT, 0.0, effort(0, -20))
    pos2, vel2 = odo2.update(q2, UPRIGHT, 0.02, effort(0, -20))
    np.testing.assert_allclose(pos2[:2], -(feet_after[1, :2] - feet_before[1, :2]), atol=1e-9)
    assert vel2[0] < -0.5  # the pelvis moved backwards over the planted right foot


def test_weights_follow_the_knee_torques_and_fall_back_to_the_lower_foot():
    odo = LegOdometry()
    feet = np.array([[0.0, 0.1, -0.70], [0.0, -0.1, -0.72]])
    np.testing.assert_allclose(odo.contact_weights(effort(-10, -10), feet), [0.5, 0.5])
    w = odo.contact_weights(effort(-20, -5), feet)
    assert w[0] == pytest.approx(400 / 425)  # squared: single support stands out
    np.testing.assert_allclose(odo.contact_weights(None, feet), [0.0, 1.0])  # no torques: the lower foot
    np.testing.assert_allclose(odo.contact_weights(effort(0.2, -0.1), feet), [0.0, 1.0])
    np.testing.assert_allclose(odo.contact_weights(effort(np.nan, -10), feet), [0.0, 1.0])


def test_bad_readings_are_refused_and_change_nothing():
    odo = LegOdometry()
    odo.update(robot.DEFAULT_JOINT_POS, UPRIGHT, 0.0)
    before = odo.position.copy()
    bad_q = robot.DEFAULT_JOINT_POS.copy()
    bad_q[3] = np.nan
    for q, quat in ((bad_q, UPRIGHT), (robot.DEFAULT_JOINT_POS, np.array([np.nan, 0, 0, 0])),
                    (robot.DEFAULT_JOINT_POS, np.zeros(4)), (robot.DEFAULT_JOINT_POS[:28], UPRIGHT)):
        with pytest.raises(ValueError, match="finite"):
            odo.update(q, quat, 0.02)
    np.testing.assert_array_equal(odo.position, before)


def test_node_pairs_state_and_imu_by_stamp_and_skips_nan_readings(node_processes, probe):
    """Over DDS: one Odometry per (joint_states, imu) pair with equal stamps, stamped like them, in either
    arrival order; a NaN reading publishes nothing and the node goes on."""
    from builtin_interfaces.msg import Time
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Imu, JointState

    from g1_common import conversions, topics
    from hardware_helpers import log_text

    odom = probe.record(Odometry, topics.LEG_ODOM, topics.CONTROL_QOS)
    pub_state = probe.node.create_publisher(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    pub_imu = probe.node.create_publisher(Imu, topics.IMU, topics.CONTROL_QOS)
    node = node_processes.start("-m", "g1_hardware.leg_odometry_node", name="g1_leg_odometry")
    probe.spin_until(lambda: pub_state.get_subscription_count() and pub_imu.get_subscription_count()
                     and probe.node.count_publishers(topics.LEG_ODOM), 30.0, "the leg odometry node")

    def send(sec: int, nan: bool = False, imu_first: bool = False):
        stamp = Time(sec=sec)
        q = robot.DEFAULT_JOINT_POS.copy()
        if nan:
            q[0] = np.nan
        state = conversions.make_joint_state(stamp, q, np.zeros(29), effort(-10, -10))
        imu = Imu()
        imu.header.stamp, imu.orientation.w = stamp, 1.0
        for pub, msg in ((pub_imu, imu), (pub_state, state)) if imu_first else ((pub_state, state), (pub_imu, imu)):
            pub.publish(msg)
        probe.spin_for(0.05)

    sec = 1
    deadline = time.monotonic() + 20.0
    while not odom:  # until both directions of discovery are done: the first estimates may find no reader
        assert time.monotonic() < deadline, "no estimate from the leg odometry node"
        send(sec)
        sec += 1
    probe.spin_for(0.3)
    seen = len(odom)
    send(sec)
    send(sec + 1, imu_first=True)
    send(sec + 2, nan=True)
    send(sec + 3)
    probe.spin_until(lambda: len(odom) >= seen + 3, 10.0, "three estimates")
    probe.spin_for(0.3)
    assert [m.header.stamp.sec for m in odom[seen:]] == [sec, sec + 1, sec + 3]
    p = odom[-1].pose.pose.position
    np.testing.assert_allclose([p.x, p.y, p.z], [0.0, 0.0, robot.DEFAULT_ROOT_HEIGHT_M], atol=1e-6)
    assert node.poll() is None and "skipped" in log_text(node_processes, node)
