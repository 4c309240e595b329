"""The real-G1 driver end to end against the fake G1 over DDS (Unitree lowcmd/lowstate topics):
no actuation while disarmed, commands with a CRC that an independent implementation accepts,
damping when commands stop, and a robot that rejects corrupted CRCs and a foreign mode_machine."""

from __future__ import annotations

import copy
import json
import struct
import time

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from g1_common import conversions, topics
from g1_description import robot
from g1_interfaces.msg import JointCommand
from hardware_helpers import log_text, unitree_crc32_core
from unitree_hg.msg import LowCmd

MODE_MACHINE = 5
# Newest frames only: a Python reader of every 500 Hz frame falls behind and delays the other topics.
LOWCMD_READER = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)


def packed_by_hand(msg: LowCmd) -> bytes:
    """The 1000 CRC-covered bytes of a LowCmd_, laid out from the SDK struct by explicit offsets."""
    buf = bytearray(1000)
    buf[0], buf[1] = msg.mode_pr, msg.mode_machine
    for i, m in enumerate(msg.motor_cmd):
        base = 4 + 28 * i  # u8 mode, 3 bytes padding, 5 x f32, u32 reserve
        buf[base] = m.mode
        struct.pack_into("<5fI", buf, base + 4, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve)
    struct.pack_into("<4I", buf, 984, *(int(r) for r in msg.reserve))
    return bytes(buf)


def independent_crc(msg: LowCmd) -> int:
    return unitree_crc32_core(struct.unpack("<250I", packed_by_hand(msg)))


class FakeStatus:
    def __init__(self, probe):
        self.latest = None
        probe.node.create_subscription(String, "fake_g1/status", self._on, 10)

    def _on(self, msg):
        self.latest = json.loads(msg.data)


def test_driver_against_the_fake_g1(node_processes, probe):
    lowcmds = probe.record(LowCmd, "lowcmd", LOWCMD_READER)
    states = probe.record(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    imus = probe.record(Imu, topics.IMU, topics.CONTROL_QOS)
    status = FakeStatus(probe)
    commands = probe.node.create_publisher(JointCommand, topics.JOINT_COMMAND, topics.CONTROL_QOS)
    injector = probe.node.create_publisher(LowCmd, "lowcmd", 10)
    fake = node_processes.start("-m", "g1_hardware.fake_g1", "--ros-args", "-p", f"mode_machine:={MODE_MACHINE}",
                                name="fake_g1")
    driver = node_processes.start("-m", "g1_hardware.g1_driver", "--ros-args", "-p", "allow_arming:=true",
                                  "-p", f"accepted_mode_machines:=[{MODE_MACHINE}]", name="g1_driver")

    # lowstate -> joint_states / imu, while nothing is armed: no lowcmd at all, the motors stay off.
    probe.spin_until(lambda: len(states) > 10 and len(imus) > 10 and status.latest is not None, 30.0,
                     "joint_states/imu forwarded by the driver")
    q, _, _ = conversions.joint_state_to_arrays(states[-1])
    assert np.all(np.isfinite(q))
    probe.spin_for(1.0)
    assert lowcmds == [] and status.latest["accepted"] == 0, "the disarmed driver actuated the robot"

    # armed + commands: every lowcmd carries the command and a CRC the SDK's bit loop agrees with.
    def send_stand_until(condition, timeout_s, what):
        """Publish the stand command at 50 Hz (wall-clock stamps, like a real-time policy) until ``condition``."""
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
            msg = conversions.make_joint_command(probe.node.get_clock().now().to_msg(), robot.DEFAULT_JOINT_POS,
                                                 robot.STAND_KP, robot.STAND_KD, source=JointCommand.SOURCE_SAFETY)
            commands.publish(msg)
            probe.spin_for(0.02)
    send_stand_until(lambda: commands.get_subscription_count() > 0, 30.0, "the driver's command subscription")
    arm = probe.call(SetBool, topics.DRIVER_ARM, SetBool.Request(data=True))
    assert arm.success, arm.message
    send_stand_until(lambda: status.latest["kp_sum"] > 1000 and status.latest["accepted"] > 100, 30.0,
                     "the fake robot to run the stand gains")
    assert status.latest["rejected_crc"] == 0 and status.latest["rejected_mode_machine"] == 0
    stiff = [m for m in lowcmds if m.motor_cmd[0].kp > 0]
    assert len(stiff) > 20, f"only {len(stiff)} actuating lowcmd frames seen"
    for m in stiff[-20:]:
        assert m.crc == independent_crc(m) and m.mode_machine == MODE_MACHINE and m.mode_pr == 0
        assert [c.kp for c in m.motor_cmd[:29]] == robot.STAND_KP.astype(np.float32).tolist()
        assert [c.mode for c in m.motor_cmd] == [1] * 29 + [0] * 6

    # commands stop: within the 100 ms timeout (+ margin) the driver sends damping: kp = 0, kd > 0.
    n = len(lowcmds)
    probe.spin_for(0.4)
    last = lowcmds[-1]
    assert len(lowcmds) > n and last.crc == independent_crc(last)
    assert all(c.kp == 0 for c in last.motor_cmd) and all(c.kd > 0 for c in last.motor_cmd[:29])

    # the robot side rejects a corrupted CRC and a foreign mode_machine (its counters say so). The driver
    # stops first: its 500 Hz frames would overwrite ours in the robot's newest-only reader.
    assert node_processes.stop(driver) == 0, "the driver did not shut down cleanly on SIGINT"
    log = log_text(node_processes, driver)
    assert "no joint_command for > 0.1 s: damping" in log and "Traceback" not in log, log
    corrupted = copy.deepcopy(last)
    corrupted.crc ^= 0x1
    foreign = copy.deepcopy(last)
    foreign.mode_machine = MODE_MACHINE + 1
    foreign.crc = independent_crc(foreign)
    probe.spin_for(0.3)  # let the status catch up with the last frames of the driver
    before = dict(status.latest)
    for frame, counter in ((corrupted, "rejected_crc"), (foreign, "rejected_mode_machine")):
        # One kind at a time, 100 Hz: the robot's newest-only reader would drop a frame followed at once.
        deadline = time.monotonic() + 10.0
        while status.latest[counter] <= before[counter]:
            assert time.monotonic() < deadline, f"the fake robot did not count {counter}: {status.latest}"
            injector.publish(frame)
            probe.spin_for(0.01)
    assert status.latest["accepted"] == before["accepted"]
    assert "does not match its content: ignored" in log_text(node_processes, fake)
    assert fake.poll() is None
