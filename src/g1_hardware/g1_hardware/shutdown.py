"""Shared Ctrl-C handling of the node mains."""

from __future__ import annotations

from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy

RCLError = _rclpy.RCLError


def interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is how rclpy reports a SIGINT/SIGTERM shutdown: the signal handler shuts the
    context down, and a wait set or publish racing with it fails with RCLError ("context is not valid")."""
    return isinstance(exc, RCLError) and not rclpy.ok()


def run_until_shutdown(node, spin: Callable[[], None]) -> int:
    """Run ``spin()`` until Ctrl-C or an external shutdown, then destroy ``node`` and shut rclpy down."""
    try:
        spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError as exc:
        if not interrupted(exc):
            raise
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
