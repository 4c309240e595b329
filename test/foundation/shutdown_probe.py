"""A node that takes messages as fast as DDS delivers them, run under g1_common.shutdown; stopped by a signal.

Prints ``ready`` once spinning, and ``stopped <messages received> <context valid at cleanup>`` on a clean exit.
"""

import sys
import threading

import rclpy
from rclpy.executors import SingleThreadedExecutor
from sensor_msgs.msg import JointState

from g1_common import shutdown

shutdown.init()
node = rclpy.create_node("shutdown_probe")
received = [0]
node.create_subscription(JointState, "/shutdown_probe", lambda m: received.__setitem__(0, received[0] + 1), 100)
pub = node.create_publisher(JointState, "/shutdown_probe", 100)
msg = JointState(name=[f"j{i}" for i in range(29)], position=[0.1] * 29, velocity=[0.0] * 29, effort=[0.0] * 29)


def flood():
    while not shutdown.requested():
        pub.publish(msg)


executor = SingleThreadedExecutor()
executor.add_node(node)
threading.Thread(target=flood, daemon=True).start()
context_valid_at_cleanup = []


def run():
    ready = False
    while shutdown.ok():
        executor.spin_once(timeout_sec=0.1)
        if not ready and received[0] > 0:
            print("ready", flush=True)
            ready = True
    context_valid_at_cleanup.append(rclpy.ok())


code = shutdown.run_until_shutdown(node, run)
print("stopped", received[0], context_valid_at_cleanup[0], flush=True)
sys.exit(code)
