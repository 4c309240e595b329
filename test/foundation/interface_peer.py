"""Peer process for test_interfaces_dds.py: echoes every g1_interfaces message and serves every service.

Each message arriving on ``iface/<Type>`` is published back unchanged on ``iface/<Type>/echo``; each
service ``iface/<Type>`` answers with a response derived from its request, so the caller can check
that every field crossed the process boundary.
"""

import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

import g1_interfaces.msg as M
import g1_interfaces.srv as S

MESSAGES = [M.ReferenceFrame, M.ReferenceWindow, M.JointCommand, M.TrackingStatus, M.KeyBodyPositions]


def respond(srv_type, request):
    r = srv_type.Response()
    name = srv_type.__name__
    if name == "PlayMotion":
        r.success, r.message, r.duration_s = True, f"{request.name}|{request.loop}|{request.speed}|" \
            f"{request.start_time_s}|{request.enqueue}", 12.5
    elif name == "StopMotion":
        r.success, r.message = True, f"blend={request.blend_to_default}"
    elif name == "ListMotions":
        r.names, r.durations_s, r.fps, r.sources = [request.pattern, "b"], [1.0, 2.0], [50.0, 60.0], ["x", "y"]
    elif name == "SetMode":
        r.success, r.message, r.mode = True, "ok", request.mode.lower()
    elif name == "ResetSim":
        r.success = True
        r.message = f"{request.pose}|{request.root_position.z}|{request.root_orientation.w}|{list(request.joint_positions)}"
    elif name == "PushRobot":
        r.success, r.message = True, f"{request.linear_velocity.x}|{request.angular_velocity.z}"
    elif name == "StepSim":
        r.success, r.message, r.sim_time_s = True, "", request.ticks * 0.02
    return r


def main():
    rclpy.init()
    node = Node("interface_peer")
    keep = []
    for t in MESSAGES:
        pub = node.create_publisher(t, f"iface/{t.__name__}/echo", 10)
        keep.append(node.create_subscription(t, f"iface/{t.__name__}", pub.publish, 10))
    for name in ("PlayMotion", "StopMotion", "ListMotions", "SetMode", "ResetSim", "PushRobot", "StepSim"):
        srv_type = getattr(S, name)
        keep.append(node.create_service(srv_type, f"iface/{name}",
                                        lambda req, resp, t=srv_type: respond(t, req)))
    print("peer ready", flush=True)
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
