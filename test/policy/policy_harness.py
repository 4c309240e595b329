"""Test side of the policy node's DDS tests: a real rclpy node that plays the robot and the motion server.

In lockstep it speaks docs/lockstep.md like the simulator does (``/clock`` = t_k, then joint_states,
imu, reference_window stamped t_k, then waits for joint_command stamped t_k), with a kinematic robot
that reaches each commanded target (enough for the state machine; physics is the simulator's job).
In real time it publishes from a deadline thread at 50 Hz. It records every command and status.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, String

from g1_common import conversions, ticks, topics
from g1_description import robot
from g1_interfaces.msg import JointCommand, ReferenceWindow, TrackingStatus
from g1_interfaces.srv import SetMode
from g1_tracker_policy.testing import standing_window



def quat_from_roll_pitch(roll: float, pitch: float) -> np.ndarray:
    cr, sr, cp, sp = math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2), math.sin(pitch / 2)
    return np.array([cr * cp, sr * cp, cr * sp, -sr * sp])


def check_command(msg: JointCommand) -> dict:
    """The invariant asserted on EVERY recorded command: finite, inside joint limits, gains >= 0."""
    arrays = conversions.joint_command_to_arrays(msg)  # raises on NaN/inf, wrong names, negative gains
    pos = arrays["position"]
    tol = 1e-6  # float32 on the wire
    assert np.all(pos >= robot.JOINT_LOWER - tol) and np.all(pos <= robot.JOINT_UPPER + tol), pos
    assert np.all(np.abs(arrays["effort"]) <= robot.EFFORT_LIMIT + tol)
    return arrays


class Harness(Node):
    def __init__(self):
        super().__init__("policy_test_harness")
        q = topics.CONTROL_QOS
        self.pub_clock = self.create_publisher(Clock, "/clock", 10)
        self.pub_state = self.create_publisher(JointState, topics.JOINT_STATES, q)
        self.pub_imu = self.create_publisher(Imu, topics.IMU, q)
        self.pub_ref = self.create_publisher(ReferenceWindow, topics.REFERENCE_WINDOW, q)
        self.pub_estop = self.create_publisher(Bool, topics.ESTOP, q)
        self.commands: list[tuple[float, JointCommand]] = []
        self.statuses: list[tuple[float, TrackingStatus]] = []
        self.ready: list[str] = []
        self.create_subscription(JointCommand, topics.JOINT_COMMAND, self._on_command, q)
        self.create_subscription(TrackingStatus, topics.TRACKING_STATUS, self._on_status, q)
        self.create_subscription(String, topics.READY, lambda m: self.ready.append(m.data), topics.LATCHED_QOS)
        self.cli_mode = self.create_client(SetMode, topics.SET_MODE)
        self.executor_ = SingleThreadedExecutor()
        self.executor_.add_node(self)
        self.q = np.asarray(robot.DEFAULT_JOINT_POS, dtype=np.float64) + 0.1  # not quite the default pose
        self.quat = np.array([1.0, 0.0, 0.0, 0.0])
        self.seq = 0

    # --- recording --------------------------------------------------------------------------------
    def _on_command(self, msg: JointCommand) -> None:
        check_command(msg)
        self.commands.append((time.monotonic(), msg))

    def _on_status(self, msg: TrackingStatus) -> None:
        self.statuses.append((time.monotonic(), msg))

    def spin_until(self, predicate, timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            self.executor_.spin_once(timeout_sec=0.01)

    def wait_ready(self, name: str = "g1_policy", timeout_s: float = 20.0) -> None:
        self.spin_until(lambda: name in self.ready, timeout_s, f"{name} on {topics.READY}")

    def set_mode(self, mode: str) -> SetMode.Response:
        assert self.cli_mode.wait_for_service(timeout_sec=10.0)
        fut = self.cli_mode.call_async(SetMode.Request(mode=mode))
        self.spin_until(fut.done, 10.0, f"set_mode {mode}")
        return fut.result()

    # --- inputs --------------------------------------------------------------------------------------
    def publish_inputs(self, stamp, window=None, nan_joint: bool = False, state: bool = True) -> None:
        q = self.q.copy()
        if nan_joint:
            q[4] = float("nan")
        if state:
            self.pub_state.publish(conversions.make_joint_state(stamp, q, np.zeros(robot.NUM_JOINTS)))
            imu = Imu()
            imu.header.stamp = stamp
            imu.orientation.w, imu.orientation.x, imu.orientation.y, imu.orientation.z = (float(v) for v in self.quat)
            self.pub_imu.publish(imu)
        if window is not None:
            self.pub_ref.publish(conversions.window_to_msg(window, stamp, self.seq))
            self.seq += 1

    def follow(self, msg: JointCommand) -> None:
        """Kinematic robot: stiff joints reach their target; damped ones stay where they are."""
        a = conversions.joint_command_to_arrays(msg)
        stiff = a["kp"] > 0
        self.q[stiff] = a["position"][stiff]

    # --- lockstep --------------------------------------------------------------------------------------
    def lockstep_tick(self, k: int, window=None, nan_joint: bool = False, timeout_s: float = 10.0):
        """One simulator tick; returns (command, status) stamped t_k."""
        stamp = ticks.stamp_from_tick(k)
        self.pub_clock.publish(Clock(clock=stamp))
        self.publish_inputs(stamp, window, nan_joint)

        def stamped(items):
            return next((m for _, m in reversed(items) if ticks.stamp_to_ns(m.header.stamp) == ticks.tick_to_ns(k)), None)
        self.spin_until(lambda: stamped(self.commands) is not None and stamped(self.statuses) is not None,
                        timeout_s, f"joint_command and tracking_status stamped tick {k}")
        cmd = stamped(self.commands)
        self.follow(cmd)
        return cmd, stamped(self.statuses)


class RealtimePublisher:
    """Publishes joint_states/imu (and optionally a reference) at 50 Hz from a deadline thread."""

    def __init__(self, harness: Harness, window_fn=None):
        self.h = harness
        self.window_fn = window_fn
        self.publish_state = True
        self.publish_reference = window_fn is not None
        self.last_state_s = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(2.0)

    def _run(self):
        deadline = time.monotonic()
        while not self._stop.is_set():
            deadline += robot.CONTROL_PERIOD_S
            time.sleep(max(0.0, deadline - time.monotonic()))
            stamp = self.h.get_clock().now().to_msg()
            window = self.window_fn() if self.publish_reference and self.window_fn else None
            if self.publish_state:
                self.last_state_s = time.monotonic()
            self.h.publish_inputs(stamp, window, state=self.publish_state)


def playing(name: str = "m1", t: float = 0.0, state: int = ReferenceWindow.STATE_PLAYING):
    """A reference that sways the arms so that TRACK commands visibly follow it."""
    q = np.asarray(robot.DEFAULT_JOINT_POS, dtype=np.float64).copy()
    q[15] += 0.3 * math.sin(2 * math.pi * 0.5 * t)
    q[22] += 0.3 * math.sin(2 * math.pi * 0.5 * t)
    return standing_window(state=state, motion_name=name, clip_time_s=t, joint_pos=q)


class ReferenceServer:
    """Plays the motion server's lockstep role for the simulator test: on joint_states stamped t_k,
    publish the reference window stamped t_k (``window_fn(k)``), and say ready on g1/ready."""

    def __init__(self, harness: Harness, window_fn):
        self.h = harness
        self.window_fn = window_fn
        self.imu_by_tick: dict[int, np.ndarray] = {}
        harness.create_subscription(JointState, topics.JOINT_STATES, self._on_state, topics.CONTROL_QOS)
        harness.create_subscription(Imu, topics.IMU, self._on_imu, topics.CONTROL_QOS)
        self.pub_ready = harness.create_publisher(String, topics.READY, topics.LATCHED_QOS)

    def say_ready(self) -> None:
        self.pub_ready.publish(String(data=self.h.get_name()))

    def wait_for_imu(self, tick: int, timeout_s: float = 10.0) -> None:
        """Spin until the IMU sample of ``tick`` (or a later one) is recorded: the executor may take a
        tick's tracking_status before that tick's IMU sample."""
        self.h.spin_until(lambda: max(self.imu_by_tick, default=-1) >= tick, timeout_s, f"the IMU of tick {tick}")

    def _on_state(self, msg: JointState) -> None:
        k = ticks.stamp_to_tick(msg.header.stamp)
        if k is not None:
            self.h.pub_ref.publish(conversions.window_to_msg(self.window_fn(k), msg.header.stamp, k))

    def _on_imu(self, msg: Imu) -> None:
        k = ticks.stamp_to_tick(msg.header.stamp)
        o = msg.orientation
        if k is not None:
            self.imu_by_tick[k] = np.array([o.w, o.x, o.y, o.z])


@pytest.fixture
def harness():
    """A Harness node in its own rclpy context (import this fixture into a test module to use it)."""
    rclpy.init()
    h = Harness()
    yield h
    h.destroy_node()
    rclpy.try_shutdown()
