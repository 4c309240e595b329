"""Helpers of the hardware fault-injection tests: an rclpy probe (test/hardware's), the fake G1's fault
channel and counters, a 50 Hz stand-command source, and checks of what the robot was sent."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
from rclpy.duration import Duration
from std_msgs.msg import String

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "hardware"))
from hardware_helpers import Probe, log_text, probe, rclpy_context  # noqa: E402  (test/hardware's probe and fixtures)

from g1_common import conversions, topics  # noqa: E402
from g1_description import robot  # noqa: E402
from g1_interfaces.msg import JointCommand  # noqa: E402

__all__ = ["Probe", "log_text", "FakeRobot", "StandCommands", "assert_lowcmds_sane", "rclpy_context", "probe",
           "child_pids", "kill_child", "STRAY_LISTENER", "without_ros_settings", "PUBSUB", "exchanged"]

MODE_MACHINE = 5


class FakeRobot:
    """The fake G1's test channel: its status counters (``fake_g1/status``) and fault injection."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.latest: dict | None = None
        probe.node.create_subscription(String, "fake_g1/status", self._on, 10)
        self._inject = probe.node.create_publisher(String, "fake_g1/inject", 10)

    def _on(self, msg):
        self.latest = json.loads(msg.data)

    def inject(self, commands: "StandCommands | None" = None, **fault) -> None:
        """Inject ``fault``; wait for a status taken after it, sending ``commands`` meanwhile (a pause
        in the commands would itself make the driver damp)."""
        wait = commands.send_until if commands else self.probe.spin_until
        wait(lambda: self._inject.get_subscription_count() > 0 and self.latest is not None, 10.0,
             "the fake G1's inject topic and status")
        count = self.latest["injections"]
        self._inject.publish(String(data=json.dumps(fault)))
        wait(lambda: self.latest["injections"] > count, 10.0, f"the fake G1 to take {fault}")


class StandCommands:
    """Publishes the stand command at 50 Hz with wall-clock stamps (like a real-time policy) while the
    probe spins."""

    def __init__(self, probe: Probe):
        self.probe = probe
        self.pub = probe.node.create_publisher(JointCommand, topics.JOINT_COMMAND, topics.CONTROL_QOS)
        self.last_sent_s: float | None = None  # node-clock time of the last command published
        self.stamp_age_s = 0.0  # > 0: commands stamped this far in the past (stale, as if queued)

    def send_for(self, seconds: float) -> None:
        self.send_until(lambda: False, seconds, "", fail=False)

    def send_until(self, condition, timeout_s: float, what: str, fail: bool = True) -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                if fail:
                    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
                return
            now = self.probe.node.get_clock().now()
            stamp = now - Duration(nanoseconds=int(self.stamp_age_s * 1e9))
            self.pub.publish(conversions.make_joint_command(
                stamp.to_msg(), robot.DEFAULT_JOINT_POS, robot.STAND_KP, robot.STAND_KD,
                source=JointCommand.SOURCE_SAFETY))
            self.last_sent_s = now.nanoseconds * 1e-9
            self.probe.spin_for(0.02)


def assert_lowcmds_sane(frames) -> None:
    """Every LowCmd_ the probe saw: finite, enabled motors within joint/gain/effort limits."""
    assert frames, "no lowcmd frame was seen"
    for m in frames:
        motors = m.motor_cmd[:robot.NUM_JOINTS]
        q = np.array([c.q for c in motors])
        kp, kd = np.array([c.kp for c in motors]), np.array([c.kd for c in motors])
        tau = np.array([c.tau for c in motors])
        assert np.all(np.isfinite(np.concatenate([q, kp, kd, tau, [c.dq for c in motors]]))), "non-finite lowcmd"
        assert np.all((kp >= 0) & (kp <= 500.0) & (kd >= 0) & (kd <= 50.0)), "gains beyond the limits"
        stiff = kp > 0
        assert np.all(q[stiff] >= robot.JOINT_LOWER[stiff] - 1e-5), "position target below a joint limit"
        assert np.all(q[stiff] <= robot.JOINT_UPPER[stiff] + 1e-5), "position target above a joint limit"
        assert np.all(np.abs(tau) <= robot.EFFORT_LIMIT + 1e-3)


def child_pids(parent: int) -> dict[int, str]:
    """pid -> command line of the processes whose parent is ``parent`` (from /proc)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == parent:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return out


def kill_child(parent: int, module: str, sig=signal.SIGKILL) -> int:
    """Kill the child process of ``parent`` that runs ``python -m module``; returns its pid."""
    for pid, cmd in child_pids(parent).items():
        if f"-m {module}" in cmd:
            os.kill(pid, sig)
            return pid
    raise AssertionError(f"no child process runs {module}: {child_pids(parent)}")


#: A stray ROS 2 node (what anyone's default node would be). For argv[1] seconds, or until SIGTERM, it
#: counts the tracking_status messages of the run playing the motion named argv[2] (this machine is
#: shared: other runs may be on any domain), and every joint_command it hears; prints both as JSON.
STRAY_LISTENER = """
import json, signal, sys, time, rclpy
from rclpy.signals import SignalHandlerOptions
stop = []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
from g1_common import topics
from g1_interfaces.msg import JointCommand, TrackingStatus
rclpy.init(signal_handler_options=SignalHandlerOptions.NO)  # SIGTERM: stop and print, not die
node = rclpy.create_node("stray_listener")
counts = {"run_statuses": 0, "joint_commands_any": 0}
def on_status(msg):
    counts["run_statuses"] += msg.active_motion == sys.argv[2]
def on_command(msg):
    counts["joint_commands_any"] += 1
node.create_subscription(TrackingStatus, topics.TRACKING_STATUS, on_status, topics.CONTROL_QOS)
node.create_subscription(JointCommand, topics.JOINT_COMMAND, on_command, topics.CONTROL_QOS)
end = time.monotonic() + float(sys.argv[1])
while time.monotonic() < end and not stop:
    rclpy.spin_once(node, timeout_sec=0.1)
print(json.dumps(counts))
"""


def without_ros_settings(environ=None) -> dict:
    """The environment minus the DDS settings the test suite makes (what a user with no ROS_* has)."""
    env = dict(os.environ if environ is None else environ)
    for var in ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY", "ROS_STATIC_PEERS"):
        env.pop(var, None)
    return env


#: ``python -c PUBSUB pub|sub``: a talker (60 messages over 6 s) or a listener (prints how many it got in 8 s)
#: on the topic ``dds_probe``: what two processes of a graph exchange under a given DDS environment.
PUBSUB = """
import sys, time, rclpy
from std_msgs.msg import String
rclpy.init()
node = rclpy.create_node("dds_probe_" + sys.argv[1])
if sys.argv[1] == "pub":
    pub = node.create_publisher(String, "dds_probe", 10)
    for i in range(60):
        pub.publish(String(data=str(i)))
        rclpy.spin_once(node, timeout_sec=0.1)
else:
    got = []
    node.create_subscription(String, "dds_probe", got.append, 10)
    end = time.monotonic() + 8.0
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(len(got))
"""


def exchanged(env: dict) -> tuple[int, str]:
    """How many of the talker's messages a listener got with ``env``; and both processes' stderr."""
    import subprocess

    sub = subprocess.Popen([sys.executable, "-c", PUBSUB, "sub"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    pub = subprocess.Popen([sys.executable, "-c", PUBSUB, "pub"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    got, sub_err = sub.communicate(timeout=60)
    _, pub_err = pub.communicate(timeout=60)
    return int(got.strip() or -1), sub_err + pub_err
