"""g1_policy: the 50 Hz tracking controller node - a thin rclpy shell over the plain-Python cores.

Reads joint_states, imu, reference_window and estop; runs the safety state machine and, in TRACK, the
controller (an ONNX policy artifact, or the labelled pass-through baseline); publishes joint_command
and tracking_status every tick; serves set_mode.

Two ways to run (see README.md):
- real time (``use_sim_time: false``): an absolute-deadline loop on the monotonic clock that serves
  DDS callbacks in the gaps and sleeps the last stretch before each deadline (chosen by measurement
  over executor timers: bench/policy_tick.py ``--loops``); uses the latest inputs, watchdogs on their age.
- lockstep (``use_sim_time: true``): no loop of its own - one tick per simulator tick, when
  joint_states, imu and reference_window stamped t_k are all in (docs/lockstep.md).
"""

from __future__ import annotations

import collections
import math
import os
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import Bool, String

from g1_common import conversions, shutdown, ticks, topics, window_cdr
from g1_description import robot
from g1_interfaces.msg import JointCommand, ReferenceWindow, TrackingStatus
from g1_interfaces.srv import SetMode
from g1_tracker_policy import contract, external
from g1_tracker_policy.controllers import PassthroughController, PolicyController, RobotState
from g1_tracker_policy.observation import ObservationError
from g1_tracker_policy.safety import Mode, SafetyConfig, SafetyStateMachine, TickInputs, damping_command

NODE_NAME = "g1_policy"


@dataclass
class TickRecord:
    """Timing of one tick (seconds, monotonic clock): what the status and the bench report."""

    start_s: float
    lateness_s: float      # start - deadline (real time); 0 in lockstep
    period_s: float        # start - previous start
    latency_s: float       # observation + inference + command publish
    observation_s: float
    inference_s: float
    publish_s: float


