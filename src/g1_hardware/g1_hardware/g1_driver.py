"""g1_driver: the real G1 behind the stack's topics, over Unitree's own low-level DDS topics.

joint_command (50 Hz) -> LowCmd_ on ``lowcmd`` (DDS ``rt/lowcmd``), re-sent at 500 Hz by a writer thread;
LowState_ on ``lowstate`` (DDS ``rt/lowstate``, 500 Hz) -> joint_states + imu, decimated to 50 Hz.
Safety (see README.md): nothing is sent until armed (service + parameter); arming is refused on an
unknown mode_machine / DoF variant or a NaN/out-of-limit reading; commands older than
``command_timeout_s`` -> damping (which a command stamped more than ``command_max_age_s`` from the driver's
clock does not end), older than ``command_loss_fault_s`` -> a fault (disarm: commands that come back need
a new arm call); disarm, estop, NaN state, a changed mode_machine or lost lowstate ->
damping. The driver never dies of its own errors: an exception in a callback or in the writer loop is
logged and ends in damping frames, which the writer keeps sending.
"""

from __future__ import annotations

import functools
import sys
import threading
import time
import traceback

import numpy as np
from geometry_msgs.msg import Quaternion, Vector3
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.time import Time
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from g1_common import conversions, topics
from g1_description import robot
from g1_common import shutdown
from g1_common.shutdown import RCLError
from g1_hardware.sim_core import COMMAND_TIMEOUT_S, CommandError, CommandLimits, MotorCommand
from g1_hardware.unitree_lowlevel import Decimator, DriverConfig, DriverCore, LowCmdFrame
from g1_interfaces.msg import JointCommand
from unitree_hg.msg import LowCmd, LowState

#: The robot publishes lowstate best effort at 500 Hz: a best-effort reader matches any writer, and
#: depth 1 keeps only the newest sample.
LOWSTATE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
#: A reliable writer matches both reliable and best-effort readers; depth 1: the newest target only.
LOWCMD_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)

PARAMETERS = {
    "allow_arming": False,
    "accepted_mode_machines": Parameter.Type.INTEGER_ARRAY,  # unset: arming always refused
    "dof_variant": "g1_29dof",
    "writer_rate_hz": 500.0,
    "state_rate_hz": 50.0,
    "command_timeout_s": COMMAND_TIMEOUT_S,
    "command_loss_fault_s": 0.5,
    "command_max_age_s": COMMAND_TIMEOUT_S,
    "lowstate_timeout_s": 0.1,
    "kp_max": 500.0,
    "kd_max": 50.0,
    "lowcmd_topic": "lowcmd",
    "lowstate_topic": "lowstate",
}


def frame_to_msg(frame: LowCmdFrame, msg: LowCmd) -> LowCmd:
    """Fill ``msg`` (reused: allocating 35 MotorCmd per frame at 500 Hz costs CPU) from ``frame``."""
    msg.mode_pr, msg.mode_machine = frame.mode_pr, frame.mode_machine
    for i, m in enumerate(msg.motor_cmd):
        m.mode = int(frame.mode[i])
        m.q, m.dq, m.tau = float(frame.q[i]), float(frame.dq[i]), float(frame.tau[i])
        m.kp, m.kd = float(frame.kp[i]), float(frame.kd[i])
        m.reserve = 0
    msg.reserve = np.zeros(4, dtype=np.uint32)
    msg.crc = frame.crc()
    return msg


