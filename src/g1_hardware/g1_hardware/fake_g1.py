"""g1_fake_robot: a G1 that speaks the robot's own low-level protocol, backed by the MuJoCo core.

What it does like the robot: publishes LowState_ on ``lowstate`` at 500 Hz (IMU, 35 motor slots,
mode_machine, tick, CRC); runs the motor PD at 500 Hz on the latest accepted LowCmd_; rejects a LowCmd_
whose CRC does not match or whose mode_machine is not its own; a motor with mode 0 gives no torque.
Before any valid LowCmd_ every motor is off. When lowcmd stops it keeps the last command (the worst
case: the driver, not the robot, must go to damping).

For tests it also publishes counters on ``fake_g1/status`` (std_msgs/String, JSON, 10 Hz), which the
real robot does not have, and takes faults to inject on ``fake_g1/inject`` (std_msgs/String, JSON):
``{"nan_joint": "left_knee_joint"}`` (that reading becomes NaN; ``""`` clears it), ``{"mode_machine": 6}``
(the robot switches mode_machine: it reports and accepts only the new one), ``{"silence_s": 1.0}`` (no
lowstate for that long; physics and lowcmd go on). From each injection on, the status measures how the
controller answered: ``damping_after_ms`` (first accepted frame with kp = 0 on every motor),
``stiff_after_damping`` (accepted frames with kp > 0 after it), ``injections`` (how many so far), and
for every accepted frame ever
``nonfinite_frames`` / ``out_of_limit_frames`` (q beyond the joint limits, kp/kd beyond 500/50, tau
beyond the effort limits on an enabled motor).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from g1_description import robot
from g1_common import shutdown
from g1_hardware.sim_core import MotorCommand, MujocoG1, SimConfig
from g1_hardware.unitree_lowlevel import LOWCMD_STRUCT, MOTOR_ENABLE, crc_of_packed, lowstate_crc
from unitree_hg.msg import LowCmd, LowState

STATUS_TOPIC = "fake_g1/status"
INJECT_TOPIC = "fake_g1/inject"
_BEST_EFFORT = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)


def lowcmd_packed(msg: LowCmd) -> bytes:
    """The CRC-covered bytes of a received LowCmd_ (what the robot's firmware checks)."""
    values = [msg.mode_pr, msg.mode_machine]
    for m in msg.motor_cmd:
        values += [m.mode, m.q, m.dq, m.tau, m.kp, m.kd, m.reserve]
    return LOWCMD_STRUCT.pack(*values, *(int(r) for r in msg.reserve))


def lowcmd_to_command(msg: LowCmd) -> MotorCommand:
    """Motor targets of the 29 joints; a disabled motor (mode 0) gives no torque."""
    motors = msg.motor_cmd[:robot.NUM_JOINTS]
    on = np.array([m.mode == MOTOR_ENABLE for m in motors], dtype=np.float64)
    field = lambda name: np.array([getattr(m, name) for m in motors], dtype=np.float64)  # noqa: E731
    return MotorCommand(field("q"), field("dq"), on * field("kp"), on * field("kd"), on * field("tau"))


class FakeG1(Node):
    def __init__(self):
        super().__init__("g1_fake_robot")
        self.mode_machine = self.declare_parameter("mode_machine", 5).value
        self.rate_hz = self.declare_parameter("rate_hz", 500.0).value
        self.sim = MujocoG1(SimConfig(seed=self.declare_parameter("seed", 0).value))
        self.sim.set_command(MotorCommand(*(np.zeros(robot.NUM_JOINTS),) * 5))  # motors off until a lowcmd
        self.counters = {"accepted": 0, "rejected_crc": 0, "rejected_mode_machine": 0,
                         "nonfinite_frames": 0, "out_of_limit_frames": 0}
        self.last_command = None
        self.nan_joint: int | None = None
        self.silent_until = 0.0
        self.injected_at: float | None = None    # monotonic time of the last injection
        self.damping_after_ms: float | None = None
        self.stiff_after_damping = 0
        self.injections = 0
        self.pub_lowstate = self.create_publisher(LowState, "lowstate", _BEST_EFFORT)
        self.pub_status = self.create_publisher(String, STATUS_TOPIC, 10)
        self.create_subscription(LowCmd, "lowcmd", self._on_lowcmd, _BEST_EFFORT)
        self.create_subscription(String, INJECT_TOPIC, self._on_inject, 10)
        self._state = LowState()  # reused every step

    def _on_lowcmd(self, msg: LowCmd) -> None:
        if crc_of_packed(lowcmd_packed(msg)) != msg.crc:
            self._reject("rejected_crc", f"lowcmd CRC {msg.crc:#010x} does not match its content")
        elif msg.mode_machine != self.mode_machine:
            self._reject("rejected_mode_machine", f"lowcmd mode_machine {msg.mode_machine} is not this "
                                                  f"robot's ({self.mode_machine})")
        else:
            self.counters["accepted"] += 1
            self.last_command = lowcmd_to_command(msg)
            self._check_frame(self.last_command)
            self.sim.set_command(self.last_command)

    def _check_frame(self, c: MotorCommand) -> None:
        """What a robot must never be sent, and how fast the controller damped after an injection."""
        values = np.concatenate([c.position, c.velocity, c.kp, c.kd, c.effort])
        if not np.all(np.isfinite(values)):
            self.counters["nonfinite_frames"] += 1
        else:
            on = c.kp > 0
            if (np.any(on & ((c.position < robot.JOINT_LOWER - 1e-5) | (c.position > robot.JOINT_UPPER + 1e-5)))
                    or np.any(c.kp > 500.0) or np.any(c.kd > 50.0) or np.any(c.kp < 0) or np.any(c.kd < 0)
                    or np.any(np.abs(c.effort) > robot.EFFORT_LIMIT + 1e-3)):
                self.counters["out_of_limit_frames"] += 1
        if self.injected_at is None:
            return
        stiff = bool(np.any(c.kp > 0))
        if self.damping_after_ms is None and not stiff:
            self.damping_after_ms = (time.monotonic() - self.injected_at) * 1e3
        elif self.damping_after_ms is not None and stiff:
            self.stiff_after_damping += 1

    def _on_inject(self, msg: String) -> None:
        fault = json.loads(msg.data)
        if "nan_joint" in fault:
            self.nan_joint = robot.JOINT_INDEX[fault["nan_joint"]] if fault["nan_joint"] else None
        if "mode_machine" in fault:
            self.mode_machine = int(fault["mode_machine"])
        if "silence_s" in fault:
            self.silent_until = time.monotonic() + float(fault["silence_s"])
        self.injected_at, self.damping_after_ms, self.stiff_after_damping = time.monotonic(), None, 0
        self.injections += 1
        self.get_logger().warning(f"fault injected: {fault}")

    def _reject(self, counter: str, why: str) -> None:
        self.counters[counter] += 1
        if self.counters[counter] % 100 == 1:  # the first of each kind, then every 100th
            self.get_logger().warning(f"{why}: ignored ({counter} {self.counters[counter]} so far)")

    def publish_lowstate(self) -> None:
        msg, sim = self._state, self.sim
        imu = sim.imu()
        msg.mode_machine = self.mode_machine
        msg.tick = int(sim.physics_step_count * robot.PHYSICS_DT_S * 1000) & 0xFFFFFFFF  # ms
        msg.imu_state.quaternion = imu.quat_wxyz.astype(np.float32)
        msg.imu_state.gyroscope = imu.angular_velocity.astype(np.float32)
        msg.imu_state.accelerometer = imu.linear_acceleration.astype(np.float32)
        q, dq, tau = sim.joint_positions, sim.joint_velocities, sim.last_torque
        if self.nan_joint is not None:
            q[self.nan_joint] = np.nan
        for i in range(robot.NUM_JOINTS):
            m = msg.motor_state[i]
            m.mode, m.q, m.dq, m.tau_est = MOTOR_ENABLE, float(q[i]), float(dq[i]), float(tau[i])
        msg.crc = lowstate_crc(self._lowstate_values(msg))
        self.pub_lowstate.publish(msg)

    @staticmethod
    def _lowstate_values(msg: LowState) -> list:
        imu = msg.imu_state
        values = [*msg.version, msg.mode_pr, msg.mode_machine, msg.tick, *imu.quaternion, *imu.gyroscope,
                  *imu.accelerometer, *imu.rpy, imu.temperature]
        for m in msg.motor_state:
            values += [m.mode, m.q, m.dq, m.ddq, m.tau_est, *m.temperature, m.vol, *m.sensor, m.motorstate,
                       *m.reserve]
        return [*(float(v) if isinstance(v, np.floating) else int(v) if isinstance(v, np.integer) else v
                  for v in values), *msg.wireless_remote, *msg.reserve]

    def publish_status(self) -> None:
        c = self.last_command
        status = dict(self.counters, pelvis_height_m=float(self.sim.data.qpos[2]),
                      kp_sum=float(c.kp.sum()) if c else 0.0, kd_min=float(c.kd.min()) if c else 0.0,
                      mode_machine=self.mode_machine, injections=self.injections,
                      damping_after_ms=self.damping_after_ms, stiff_after_damping=self.stiff_after_damping)
        self.pub_status.publish(String(data=json.dumps(status)))

    def run(self, executor) -> None:
        """Absolute-deadline loop at ``rate_hz``: one physics step and one lowstate per period."""
        period = 1.0 / self.rate_hz
        deadline = time.monotonic()
        step = 0
        while shutdown.ok():
            deadline += period
            while (remaining := deadline - time.monotonic()) > 0:
                executor.spin_once(timeout_sec=remaining)
            if deadline < time.monotonic() - 0.1:
                deadline = time.monotonic()
            # Sensors then read as of the start of this 2 ms step: a real IMU sample is that old, too.
            self.sim.step_physics()
            if time.monotonic() >= self.silent_until:
                self.publish_lowstate()
            step += 1
            if step % int(self.rate_hz / 10) == 0:
                self.publish_status()


def main(args=None) -> int:
    shutdown.init(args)
    node = FakeG1()
    executor = EventsExecutor()
    executor.add_node(node)
    return shutdown.run_until_shutdown(node, lambda: node.run(executor))


if __name__ == "__main__":
    sys.exit(main())
