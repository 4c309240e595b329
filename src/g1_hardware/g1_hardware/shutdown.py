"""Shared Ctrl-C handling of the node mains."""

from __future__ import annotations

import rclpy
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

RCLError = _rclpy.RCLError


def interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is how rclpy reports a SIGINT/SIGTERM shutdown: the signal handler shuts the
    context down, and a wait set or publish racing with it fails with RCLError ("context is not valid")."""
    return isinstance(exc, RCLError) and not rclpy.ok()