class G1Driver(Node):
    def __init__(self, **node_kwargs):
        super().__init__("g1_driver", **node_kwargs)
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        self.params = p
        self.core = DriverCore(DriverConfig(
            allow_arming=bool(p["allow_arming"]), accepted_mode_machines=tuple(p["accepted_mode_machines"] or ()),
            dof_variant=p["dof_variant"], command_timeout_s=p["command_timeout_s"],
            command_loss_fault_s=p["command_loss_fault_s"], command_max_age_s=p["command_max_age_s"],
            lowstate_timeout_s=p["lowstate_timeout_s"],
            limits=CommandLimits(p["kp_max"], p["kd_max"])))
        self.lock = threading.Lock()  # the core is shared by the executor thread and the writer thread
        self.pub_lowcmd = self.create_publisher(LowCmd, p["lowcmd_topic"], LOWCMD_QOS)
        self.pub_joint_states = self.create_publisher(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
        self.pub_imu = self.create_publisher(Imu, topics.IMU, topics.CONTROL_QOS)
        self.create_subscription(LowState, p["lowstate_topic"], self._guarded(self._on_lowstate), LOWSTATE_QOS)
        self.create_subscription(JointCommand, topics.JOINT_COMMAND, self._guarded(self._on_command),
                                 topics.CONTROL_QOS)
        self.create_subscription(Bool, topics.ESTOP, self._guarded(self._on_estop), topics.CONTROL_QOS)
        self.create_service(SetBool, topics.DRIVER_ARM, self._guarded(self._on_arm, refuse=True))
        self._state_decimator = Decimator(1.0 / p["state_rate_hz"])
        self._reported_mode_machine = None
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="lowcmd_writer", daemon=True)
        self.context.on_shutdown(self._stop.set)
        self._writer.start()
        self.get_logger().info(f"waiting for {p['lowstate_topic']}; arming "
                               f"{'allowed' if p['allow_arming'] else 'NOT allowed (allow_arming false)'}")

    # --- errors: logged, then damping; the driver itself never dies --------------------------------

    def internal_error(self, where: str, exc: BaseException) -> None:
        """An unexpected exception: log it with its traceback and go to damping (disarm)."""
        with self.lock:
            self.core.fault(f"internal error in {where}: {type(exc).__name__}: {exc}")
        self.get_logger().error(f"internal error in {where} (driver disarmed, sending damping):\n"
                                + "".join(traceback.format_exception(exc)), throttle_duration_sec=1.0)

    def _guarded(self, callback, refuse: bool = False):
        """``callback`` that cannot raise into the executor. ``refuse``: a service callback, which then
        answers success=False with the error."""
        @functools.wraps(callback)
        def guarded(*args):
            try:
                return callback(*args)
            except Exception as exc:  # noqa: BLE001 - any error ends in damping, never in a dead driver
                self.internal_error(callback.__name__, exc)
                if refuse:
                    response = args[-1]
                    response.success, response.message = False, f"internal error: {exc} (disarmed: damping)"
                    return response
                return None
        return guarded

    def _log_faults(self) -> None:
        with self.lock:
            faults = self.core.take_faults()
        for fault in faults:
            self.get_logger().error(f"FAULT: {fault}")

    # --- robot -> stack --------------------------------------------------------------------------

    def _on_lowstate(self, msg: LowState) -> None:
        now = time.monotonic()
        motors = msg.motor_state[:robot.NUM_JOINTS]
        q = np.array([m.q for m in motors])
        imu = msg.imu_state
        others = {"joint velocities": [m.dq for m in motors], "joint torques": [m.tau_est for m in motors],
                  "IMU": [*imu.quaternion, *imu.gyroscope, *imu.accelerometer]}
        with self.lock:
            self.core.on_lowstate(msg.mode_machine, q, now, others)
        if msg.mode_machine != self._reported_mode_machine:
            self._reported_mode_machine = msg.mode_machine
            self.get_logger().info(f"lowstate reports mode_machine {msg.mode_machine}")
        if not self._state_decimator.take(now):
            return
        stamp = self.get_clock().now().to_msg()
        self.pub_joint_states.publish(conversions.make_joint_state(
            stamp, q, [m.dq for m in motors], [m.tau_est for m in motors]))
        self.pub_imu.publish(_imu_msg(msg, stamp))

    # --- stack -> robot ----------------------------------------------------------------------------

    def _on_command(self, msg: JointCommand) -> None:
        fields = {f: getattr(msg, f) for f in ("position", "velocity", "kp", "kd", "effort")}
        age_s = (self.get_clock().now() - Time.from_msg(msg.header.stamp)).nanoseconds * 1e-9
        try:
            with self.lock:
                notes = self.core.on_command(msg.joint_names, fields, time.monotonic(), age_s)
        except CommandError as exc:
            self.get_logger().warning(f"command rejected, keeping the previous one: {exc}",
                                      throttle_duration_sec=1.0)
            return
        for note in notes:
            self.get_logger().warning(f"command {note}", throttle_duration_sec=1.0)

    def _on_arm(self, request, response):
        with self.lock:
            response.success, response.message = (self.core.arm(time.monotonic()) if request.data
                                                  else self.core.disarm())
        # One severity per logging call site: rclpy raises if a call site changes it between calls.
        if response.success:
            self.get_logger().info(response.message)
        else:
            self.get_logger().error(response.message)
        return response

    def _on_estop(self, msg: Bool) -> None:
        if msg.data:
            with self.lock:
                self.core.disarm()
            self.get_logger().error("estop: disarmed, sending damping")

    def _write_loop(self) -> None:
        """500 Hz absolute-deadline loop (a plain sleep: 0.14 ms p99 here, executors are worse). An error
        in one iteration is logged and disarms: the next iterations send damping."""
        period = 1.0 / self.params["writer_rate_hz"]
        self._was_damping = False
        deadline = time.monotonic()
        msg = LowCmd()
        while not self._stop.is_set():
            deadline += period
            now = time.monotonic()
            if deadline < now - 0.1:  # starved for 100 ms: restart the schedule rather than burst
                deadline = now + period
            try:
                if not self._write_once(now, msg):
                    return
            except Exception as exc:  # noqa: BLE001 - the writer must outlive any error: damping next
                self.internal_error("the lowcmd writer", exc)
                msg = LowCmd()  # a fresh message: the failed one may be half filled
                self._send_damping_directly(msg)
            self._stop.wait(max(0.0, deadline - time.monotonic()))

    def _send_damping_directly(self, msg: LowCmd) -> None:
        """After a writer error: a damping frame built without the core (in case the core is what fails)."""
        mode_machine, actuated = self.core.mode_machine, self.core.ever_armed
        if mode_machine is None or not actuated:
            return
        try:
            self.pub_lowcmd.publish(frame_to_msg(LowCmdFrame.from_command(MotorCommand.damping(), mode_machine), msg))
        except Exception as exc:  # noqa: BLE001 - logged; the loop tries again next period
            self.get_logger().error(f"cannot send damping: {exc}", throttle_duration_sec=1.0)

    def _write_once(self, now: float, msg: LowCmd) -> bool:
        """One writer iteration; False when shutting down."""
        with self.lock:
            frame = self.core.next_frame(now)
            damping, armed = self.core.damping_since_timeout, self.core.armed
        self._log_faults()
        if frame is not None:
            try:
                self.pub_lowcmd.publish(frame_to_msg(frame, msg))
            except RCLError:
                if self.context.ok():
                    raise
                return False  # shutting down (Ctrl-C invalidates the context before destroy_node runs)
        was_damping, self._was_damping = self._was_damping, damping
        if damping != was_damping:
            if damping:
                self.get_logger().error(f"no joint_command for > {self.params['command_timeout_s']} s: damping")
            elif armed:  # not when the gap became a fault (logged by _log_faults) or a disarm
                self.get_logger().info("joint_command resumed")
        return True

    def destroy_node(self):
        self._stop.set()
        self._writer.join(timeout=1.0)
        return super().destroy_node()


