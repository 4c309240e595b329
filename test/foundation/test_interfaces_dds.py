"""Two separate processes exchange every custom message and call every service over real DDS."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import rclpy
from rclpy.node import Node

import g1_interfaces.msg as M
import g1_interfaces.srv as S

PEER = Path(__file__).with_name("interface_peer.py")
MESSAGES = [M.ReferenceFrame, M.ReferenceWindow, M.JointCommand, M.TrackingStatus, M.KeyBodyPositions]


def _fill(msg, rng, depth=0):
    """Fill every field of ``msg`` with distinct random values (recursing into nested messages)."""
    for field, type_name in msg.get_fields_and_field_types().items():
        value = getattr(msg, field)
        if hasattr(value, "get_fields_and_field_types"):
            _fill(value, rng, depth + 1)
        elif type_name.startswith("sequence<") or type_name.endswith("]"):
            inner = type_name[len("sequence<"):-1] if type_name.startswith("sequence<") else type_name.split("[")[0]
            n = 3
            if "/" in inner:  # sequence of messages
                pkg, name = inner.split("/")
                mod = __import__(f"{pkg}.msg", fromlist=[name])
                items = []
                for _ in range(n):
                    item = getattr(mod, name)()
                    _fill(item, rng, depth + 1)
                    items.append(item)
                setattr(msg, field, items)
            elif inner == "string":
                setattr(msg, field, [f"s{rng.integers(1000)}" for _ in range(n)])
            elif inner.startswith("float"):
                setattr(msg, field, rng.normal(size=n).astype(np.float32 if inner == "float" else np.float64).tolist())
            else:
                setattr(msg, field, rng.integers(0, 100, size=n).tolist())
        elif type_name == "string":
            setattr(msg, field, f"text-{rng.integers(1_000_000)}")
        elif type_name == "boolean":
            setattr(msg, field, True)
        elif type_name in ("float", "double"):
            setattr(msg, field, float(np.float32(rng.normal())))
        elif type_name.startswith(("uint", "int", "octet")):
            setattr(msg, field, int(rng.integers(0, 100)))
    return msg


@pytest.fixture
def ros_node():
    rclpy.init()
    node = Node("interface_test")
    yield node
    node.destroy_node()
    rclpy.shutdown()


def _spin_until(node, predicate, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.05)
        if predicate():
            return True
    return False


def test_every_message_and_service_crosses_processes(ros_node, node_processes):
    node_processes.start(str(PEER), name="interface_peer")
    rng = np.random.default_rng(7)

    received = {}
    pubs = {}
    for t in MESSAGES:
        pubs[t] = ros_node.create_publisher(t, f"iface/{t.__name__}", 10)
        ros_node.create_subscription(t, f"iface/{t.__name__}/echo",
                                     lambda m, t=t: received.setdefault(t.__name__, m), 10)
    assert _spin_until(ros_node, lambda: all(p.get_subscription_count() > 0 for p in pubs.values()), 30), \
        "peer did not subscribe:\n" + node_processes.logs()

    sent = {}
    for t in MESSAGES:
        sent[t.__name__] = _fill(t(), rng)
    # a ReferenceWindow with a realistic size too: 29 joints, 14 key bodies, 21 future frames
    window = sent["ReferenceWindow"]
    frame = M.ReferenceFrame(joint_positions=[0.1] * 29, joint_velocities=[0.2] * 29,
                             key_body_positions=[1.0, 2.0, 3.0] * 14)
    window.future_frames = [frame] * 21
    window.future_offsets = list(range(21))

    deadline = time.monotonic() + 20
    while len(received) < len(MESSAGES) and time.monotonic() < deadline:
        for t in MESSAGES:
            if t.__name__ not in received:
                pubs[t].publish(sent[t.__name__])
        _spin_until(ros_node, lambda: len(received) == len(MESSAGES), 0.5)
    assert set(received) == {t.__name__ for t in MESSAGES}, node_processes.logs()
    for name, msg in sent.items():
        assert received[name] == msg, f"{name} changed on the way through DDS"

    requests = {
        "PlayMotion": S.PlayMotion.Request(name="squat", loop=True, speed=1.5, start_time_s=2.0, enqueue=True),
        "StopMotion": S.StopMotion.Request(blend_to_default=True),
        "ListMotions": S.ListMotions.Request(pattern="dance*"),
        "SetMode": S.SetMode.Request(mode="TRACK"),
        "ResetSim": S.ResetSim.Request(pose="explicit", joint_positions=[0.5] * 29),
        "PushRobot": S.PushRobot.Request(),
        "StepSim": S.StepSim.Request(ticks=5),
    }
    requests["ResetSim"].root_position.z = 0.75
    requests["ResetSim"].root_orientation.w = 1.0
    requests["PushRobot"].linear_velocity.x = 0.8
    requests["PushRobot"].angular_velocity.z = -0.3
    expected = {
        "PlayMotion": lambda r: r.success and r.message == "squat|True|1.5|2.0|True" and r.duration_s == 12.5,
        "StopMotion": lambda r: r.message == "blend=True",
        "ListMotions": lambda r: list(r.names) == ["dance*", "b"] and list(r.fps) == [50.0, 60.0],
        "SetMode": lambda r: r.mode == "track",
        "ResetSim": lambda r: r.message == f"explicit|0.75|1.0|{[0.5] * 29}",
        "PushRobot": lambda r: r.message == "0.8|-0.3",
        "StepSim": lambda r: r.sim_time_s == pytest.approx(0.1),
    }
    for name, request in requests.items():
        client = ros_node.create_client(getattr(S, name), f"iface/{name}")
        assert client.wait_for_service(timeout_sec=20), f"service iface/{name} not available"
        future = client.call_async(request)
        assert _spin_until(ros_node, future.done, 10), f"no response from iface/{name}"
        assert expected[name](future.result()), f"{name}: unexpected response {future.result()}"