class PolicyNode(Node):
    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, **kwargs)
        # held by callbacks and ticks when callbacks run in their own thread (loop "thread"); uncontended otherwise
        self.lock = threading.Lock()
        p = self._param
        self.policy_path = p("policy_path", "")
        # policies trained elsewhere (g1_tracker_policy.external): sidecar of facts, odometry, base_lin_vel
        self.policy_sidecar = p("policy_sidecar", "")
        self.odom_topic = p("odom_topic", topics.GROUND_TRUTH_ODOM)
        self.base_lin_vel_source = p("base_lin_vel", "zero")
        mode_on_start = p("mode_on_start", "passive").lower()
        self.loop_kind = p("loop", "deadline")
        self.executor_kind = p("executor", "events")
        self.guard_s = p("deadline_guard_ms", 2.0) / 1e3
        self.prewarm_lead_s = p("prewarm_lead_ms", 2.0) / 1e3
        self.realtime_priority = p("realtime_priority", 50)
        self.lockstep_timeout_s = p("lockstep_input_timeout_s", 0.5)
        self.lockstep_require_reference = p("lockstep_require_reference", True)
        warm_up_runs = p("warm_up_runs", 20)
        cfg = SafetyConfig(
            stand_ramp_s=p("stand_ramp_s", 2.5), track_ramp_s=p("track_ramp_s", 1.0),
            track_ramp_skip_rad=p("track_ramp_skip_rad", 0.1),
            state_late_s=p("state_late_ms", 50.0) / 1e3, state_lost_s=p("state_lost_ms", 500.0) / 1e3,
            reference_late_s=p("reference_late_ms", 150.0) / 1e3,
            reference_lost_s=p("reference_lost_ms", 1000.0) / 1e3,
            fall_tilt_rad=p("fall_tilt_rad", 1.0), fall_height_drop_m=p("fall_height_drop_m", 0.35),
            auto_stand=p("auto_stand", False) or mode_on_start == "stand",
            auto_track=p("auto_track", False),
            action_max_beyond_limits_rad=p("action_max_beyond_limits_rad", 3.5),
            action_max_step_rad=p("action_max_step_rad", 1.3),
            action_limits_scale_with_gains=p("action_limits_scale_with_gains", True),
            action_max_offset_rad=p("action_max_offset_rad", 2.5))
        if self.loop_kind not in ("deadline", "thread", "timer"):
            raise ValueError(f"parameter loop: {self.loop_kind!r} is not 'deadline', 'thread' or 'timer'")
        if mode_on_start not in ("passive", "stand"):
            raise ValueError(f"parameter mode_on_start: {mode_on_start!r} is not 'passive' or 'stand'")
        self.lockstep = self.get_parameter("use_sim_time").value

        self.controller, self.controller_label = self._load_controller(warm_up_runs)
        self.sm = SafetyStateMachine(cfg, self.controller_label, getattr(self.controller, "is_baseline", False))
        self.sm.has_controller = self.controller is not None
        self.sm.needs_position = bool(getattr(self.controller, "needs_odometry", False))
        if self.controller is not None:
            self.sm.on_track_start = self.controller.reset

        # latest inputs (real time) and per-tick inputs (lockstep)
        self._q = self._dq = self._quat = self._gyro = None
        self._state_rx_s = self._imu_rx_s = self._ref_rx_s = None
        self._state_stamp = self._ref_stamp_ns = None
        self._window = None
        self._reference_error = ""
        self._input_fault = ""
        self._estop = False
        self._state_by_tick: dict[int, tuple] = {}
        self._imu_by_tick: dict[int, tuple] = {}
        self._ref_by_tick: dict[int, object] = {}
        self._state_wall_by_tick: dict[int, float] = {}
        self._last_lockstep_tick = -1
        self._stamp_notes: list[str] = []  # inputs rejected for their stamp since the last status (lockstep)
        self._last_action = np.zeros(robot.NUM_JOINTS)
        self._tick_odom = None
        self._tick = 0
        self._overruns = 0
        self._prev_start_s: float | None = None
        self.records: collections.deque[TickRecord] = collections.deque(maxlen=200_000)
        self._ready_sent = False
        self._cmd_msg: JointCommand | None = None  # refilled every tick
        self._status_msg = TrackingStatus()         # refilled every tick

        q = topics.CONTROL_QOS
        self.sub_state = self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_state, q)
        self.sub_imu = self.create_subscription(Imu, topics.IMU, self._on_imu, q)
        # raw CDR, decoded with numpy (g1_common.window_cdr): ~4x cheaper than rclpy's nested message objects
        self.sub_ref = self.create_subscription(ReferenceWindow, topics.REFERENCE_WINDOW, self._on_reference, q,
                                                raw=True)
        self.sub_estop = self.create_subscription(Bool, topics.ESTOP, self._on_estop, q)
        self._odom = None  # latest (pos, lin_vel_body); lockstep: by tick in _odom_by_tick
        self._odom_rx_s: float | None = None
        self._odom_stamp_s: float | None = None  # lockstep service calls age the position by its stamp
        self._odom_by_tick: dict[int, tuple] = {}
        self.sub_odom = None
        if getattr(self.controller, "needs_odometry", False):
            if not self.odom_topic:
                raise ValueError(f"policy {self.policy_path} needs the robot's position (odometry), "
                                 "but odom_topic is ''")
            self.sub_odom = self.create_subscription(Odometry, self.odom_topic, self._on_odom, q)
        self.pub_cmd = self.create_publisher(JointCommand, topics.JOINT_COMMAND, q)
        self.pub_status = self.create_publisher(TrackingStatus, topics.TRACKING_STATUS, q)
        self.pub_ready = self.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self.srv_mode = self.create_service(SetMode, topics.SET_MODE, self._locked(self._on_set_mode))
        self.get_logger().info(
            f"controller {self.controller_label}; {'lockstep (use_sim_time)' if self.lockstep else 'real time'}; "
            f"loop {self.loop_kind}/{self.executor_kind}; auto_stand={cfg.auto_stand} auto_track={cfg.auto_track}")

    def _param(self, name: str, default):
        """Declare a parameter; numbers are accepted as int or float (YAML "2" for a float is not an error)."""
        desc = ParameterDescriptor(dynamic_typing=True)
        value = self.declare_parameter(name, default, desc).value
        if isinstance(default, bool) or isinstance(value, bool):
            ok = isinstance(value, bool) and isinstance(default, bool)
        else:
            ok = isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int))
        if not ok:
            raise ValueError(f"parameter {name}: {value!r} is not a {type(default).__name__}")
        return type(default)(value)

    def _locked(self, callback):
        def run(*args):
            with self.lock:
                return callback(*args)
        return run

    # --- set-up -----------------------------------------------------------------------------------
    def _load_controller(self, warm_up_runs: int):
        if not self.policy_path:
            self.get_logger().warning("no policy_path: running the BASELINE pass-through (PD targets = reference "
                                   "joints). It is not a tracker.")
            return PassthroughController(), PassthroughController.name
        try:
            artifact = external.load_policy(self.policy_path, self.policy_sidecar or None,
                                            base_lin_vel=self.base_lin_vel_source)
            if isinstance(artifact, external.ExternalArtifact):
                from g1_tracker_policy.external_controller import ExternalPolicyController

                ctrl = ExternalPolicyController(artifact, warm_up_runs)
                self.get_logger().info(f"loaded {artifact.format} policy {artifact.name}: {artifact.describe()}")
                return ctrl, ctrl.name
            ctrl = PolicyController(artifact, warm_up_runs)
        except contract.ContractError as exc:
            # stay up (PASSIVE/STAND still work and the status says why) but never track with it
            self.get_logger().error(f"refusing to arm {self.policy_path}: {exc}")
            return None, f"none (refused: {exc})"
        self.get_logger().info(f"loaded {artifact.model_kind} policy {artifact.name} "
                               f"(observation {artifact.observation.size}, golden vectors ok)")
        return ctrl, ctrl.name

    # --- input callbacks (kept short: parse, validate, store) --------------------------------------
    # Callbacks parse outside the lock (the reference parse is the slow part) and store under it, so
    # with loop "thread" a tick never waits for a parse.
    def _on_joint_state(self, msg: JointState) -> None:
        if self._reject_stamp(topics.JOINT_STATES, ticks.stamp_to_ns(msg.header.stamp)):
            return
        k = ticks.stamp_to_tick(msg.header.stamp)
        try:
            q, dq, _ = conversions.joint_state_to_arrays(msg)
        except conversions.MessageError as exc:
            with self.lock:
                self._input_fault = str(exc)
                # lockstep: tick k still runs (and damps) - never leave the simulator waiting on a bad message
                self._register_lockstep(k, self._state_by_tick, (self._q, self._dq), wall=True)
            return
        with self.lock:
            self._q, self._dq, self._state_rx_s, self._state_stamp = q, dq, time.monotonic(), msg.header.stamp
            self._register_lockstep(k, self._state_by_tick, (q, dq), wall=True)

    def _on_imu(self, msg: Imu) -> None:
        if self._reject_stamp(topics.IMU, ticks.stamp_to_ns(msg.header.stamp)):
            return
        k = ticks.stamp_to_tick(msg.header.stamp)
        try:
            quat, gyro, _ = conversions.imu_to_arrays(msg)
        except conversions.MessageError as exc:
            with self.lock:
                self._input_fault = str(exc)
                self._register_lockstep(k, self._imu_by_tick, (self._quat, self._gyro))
            return
        with self.lock:
            self._quat, self._gyro, self._imu_rx_s = quat, gyro, time.monotonic()
            self._register_lockstep(k, self._imu_by_tick, (quat, gyro))

    def _on_reference(self, raw: bytes) -> None:
        stamp_ns = None
        try:
            stamp_ns = ticks.cdr_header_stamp_ns(raw)
            window = window_cdr.decode(raw)
        except Exception as exc:  # noqa: BLE001 - MessageError, or bytes rclpy cannot deserialise either
            fault = str(exc) if isinstance(exc, conversions.MessageError) else \
                f"reference_window: undecodable ({type(exc).__name__}: {exc})"
            with self.lock:
                self._input_fault = fault
                # lockstep: tick k still runs (and holds) - never leave the simulator waiting on a bad message
                self._register_lockstep(None if stamp_ns is None else ticks.ns_to_tick(stamp_ns),
                                        self._ref_by_tick, self._window)
            return
        if self._reject_stamp(topics.REFERENCE_WINDOW, stamp_ns):
            return
        k = ticks.ns_to_tick(stamp_ns)
        error = ""
        if hasattr(self.controller, "accept_window"):
            try:
                self.controller.accept_window(window)  # offsets check, window-only observation terms
            except (contract.ContractError, ObservationError) as exc:
                error = str(exc)
        with self.lock:
            self._reference_error = error
            self._window, self._ref_rx_s, self._ref_stamp_ns = window, time.monotonic(), stamp_ns
            self._register_lockstep(k, self._ref_by_tick, window)

    def _reject_stamp(self, topic: str, stamp_ns: int | None) -> bool:
        """Lockstep: refuse an input whose stamp does not fit lockstep time (far ahead, going back, off the
        tick grid: g1_common.ticks.lockstep_stamp_problem), with a log line and a note in the next status.
        Accepting one would freeze the node (a far-future tick runs, every real tick after it is 'old')."""
        if not self.lockstep:
            return False
        last = self._last_lockstep_tick
        problem = ticks.lockstep_stamp_problem(stamp_ns, ticks.tick_to_ns(last) if last >= 0 else None,
                                               self.get_clock().now().nanoseconds)
        if not problem:
            return False
        if len(self._stamp_notes) < 3:  # bounded: a flood of bad stamps must not grow the status
            self._stamp_notes.append(f"rejected {topic} {problem}")
        self.get_logger().warning(f"{topic} {problem}: input rejected", throttle_duration_sec=1.0)
        return True

    def _register_lockstep(self, k: int | None, buffer: dict, value, wall: bool = False) -> None:
        """Lockstep: file an input under its tick (stamps off the tick grid or already ticked are dropped)."""
        if not self.lockstep or k is None or k <= self._last_lockstep_tick:
            return
        buffer[k] = value
        if wall:
            self._state_wall_by_tick[k] = time.monotonic()

    def _on_odom(self, msg: Odometry) -> None:
        p, v = msg.pose.pose.position, msg.twist.twist.linear  # twist: pelvis frame (ROS convention)
        odom = (np.array([p.x, p.y, p.z]), np.array([v.x, v.y, v.z]))
        tick = ticks.stamp_to_tick(msg.header.stamp)
        if not all(np.all(np.isfinite(a)) for a in odom):  # no position: TRACK holds once the last is late
            self.get_logger().warning("odometry with NaN/inf ignored", throttle_duration_sec=1.0)
            with self.lock:
                self._register_lockstep(tick, self._odom_by_tick, None)
            return
        with self.lock:
            self._odom, self._odom_rx_s = odom, time.monotonic()
            self._odom_stamp_s = ticks.stamp_to_ns(msg.header.stamp) * 1e-9
            self._register_lockstep(tick, self._odom_by_tick, odom)

    def _on_estop(self, msg: Bool) -> None:
        with self.lock:
            self._estop = bool(msg.data)

    def _on_set_mode(self, request: SetMode.Request, response: SetMode.Response) -> SetMode.Response:
        now_s = self._sim_now_s() if self.lockstep else time.monotonic()
        ok, message = self.sm.request(request.mode, self._inputs(now_s))
        response.success, response.message = ok, message
        response.mode = request.mode.strip().lower() if ok else self.sm.mode.name.lower()
        self.get_logger().info(f"set_mode {request.mode!r}: {message}")
        return response

    # --- readiness (docs/lockstep.md step 1) ---------------------------------------------------------
    def _maybe_ready(self) -> None:
        if self._ready_sent:
            return
        matched = (self.sub_state.get_publisher_count() > 0 and self.sub_imu.get_publisher_count() > 0
                   and self.pub_cmd.get_subscription_count() > 0)
        if self.lockstep_require_reference:
            matched = matched and self.sub_ref.get_publisher_count() > 0
        if self.sub_odom is not None:
            matched = matched and self.sub_odom.get_publisher_count() > 0
        if self.lockstep:
            matched = matched and self.count_publishers("/clock") > 0
        if matched:
            self.pub_ready.publish(String(data=self.get_name()))
            self._ready_sent = True
            self.get_logger().info("inputs and command subscriber matched: published ready")

    # --- one tick ------------------------------------------------------------------------------------
    def _sim_now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _inputs(self, now_s: float, state=None, imu=None, window=None, state_time_s=None, ref_time_s=None,
                position_time_s=None) -> TickInputs:
        """Real time: latest inputs aged by arrival (monotonic); lockstep: the caller passes tick-matched ones."""
        if not self.lockstep:
            state = (self._q, self._dq) if self._q is not None else None
            imu = (self._quat, self._gyro) if self._quat is not None else None
            window = self._window
            rx = [t for t in (self._state_rx_s, self._imu_rx_s)]
            state_time_s = None if None in rx else min(rx)  # the older of joint state and IMU
            ref_time_s = self._ref_rx_s
            position_time_s = self._odom_rx_s
        elif state is None and self._q is not None:  # service calls in lockstep: latest inputs, stamp-aged
            state, imu, window = (self._q, self._dq), (self._quat, self._gyro) if self._quat is not None else None, self._window
            state_time_s = ticks.stamp_to_ns(self._state_stamp) * 1e-9
            ref_time_s = None if self._ref_stamp_ns is None else self._ref_stamp_ns * 1e-9
            position_time_s = self._odom_stamp_s
        return TickInputs(
            now_s=now_s, joint_pos=None if state is None else state[0], joint_vel=None if state is None else state[1],
            state_time_s=state_time_s if imu is not None else None,
            base_quat_wxyz=None if imu is None else imu[0], window=window, reference_time_s=ref_time_s,
            estop=self._estop, input_fault=self._input_fault, reference_error=self._reference_error,
            position_time_s=position_time_s)

    def _run_controller(self, inp: TickInputs, gyro: np.ndarray):
        if self.lockstep:
            odom = self._tick_odom
        else:  # real time: the latest, unless older than state_lost_ms (never a stale position)
            fresh = self._odom_rx_s is not None and time.monotonic() - self._odom_rx_s < self.sm.cfg.state_lost_s
            odom = self._odom if fresh else None
        state = RobotState(joint_pos=inp.joint_pos, joint_vel=inp.joint_vel, base_quat_wxyz=inp.base_quat_wxyz,
                           base_ang_vel_body=gyro, base_pos_world=None if odom is None else odom[0],
                           base_lin_vel_body=None if odom is None else odom[1])
        return self.controller.compute(state, inp.window, self._last_action)

    def run_tick(self, inp: TickInputs, gyro, stamp, lateness_s: float = 0.0) -> None:
        start = time.monotonic()
        t0 = time.perf_counter()
        run = None if self.controller is None else (lambda: self._run_controller(inp, gyro))
        prev_mode = self.sm.mode
        result = self.sm.tick(inp, run)
        cmd = result.command
        if result.mode != prev_mode:
            self.get_logger().info(f"mode {prev_mode.name} -> {result.mode.name}: {result.detail}")
        t1 = time.perf_counter()
        self._cmd_msg = conversions.make_joint_command(stamp, cmd.position, cmd.kp, cmd.kd, cmd.velocity,
                                                      cmd.effort, int(cmd.source), out=self._cmd_msg)
        self.pub_cmd.publish(self._cmd_msg)
        t2 = time.perf_counter()
        self._input_fault = ""  # consumed: the state machine has latched its consequence
        if result.ran_controller:
            self._last_action = np.asarray(result.controller_output.action, dtype=np.float64)
        elif self.controller is not None:
            self._last_action = self.controller.observe_command(cmd.position, inp.window)
        out = result.controller_output
        obs_s = out.observation_ms / 1e3 if out else 0.0
        inf_s = out.inference_ms / 1e3 if out else 0.0
        period = 0.0 if self._prev_start_s is None else start - self._prev_start_s
        self._prev_start_s = start
        rec = TickRecord(start, lateness_s, period, t2 - t0, obs_s, inf_s, t2 - t1)
        self.records.append(rec)
        if result.sanitized:
            self.get_logger().warning(f"command sanitised: {'; '.join(result.sanitized)}", throttle_duration_sec=1.0)
        self._publish_status(result, rec, stamp, inp.window)
        self._tick += 1

    def _publish_status(self, result, rec: TickRecord, stamp, window) -> None:
        s = self._status_msg  # refilled every tick (rclpy serialises at publish); every field is set below
        s.header.stamp = stamp
        s.mode, s.mode_name = int(result.mode), result.mode.name.lower()
        s.watchdog, s.watchdog_detail = int(result.watchdog), result.detail
        if self._stamp_notes:  # inputs refused for their stamp: said once, in the status of the next tick
            s.watchdog_detail = "; ".join([result.detail, *self._stamp_notes])
            self._stamp_notes = []
        s.controller = self.controller_label
        if window is not None:
            s.active_motion, s.clip_time_s, s.clip_duration_s = window.motion_name, window.clip_time_s, window.clip_duration_s
        else:
            s.active_motion, s.clip_time_s, s.clip_duration_s = "", 0.0, 0.0
        s.tick_latency_ms, s.observation_ms = rec.latency_s * 1e3, rec.observation_s * 1e3
        s.inference_ms, s.publish_ms = rec.inference_s * 1e3, rec.publish_s * 1e3
        s.period_jitter_ms = 0.0 if self.lockstep or rec.period_s == 0.0 else abs(rec.period_s - robot.CONTROL_PERIOD_S) * 1e3
        s.overruns, s.tick = self._overruns, self._tick & 0xFFFFFFFF
        self.pub_status.publish(s)

    def publish_damping(self) -> None:
        """Sent once on shutdown: the robot must not keep the last stiff target of a dead controller."""
        cmd = damping_command()
        stamp = self.get_clock().now().to_msg()
        self.pub_cmd.publish(conversions.make_joint_command(stamp, cmd.position, cmd.kp, cmd.kd, source=int(cmd.source)))

    # --- real time ---------------------------------------------------------------------------------
    def realtime_tick(self, deadline_s: float | None = None, woke_s: float | None = None) -> None:
        start = time.monotonic()
        stamp = self._realtime_stamp(start)
        late = 0.0 if deadline_s is None else (start if woke_s is None else woke_s) - deadline_s
        self.run_tick(self._inputs(start), self._gyro, stamp, late)

    def _realtime_stamp(self, now_s: float):
        """The stamp of a real-time tick's command and status: the joint state's while it is fresh (the
        command belongs to that state; the evaluator aligns by it), the node's clock once the state is older
        than ``state_late_ms``: after a state loss every HOLD/DAMP tick carries its own time."""
        if (self._state_stamp is not None and self._state_rx_s is not None
                and now_s - self._state_rx_s <= self.sm.cfg.state_late_s):
            return self._state_stamp
        return self.get_clock().now().to_msg()

    def spin_deadline(self, executor, duration_s: float | None = None) -> None:
        """Absolute-deadline loop: serve callbacks until ``guard`` before the deadline, sleep the rest,
        tick. Deadlines advance by exactly one period (no drift); missed slots are counted and skipped."""
        self._raise_loop_priority()
        try:
            self._deadline_loop(executor, duration_s)
        finally:
            self._restore_priority()

    def _deadline_loop(self, executor, duration_s: float | None) -> None:
        period = robot.CONTROL_PERIOD_S
        end = None if duration_s is None else time.monotonic() + duration_s
        deadline = time.monotonic() + period
        while shutdown.ok() and (end is None or time.monotonic() < end):
            while (remaining := deadline - time.monotonic()) > self.guard_s:
                executor.spin_once(timeout_sec=remaining - self.guard_s)
            self._sleep_and_prewarm(deadline)
            if not shutdown.ok():  # shut down (Ctrl-C) while we waited
                break
            self.realtime_tick(deadline)
            self._maybe_ready()  # not a timer: a ready timer in this executor delays spin_once by ~4 ms
            deadline += period
            late = time.monotonic() - deadline
            if late > 0:  # this tick ran past the next deadline: skip the missed slots, keep the phase
                self._overruns += 1
                deadline += math.ceil(late / period) * period

    def _sleep_and_prewarm(self, deadline: float) -> None:
        """Sleep to ``prewarm_lead_ms`` before the deadline, then a dry run of observation + inference
        (discarded, no state change), then inference re-runs until one runs at its cache-warm speed or the
        lead is used up, then busy-wait to the deadline. Only while tracking, and only for a model whose
        warm inference fits well in the lead; 0 disables it (plain sleep to the deadline). Why: a large
        policy's weights leave this machine's caches within milliseconds, and one re-run only brings part
        of them back (3.3M-param
        MoE, bench: cold 0.64 ms, after one re-run 0.34, after five 0.20, back-to-back 0.17). Cost: the
        lead, in CPU, per tick (2 ms = 10 % of a core)."""
        lead = self.prewarm_lead_s
        warm_s = self.controller.runner.warm_inference_s if isinstance(self.controller, PolicyController) else 0.0
        # Gated on the warm inference time (what a prewarm pass costs once warm), not on the in-tick one (a
        # model whose cold in-tick inference is long is exactly the one that needs it). A cold pass takes
        # up to ~3x the warm one and must end before the deadline: at "half the lead" the 20M transformer's
        # warm-up overran it (jitter p99 0.84 ms), so a pass starts only with 3x (first) / 1.5x its warm
        # time left.
        if lead > 0 and self.sm.mode == Mode.TRACK and 0.0 < 3.0 * warm_s < lead:
            if (remaining := deadline - lead - time.monotonic()) > 0:
                time.sleep(remaining)
            t = time.monotonic()
            # first a dry run of observation + inference on the latest inputs (history restored), then
            # inference alone; reads the inputs callbacks replace whole: safe beside the DDS thread
            inp = self._inputs(t)
            dry = inp.joint_pos is not None and inp.base_quat_wxyz is not None and inp.window is not None
            factor = 3.0
            while deadline - t > factor * warm_s:
                if dry:
                    odom = self._odom  # the dry run only: a missing position just skips the observation
                    self.controller.prewarm(RobotState(inp.joint_pos, inp.joint_vel, inp.base_quat_wxyz, self._gyro,
                                                       base_pos_world=None if odom is None else odom[0],
                                                       base_lin_vel_body=None if odom is None else odom[1]),
                                            inp.window, self._last_action)
                    dry = False
                else:
                    self.controller.prewarm()
                t, took = time.monotonic(), time.monotonic() - t
                factor = 1.5
                if took < 1.25 * warm_s:  # warm
                    break
            # Busy-wait the rest of the lead: a sleeping vCPU gives its core (and caches) away again.
            while time.monotonic() < deadline:
                pass
            return
        if (remaining := deadline - time.monotonic()) > 0:
            time.sleep(remaining)

    def spin_deadline_thread(self, executor, duration_s: float | None = None) -> None:
        """The same absolute-deadline loop, but DDS callbacks run in a background executor thread and this
        thread only sleeps and ticks: a callback or a slow executor wake-up can no longer delay a tick.
        A short GIL switch interval bounds how long a running callback can hold the loop thread off."""
        sys.setswitchinterval(0.0005)
        self._raise_loop_priority()
        stop = threading.Event()

        def serve():
            while not stop.is_set() and shutdown.ok():
                executor.spin_once(timeout_sec=0.05)

        server = threading.Thread(target=serve, name="g1_policy_dds", daemon=True)
        server.start()
        period = robot.CONTROL_PERIOD_S
        end = None if duration_s is None else time.monotonic() + duration_s
        deadline = time.monotonic() + period
        try:
            while shutdown.ok() and (end is None or time.monotonic() < end):
                self._sleep_and_prewarm(deadline)  # no lock held: callbacks keep running while it sleeps
                if not shutdown.ok():
                    break
                woke_s = time.monotonic()
                with self.lock:
                    self.realtime_tick(deadline, woke_s)
                    self._maybe_ready()
                deadline += period
                late = time.monotonic() - deadline
                if late > 0:
                    self._overruns += 1
                    deadline += math.ceil(late / period) * period
        finally:
            stop.set()
            server.join(timeout=1.0)
            self._restore_priority()

    def _raise_loop_priority(self) -> None:
        """SCHED_FIFO for the calling (loop) thread only, when ``realtime_priority`` > 0: on a busy CPU the
        kernel then wakes the tick on time instead of after whatever else is runnable. Needs CAP_SYS_NICE
        (or an rtprio limit); without it the loop runs at normal priority and says so."""
        if self.realtime_priority <= 0:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(self.realtime_priority))
            self.get_logger().info(f"loop thread: SCHED_FIFO priority {self.realtime_priority}")
        except (PermissionError, OSError, AttributeError) as exc:
            self.get_logger().warning(f"realtime_priority {self.realtime_priority} not granted ({exc}); "
                                      "running at normal priority")

    def _restore_priority(self) -> None:
        if self.realtime_priority > 0:
            try:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            except OSError:
                pass

    def spin_timer(self, executor, duration_s: float | None = None) -> None:
        """The alternative measured in the bench: a 50 Hz executor timer."""
        self.create_timer(robot.CONTROL_PERIOD_S, self.realtime_tick)
        self.create_timer(0.1, self._maybe_ready)
        end = None if duration_s is None else time.monotonic() + duration_s
        while shutdown.ok() and (end is None or time.monotonic() < end):
            executor.spin_once(timeout_sec=0.1)

    # --- lockstep ------------------------------------------------------------------------------------
    def spin_lockstep(self, executor, duration_s: float | None = None) -> None:
        end = None if duration_s is None else time.monotonic() + duration_s
        while shutdown.ok() and (end is None or time.monotonic() < end):
            executor.spin_once(timeout_sec=0.01)
            self._maybe_ready()
            while self._lockstep_step():
                pass

    def _lockstep_step(self) -> bool:
        """Run tick k once joint state, IMU and reference stamped t_k are in (or the reference timed out)."""
        ready = sorted(k for k in self._state_by_tick if k in self._imu_by_tick)
        if not ready:
            return False
        k = ready[0]
        if self.sub_odom is not None and k not in self._odom_by_tick:  # a policy that observes odometry
            if time.monotonic() - self._state_wall_by_tick[k] < self.lockstep_timeout_s \
                    and self.sub_odom.get_publisher_count() > 0:
                return False
            # never a stale position: without this tick's odometry TRACK holds (safety.py)
            self.get_logger().warning(f"tick {k}: no odometry stamped t_k", throttle_duration_sec=2.0)
        window = self._ref_by_tick.get(k)
        if window is None:
            waited = time.monotonic() - self._state_wall_by_tick[k]
            # Wait for the reference of this tick only while someone publishes references: with the
            # motion server gone, waiting would only slow the simulation down (the age watchdog acts).
            if waited < self.lockstep_timeout_s and self.sub_ref.get_publisher_count() > 0:
                return False
            window = self._window  # never wait for a reference that will not come: the age watchdog decides
            self.get_logger().warning(f"tick {k}: no reference stamped t_k after {waited:.2f} s, using the latest",
                                   throttle_duration_sec=2.0)
        ref_time_s = None
        if window is not None:
            ref_time_s = ticks.tick_to_ns(k) * 1e-9 if k in self._ref_by_tick else (
                None if self._ref_stamp_ns is None else self._ref_stamp_ns * 1e-9)
        state, imu = self._state_by_tick[k], self._imu_by_tick[k]
        now_s = ticks.tick_to_ns(k) * 1e-9
        inp = self._inputs(now_s, state=state, imu=imu, window=window, state_time_s=now_s, ref_time_s=ref_time_s,
                           position_time_s=now_s if self._odom_by_tick.get(k) is not None else None)
        self._last_lockstep_tick = k
        self._tick_odom = self._odom_by_tick.get(k)
        for buf in (self._state_by_tick, self._imu_by_tick, self._ref_by_tick, self._state_wall_by_tick,
                    self._odom_by_tick):
            for old in [t for t in buf if t <= k]:
                del buf[old]
        self.run_tick(inp, imu[1], ticks.stamp_from_tick(k))
        return True

    def spin(self, executor, duration_s: float | None = None) -> None:
        if self.lockstep:
            self.spin_lockstep(executor, duration_s)
        elif self.loop_kind == "timer":
            self.spin_timer(executor, duration_s)
        elif self.loop_kind == "thread":
            self.spin_deadline_thread(executor, duration_s)
        else:
            self.spin_deadline(executor, duration_s)


def make_executor(kind: str):
    if kind == "events":
        from rclpy.experimental import EventsExecutor
        return EventsExecutor()
    if kind != "single":
        raise ValueError(f"parameter executor: {kind!r} is not 'single' or 'events'")
    return SingleThreadedExecutor()


def main(args=None) -> None:
    # A signal only ends the loop (g1_common.shutdown): the context stays valid for the final damping command.
    shutdown.init(args)
    node = None
    try:
        node = PolicyNode()
        executor = make_executor(node.executor_kind)
        executor.add_node(node)
        node.spin(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            if rclpy.ok():
                node.publish_damping()
            else:
                node.get_logger().warning("shut down without a last damping command (context already gone); "
                                       "the hardware layer's command timeout applies")
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