def _imu_msg(msg: LowState, stamp) -> Imu:
    imu = msg.imu_state
    out = Imu()
    out.header.stamp, out.header.frame_id = stamp, robot.IMU_SITE
    w, x, y, z = (float(v) for v in imu.quaternion)  # Unitree order: w, x, y, z
    out.orientation = Quaternion(w=w, x=x, y=y, z=z)
    out.angular_velocity = Vector3(**dict(zip("xyz", (float(v) for v in imu.gyroscope))))
    out.linear_acceleration = Vector3(**dict(zip("xyz", (float(v) for v in imu.accelerometer))))
    return out


def spin_guarded(node: G1Driver, executor) -> None:
    """``shutdown.spin`` that outlives errors: the callbacks are guarded already; anything raised by the
    executor itself is logged, disarms (the writer keeps sending damping) and spinning goes on."""
    while shutdown.ok():
        try:
            shutdown.spin(executor)
        except (KeyboardInterrupt, ExternalShutdownException):
            raise
        except RCLError as exc:
            if shutdown.interrupted(exc):
                raise
            node.internal_error("the executor", exc)
        except Exception as exc:  # noqa: BLE001
            node.internal_error("the executor", exc)


def main(args=None) -> int:
    shutdown.init(args)
    node = G1Driver()
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    return shutdown.run_until_shutdown(node, lambda: spin_guarded(node, executor))


if __name__ == "__main__":
    sys.exit(main())
