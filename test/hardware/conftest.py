"""Fixtures of the hardware area: an rclpy context in the test process and a probe node."""

from __future__ import annotations

import pytest
import rclpy

from hardware_helpers import Probe


@pytest.fixture(scope="module")
def rclpy_context():
    # module scope, not session: other test areas init their own context after this one shut down
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def probe(rclpy_context):
    p = Probe()
    yield p
    p.node.destroy_node()
