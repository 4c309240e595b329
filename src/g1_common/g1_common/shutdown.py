"""Ctrl-C / SIGTERM handling shared by every node main.

rclpy's default handling raises ``KeyboardInterrupt`` at whatever Python line runs when the signal comes.
That can be Python code that rclpy's C++ calls while it takes a message; pybind11 then reports the
interrupt as ``RuntimeError: Unable to convert call argument '0' to Python object``, which escapes
``spin()`` and the process exits 1 with a traceback instead of shutting down (seen in CI: the G1 driver
on SIGINT). It also invalidates the context before a node can send its last command.

Here a signal only sets a flag. Loops run ``while shutdown.ok():`` (rclpy context valid and no signal
yet); nothing is raised into running code, so the node finishes its current step, leaves its loop and
cleans up with a valid context (the policy node's final damping command, the sim's last publishes).
A second Ctrl-C while shutting down raises ``KeyboardInterrupt`` as usual, for a node stuck on the way out.
"""

from __future__ import annotations

import signal
import threading
from typing import Callable

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.impl.implementation_singleton import rclpy_implementation as _rclpy
from rclpy.signals import SignalHandlerOptions

RCLError = _rclpy.RCLError

_requested = threading.Event()


def _on_signal(signum, frame) -> None:
    if _requested.is_set():
        raise KeyboardInterrupt  # second signal: the user insists
    _requested.set()


def init(args=None) -> None:
    """``rclpy.init`` without rclpy's signal handlers; SIGINT and SIGTERM set the stop flag instead.
    Call from the main thread (Python installs signal handlers there only)."""
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)


def requested() -> bool:
    """True once SIGINT or SIGTERM arrived."""
    return _requested.is_set()


def ok() -> bool:
    """The loop condition of a node main: the context is valid and no stop was requested."""
    return rclpy.ok() and not _requested.is_set()


def interrupted(exc: BaseException) -> bool:
    """True when ``exc`` is an rclpy call failing because the context went away during shutdown
    (e.g. a publish from another thread racing ``rclpy.shutdown``)."""
    return isinstance(exc, RCLError) and not rclpy.ok()


def spin(executor, step: Callable[[], None] | None = None, timeout_s: float = 0.1) -> None:
    """``executor.spin()`` that stops on a signal: ``spin_once`` until :func:`ok` is False, calling
    ``step`` (if given) between waits."""
    while ok():
        if step is not None:
            step()
        executor.spin_once(timeout_sec=timeout_s)


def run_until_shutdown(node, run: Callable[[], None]) -> int:
    """Run ``run()`` (a loop on :func:`ok`) until a signal or an external shutdown, then destroy ``node``
    and shut rclpy down. Returns the process exit code (0)."""
    try:
        run()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError as exc:
        if not interrupted(exc):
            raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0
