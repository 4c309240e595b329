"""Fixtures of the hardware area: an rclpy context in the test process and a probe node (defined once,
in hardware_helpers, and shared with test/faults)."""

from hardware_helpers import probe, rclpy_context  # noqa: F401  (pytest fixtures)
