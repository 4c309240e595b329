"""g1_tf: TF of the floating bases for RViz on a distro install.

robot_state_publisher turns joint states into the TF of the links; the floating base (world -> pelvis)
comes from odometry: the simulator's ground truth (or a state estimator on the robot), and for the
reference ghost (world -> reference/pelvis) from the reference window's next frame.
tf2_ros is not on PyPI: in the pip world use `g1 track --foxglove`, whose bridge sends the same frames.
"""

from __future__ import annotations

import sys

import rclpy
from geometry_msgs.msg import TransformStamped
from nav_msgs.msg import Odometry
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from g1_common import shutdown, topics
from g1_interfaces.msg import ReferenceWindow


class TfNode(Node):
    def __init__(self, broadcaster_cls):
        super().__init__("g1_tf")
        self.declare_parameter("odometry_topic", topics.GROUND_TRUTH_ODOM)
        self.broadcaster = broadcaster_cls(self)
        self.create_subscription(Odometry, self.get_parameter("odometry_topic").value, self._on_odom,
                                 topics.CONTROL_QOS)
        self.create_subscription(ReferenceWindow, topics.REFERENCE_WINDOW, self._on_reference, topics.CONTROL_QOS)

    def _send(self, stamp, child, position, orientation):
        t = TransformStamped()
        t.header.stamp = stamp
        t.header.frame_id = "world"
        t.child_frame_id = child
        t.transform.translation.x, t.transform.translation.y, t.transform.translation.z = (
            position.x, position.y, position.z)
        t.transform.rotation = orientation
        self.broadcaster.sendTransform(t)

    def _on_odom(self, msg: Odometry):
        self._send(msg.header.stamp, "pelvis", msg.pose.pose.position, msg.pose.pose.orientation)

    def _on_reference(self, msg: ReferenceWindow):
        f = msg.next_frame
        self._send(msg.header.stamp, "reference/pelvis", f.root_position, f.root_orientation)


def main(args=None) -> int:
    try:
        from tf2_ros import TransformBroadcaster
    except ImportError:
        print("g1_tf: tf2_ros is not installed (it is not on PyPI). On a ROS 2 distro install it is part of "
              "ros-<distro>-tf2-ros; in the pip world use `g1 track --foxglove` for live 3D views.", file=sys.stderr)
        return 2
    shutdown.init(args)
    node = TfNode(TransformBroadcaster)
    try:
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        shutdown.spin(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
