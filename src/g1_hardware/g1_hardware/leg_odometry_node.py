"""g1_leg_odometry: publishes the pelvis pose and velocity estimated from joint_states + imu (leg
odometry, :mod:`g1_hardware.leg_odometry`) as nav_msgs/Odometry on ``state_estimate/odom``, for policies
that observe the robot's position on a robot without another state estimator.

Each estimate is published once the joint state and the IMU reading with the same stamp are both in (the
driver and the simulator stamp the pair alike), stamped like them: in lockstep the policy finds the
odometry of tick t_k stamped t_k, as from the simulator's ground truth. A NaN/inf reading is skipped
(warned): nothing is published for it, and the policy holds once its position is late.
"""

from __future__ import annotations

import sys

import numpy as np
from geometry_msgs.msg import Point, Quaternion, Vector3
from nav_msgs.msg import Odometry
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String

from g1_common import conversions, shutdown, ticks, topics
from g1_description import robot
from g1_hardware.leg_odometry import LegOdometry, LegOdometryConfig

PARAMETERS = {
    "load_power": LegOdometryConfig.load_power,
    "min_load_nm": LegOdometryConfig.min_load_nm,
    "velocity_alpha": LegOdometryConfig.velocity_alpha,
    "initial_x": 0.0,
    "initial_y": 0.0,
}


class LegOdometryNode(Node):
    def __init__(self, **node_kwargs):
        super().__init__("g1_leg_odometry", **node_kwargs)
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        self.estimator = LegOdometry(LegOdometryConfig(
            load_power=float(p["load_power"]), min_load_nm=float(p["min_load_nm"]), velocity_alpha=float(p["velocity_alpha"]),
            initial_xy=(float(p["initial_x"]), float(p["initial_y"]))))
        self.pub = self.create_publisher(Odometry, topics.LEG_ODOM, topics.CONTROL_QOS)
        self.pub_ready = self.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_state, topics.CONTROL_QOS)
        self.create_subscription(Imu, topics.IMU, self._on_imu, topics.CONTROL_QOS)
        self._states: dict[int, tuple] = {}       # stamp (ns) -> joint positions, efforts; waiting for the IMU
        self._imus: dict[int, np.ndarray] = {}    # stamp (ns) -> orientation wxyz, waiting for the state
        self._ready_sent = False
        self.get_logger().info(f"leg odometry from {topics.JOINT_STATES} + {topics.IMU} on {topics.LEG_ODOM}")

    def _on_state(self, msg: JointState) -> None:
        try:
            q, _, tau = conversions.joint_state_to_arrays(msg)
        except ValueError as exc:
            self.get_logger().warning(f"joint_states skipped: {exc}", throttle_duration_sec=1.0)
            return
        self._pair(ticks.stamp_to_ns(msg.header.stamp), (q, tau), None, msg.header.stamp)

    def _on_imu(self, msg: Imu) -> None:
        o = msg.orientation
        self._pair(ticks.stamp_to_ns(msg.header.stamp), None, np.array([o.w, o.x, o.y, o.z]), msg.header.stamp)

    def _pair(self, stamp_ns: int, state, quat, stamp) -> None:
        if state is not None:
            self._states[stamp_ns] = state
        if quat is not None:
            self._imus[stamp_ns] = quat
        if stamp_ns in self._states and stamp_ns in self._imus:
            state, quat = self._states.pop(stamp_ns), self._imus.pop(stamp_ns)
            for buf in (self._states, self._imus):  # older unpaired readings will not be used
                for old in [k for k in buf if k < stamp_ns]:
                    del buf[old]
            self._estimate(*state, quat, stamp_ns, stamp)
        for buf in (self._states, self._imus):
            while len(buf) > 16:
                del buf[min(buf)]

    def _estimate(self, q, tau, quat, stamp_ns: int, stamp) -> None:
        try:
            pos, vel = self.estimator.update(q, quat, stamp_ns * 1e-9, tau)
        except ValueError as exc:
            self.get_logger().warning(f"reading skipped: {exc}", throttle_duration_sec=1.0)
            return
        msg = Odometry()
        msg.header.stamp, msg.header.frame_id, msg.child_frame_id = stamp, "odom", robot.ROOT_BODY
        msg.pose.pose.position = Point(x=float(pos[0]), y=float(pos[1]), z=float(pos[2]))
        w, x, y, z = (float(v) for v in quat / np.linalg.norm(quat))
        msg.pose.pose.orientation = Quaternion(w=w, x=x, y=y, z=z)
        msg.twist.twist.linear = Vector3(x=float(vel[0]), y=float(vel[1]), z=float(vel[2]))
        self.pub.publish(msg)

    def maybe_say_ready(self) -> None:
        """Lockstep readiness (docs/lockstep.md): once the inputs and a reader of the odometry are matched."""
        if self._ready_sent or self.pub.get_subscription_count() < 1 \
                or self.count_publishers(topics.JOINT_STATES) < 1 or self.count_publishers(topics.IMU) < 1:
            return
        self.pub_ready.publish(String(data=self.get_name()))
        self._ready_sent = True
        self.get_logger().info("inputs and a reader matched: published ready")


def main(args=None) -> int:
    shutdown.init(args)
    node = LegOdometryNode()
    executor = EventsExecutor()
    executor.add_node(node)
    return shutdown.run_until_shutdown(node, lambda: shutdown.spin(executor, node.maybe_say_ready))


if __name__ == "__main__":
    sys.exit(main())
