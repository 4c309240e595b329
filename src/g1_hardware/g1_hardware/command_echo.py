"""g1_command_echo: a minimal lockstep peer that answers every joint_states with a command stamped alike.

It holds the default pose with the stand gains (the robot stays up without a policy), optionally with
an arm wave driven by the tick time and a small feedback of the joint velocities, so that a command
paired with the wrong tick would change the result (what the determinism test and the bench need).
It takes part in the readiness handshake of docs/lockstep.md and runs an EventsExecutor spin_once loop
driven by message arrival, like the real peers.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String

from g1_common import conversions, ticks, topics
from g1_description import robot
from g1_common import shutdown
from g1_interfaces.msg import JointCommand

_ARM_WAVE_JOINTS = [robot.JOINT_INDEX["left_shoulder_pitch_joint"], robot.JOINT_INDEX["right_shoulder_pitch_joint"]]


def stand_command_arrays(tick: int, dq: np.ndarray, wave_amplitude_rad: float, feedback_gain: float) -> np.ndarray:
    """Position targets: default pose + arm wave at 0.5 Hz - ``feedback_gain`` * joint velocity (a
    state-dependent term that adds damping, so each command depends on the exact state it answers)."""
    q = robot.DEFAULT_JOINT_POS.copy()
    q[_ARM_WAVE_JOINTS] += wave_amplitude_rad * math.sin(2 * math.pi * 0.5 * tick * robot.CONTROL_PERIOD_S)
    return robot.clip_to_limits(q - feedback_gain * dq)


class CommandEcho(Node):
    def __init__(self):
        super().__init__("command_echo")
        self.wave = self.declare_parameter("wave_amplitude_rad", 0.0).value
        self.feedback = self.declare_parameter("feedback_gain", 0.0).value
        self.pub = self.create_publisher(JointCommand, topics.JOINT_COMMAND, topics.CONTROL_QOS)
        self.ready_pub = self.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self.create_subscription(JointState, topics.JOINT_STATES, self._on_state, topics.CONTROL_QOS)
        self.said_ready = False

    def _on_state(self, msg: JointState) -> None:
        tick = ticks.stamp_to_tick(msg.header.stamp)
        _, dq, _ = conversions.joint_state_to_arrays(msg)
        q = stand_command_arrays(tick or 0, dq, self.wave, self.feedback)
        self.pub.publish(conversions.make_joint_command(msg.header.stamp, q, robot.STAND_KP, robot.STAND_KD,
                                                        source=JointCommand.SOURCE_SAFETY))

    def maybe_say_ready(self) -> None:
        """Ready once our command publisher, state subscription and /clock subscription are matched."""
        uses_sim_time = self.get_parameter("use_sim_time").value
        if self.said_ready or self.pub.get_subscription_count() < 1 \
                or self.count_publishers(topics.JOINT_STATES) < 1 \
                or (uses_sim_time and self.count_publishers("/clock") < 1):
            return
        self.ready_pub.publish(String(data=self.get_name()))
        self.said_ready = True
        self.get_logger().info("ready")


def main(args=None) -> int:
    shutdown.init(args)
    node = CommandEcho()
    executor = EventsExecutor()
    executor.add_node(node)

    return shutdown.run_until_shutdown(node, lambda: shutdown.spin(executor, node.maybe_say_ready))


if __name__ == "__main__":
    sys.exit(main())
