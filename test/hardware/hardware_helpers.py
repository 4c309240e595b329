"""Helpers for the hardware area's DDS tests: an in-process rclpy probe node, summaries, process logs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node


@pytest.fixture(scope="module")
def rclpy_context():
    """An rclpy context in the test process; module scope, not session: other test areas init their own
    context after this one shut down."""
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def probe(rclpy_context):
    """A probe node (below) for one test."""
    p = Probe()
    yield p
    p.node.destroy_node()


class Probe:
    """An rclpy node in the test process that records messages and calls services."""

    def __init__(self):
        self.node = Node("hardware_test_probe")
        self.received: dict[str, list] = {}

    def record(self, msg_type, topic: str, qos=10) -> list:
        box = self.received.setdefault(topic, [])
        self.node.create_subscription(msg_type, topic, box.append, qos)
        return box

    def say_ready(self) -> None:
        """Take part in the lockstep readiness handshake (docs/lockstep.md) under this node's name."""
        from g1_common import topics
        from std_msgs.msg import String

        self._ready_pub = self.node.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self._ready_pub.publish(String(data=self.node.get_name()))

    def spin_until(self, condition, timeout_s: float, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            rclpy.spin_once(self.node, timeout_sec=0.02)

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.02)

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=timeout_s), f"service {name} not available"
        future = client.call_async(request)
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout_s)
        assert future.done(), f"service {name} did not answer"
        return future.result()


def wait_for_exit(proc, timeout_s: float) -> int:
    try:
        return proc.wait(timeout_s)
    except Exception as exc:  # noqa: BLE001 - reported with the process logs by the fixture
        raise AssertionError(f"process did not exit within {timeout_s} s") from exc


def read_summary(path: Path) -> dict:
    assert path.is_file(), f"the simulator wrote no final-state file at {path}"
    return json.loads(path.read_text())


def log_text(node_processes, proc) -> str:
    for p, log in node_processes.procs:
        if p is proc:
            return log.read_text()
    raise KeyError("not a started process")


def unitree_crc32_core(words) -> int:
    """Literal transcription of unitree_sdk2's crc32_core(uint32_t* ptr, uint32_t len): bit by bit,
    MSB first, the data bit xor-ed in after the shift (written independently of the package's table)."""
    crc, poly = 0xFFFFFFFF, 0x04C11DB7
    for data in words:
        xbit = 1 << 31
        for _ in range(32):
            if crc & 0x80000000:
                crc = ((crc << 1) & 0xFFFFFFFF) ^ poly
            else:
                crc = (crc << 1) & 0xFFFFFFFF
            if data & xbit:
                crc ^= poly
            xbit >>= 1
    return crc
