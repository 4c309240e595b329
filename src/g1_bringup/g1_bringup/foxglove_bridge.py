"""foxglove_bridge: serve the live graph to the Foxglove app on 127.0.0.1 (the pip world's RViz).

The tracking topics are forwarded as real ROS 2 messages (raw CDR with their ros2msg schemas), each read
with a QoS that matches its publishers (the recorder's reliable profile for control data, the
visualisation profile for the best-effort reference ghost and markers, else they never match), the
URDF as ``/robot_description``, and TF-equivalent ``FrameTransforms`` for the robot and the reference
ghost computed by MuJoCo forward kinematics (tf2 is not on PyPI). Open Foxglove, connect to
``ws://127.0.0.1:8765``, and add a 3D panel (URDF from /robot_description) and plots of
/tracking_status.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node

from g1_common import conversions, shutdown, topics
from g1_common.ticks import cdr_header_stamp_ns
from g1_description import mjcf, urdf

from . import typesys
from .recorder import DEFAULT_TOPICS, RECORD_QOS, _import_class

#: topic -> (message class path, reader QoS). A reliable reader never matches a best-effort writer, so the
#: visualisation topics are read with the profile their publishers use (g1_common.topics.VIS_QOS).
FORWARDED = {topic: (class_path, RECORD_QOS) for topic, class_path in DEFAULT_TOPICS.items()}
FORWARDED[topics.REFERENCE_JOINT_STATES] = ("sensor_msgs.msg.JointState", topics.VIS_QOS)
FORWARDED[topics.REFERENCE_MARKERS] = ("visualization_msgs.msg.MarkerArray", topics.VIS_QOS)
TF_PERIOD_S = 0.04  # 25 Hz is plenty for a viewer


class FoxgloveBridge(Node):
    def __init__(self):
        super().__init__("foxglove_bridge")
        import foxglove
        from foxglove import Channel, Schema

        self.declare_parameter("host", "127.0.0.1")
        self.declare_parameter("port", 8765)
        self.server = foxglove.start_server(name="g1_tracker", host=self.get_parameter("host").value,
                                            port=int(self.get_parameter("port").value))
        self.channels = {}
        for topic, (class_path, qos) in FORWARDED.items():
            type_name = typesys.ros_type_name(_import_class(class_path))
            schema = Schema(name=type_name, encoding="ros2msg", data=typesys.msgdef(type_name).encode())
            self.channels[topic] = Channel("/" + topic, schema=schema, message_encoding="cdr")
            self.create_subscription(_import_class(class_path), topic,
                                     lambda data, t=topic: self._forward(t, data), qos, raw=True)
        desc_schema = Schema(name="std_msgs/msg/String", encoding="ros2msg", data=b"string data")
        self._description = Channel("/robot_description", schema=desc_schema, message_encoding="json")
        self._urdf = urdf.generate_urdf()
        self._tf = foxglove.channels.FrameTransformsChannel("/tf")
        self._fk = _Kinematics()
        self._robot_pose = None
        self._last_tf = 0.0
        self.create_subscription(_import_class("nav_msgs.msg.Odometry"), topics.GROUND_TRUTH_ODOM,
                                 self._on_odom, topics.CONTROL_QOS)
        self.create_subscription(_import_class("sensor_msgs.msg.JointState"), topics.JOINT_STATES,
                                 self._on_joints, topics.CONTROL_QOS)
        self.create_timer(1.0, self._publish_description, clock=rclpy.clock.Clock())
        self.get_logger().info(f"Foxglove: connect to ws://{self.get_parameter('host').value}:"
                               f"{self.get_parameter('port').value}")

    def _forward(self, topic: str, data: bytes):
        stamp = cdr_header_stamp_ns(data) or time.time_ns()
        self.channels[topic].log(bytes(data), log_time=stamp)

    def _publish_description(self):
        self._description.log({"data": self._urdf})

    def _on_odom(self, msg):
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        self._robot_pose = (np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z]))

    def _on_joints(self, msg):
        if self._robot_pose is None or time.monotonic() - self._last_tf < TF_PERIOD_S:
            return
        self._last_tf = time.monotonic()
        try:
            q, _, _ = conversions.joint_state_to_arrays(msg)
        except conversions.MessageError:
            return
        self._tf.log(self._fk.frame_transforms(*self._robot_pose, q))


class _Kinematics:
    """World poses of every link from the root pose and joint positions (MuJoCo FK)."""

    def __init__(self):
        import mujoco

        self.mujoco = mujoco
        self.model = mjcf.build_kinematic_model()
        self.data = mujoco.MjData(self.model)

    def frame_transforms(self, root_pos, root_quat_wxyz, q):
        from foxglove.messages import FrameTransform, FrameTransforms, Quaternion, Vector3

        d = self.data
        d.qpos[:3], d.qpos[3:7], d.qpos[7:] = root_pos, root_quat_wxyz, q
        self.mujoco.mj_kinematics(self.model, d)
        out = []
        for b in range(1, self.model.nbody):
            x, w = d.xpos[b], d.xquat[b]
            out.append(FrameTransform(parent_frame_id="world", child_frame_id=self.model.body(b).name,
                                      translation=Vector3(x=float(x[0]), y=float(x[1]), z=float(x[2])),
                                      rotation=Quaternion(w=float(w[0]), x=float(w[1]), y=float(w[2]),
                                                          z=float(w[3]))))
        return FrameTransforms(transforms=out)


def main(args=None) -> int:
    shutdown.init(args)
    node = None
    try:
        node = FoxgloveBridge()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        shutdown.spin(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.server.stop()
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
