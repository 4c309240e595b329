"""g1_sim: the MuJoCo G1 behind the same topics as the real robot (see README.md, docs/lockstep.md).

Two clock modes:
- ``realtime``: a 500 Hz absolute-deadline loop steps physics with the motor PD on the latest command
  and publishes the robot state every 10th step (50 Hz), stamped with the wall clock like the driver.
- ``lockstep``: the simulator owns time. It publishes ``/clock`` = t_k once per control tick, the state
  stamped t_k, then waits for the ``joint_command`` stamped t_k before running the tick's 10 physics
  steps. Deterministic: the same seed and commands give bit-identical states.

The loop is a plain ``while`` around ``EventsExecutor.spin_once(timeout)``: callbacks only store what
arrived, and the loop decides when time moves. Timers are never used for the control path (under
lockstep they would be driven by the clock we are publishing).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rclpy
from geometry_msgs.msg import Point, Quaternion, Vector3
from nav_msgs.msg import Odometry
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.experimental import EventsExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool

from g1_common import conversions, shutdown, ticks, topics
from g1_description import physics as physics_profiles
from g1_description import robot
from g1_common.shutdown import RCLError, interrupted
from g1_hardware.sim_core import COMMAND_TIMEOUT_S, CommandLimits, MotorCommand, MujocoG1, Randomization, SimConfig
from g1_interfaces.msg import JointCommand, KeyBodyPositions
from g1_interfaces.srv import PushRobot, ResetSim, StepSim

_CLOCK_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)  # fits rclpy's best-effort reader

PARAMETERS = {
    "mode": "lockstep",                    # "lockstep" | "realtime"
    "physics_profile": "drivers_500hz",    # g1_description.physics: drivers_500hz | actuator_200hz
    "physics_rate_hz": 0.0,                # 0: the profile's; else checked against it
    "control_rate_hz": 50.0,               # checked against g1_description (publishing rate)
    "seed": 0,
    "initial_pose": "stand",               # "stand" | "keyframe:<name>"
    "initial_joint_positions": Parameter.Type.DOUBLE_ARRAY,  # SDK order; unset = default pose
    "initial_command": "damping",          # "damping" (like the robot) | "stand" (hold with STAND gains)
    "action_latency_steps": 0,             # 2 ms units between a command and its effect (profile-rounded)
    "randomize": False,
    "friction_scale": [0.7, 1.3],
    "mass_scale": [0.9, 1.1],
    "motor_strength_scale": [0.9, 1.1],
    "kp_max": 500.0,
    "kd_max": 50.0,
    "ready_peers": Parameter.Type.STRING_ARRAY,  # node names that say ready on g1/ready before t=0
    "ready_timeout_s": 30.0,      # wall time to wait for the peers
    # Real time: no physics until ready_peers are ready (a real robot comes off its gantry only once the
    # controller runs). Without it a slow-starting policy finds the robot already collapsed under damping.
    "realtime_wait_for_peers": False,
    "lockstep_command_timeout_s": 2.0,     # wall time to wait for the command of a tick -> damping
    # Real time: damping once the last accepted joint_command is older than this (wall), like the robot's
    # driver (same constant). Not before the first command (initial_command holds until then). Lockstep
    # needs no such timeout: each tick waits for its own command and damps on the tick that has none.
    "command_timeout_s": COMMAND_TIMEOUT_S,
    # Wall time between "all peers ready" and t=0. Discovery is asymmetric: a peer's reader can see our
    # writer (and say ready) before every writer in the graph has matched every reader, e.g. the
    # policy's status writer and the recorder. Without this settle time the first ticks of some topics
    # can be missed by the recorder and reruns differ.
    "lockstep_settle_s": 0.5,
    "duration_s": 0.0,                     # stop after this much sim time (0: run until shut down)
    "final_state_file": "",                # write a JSON summary (state hash, RTF, lateness) at exit
    "publish_ground_truth": True,
    "executor": "events",                  # "events" (EventsExecutor) | "single_threaded" (for comparison)
    # Pushes at exact sim times, for reproducible robustness tests: [t_s, vx, vy, vz, t_s, ...] (m/s, world).
    # Unlike the sim/push service, they cannot race a lockstep run.
    "scheduled_pushes": Parameter.Type.DOUBLE_ARRAY,
    # Lockstep evaluation runs: stop once the commands have been pure damping (kp = 0) for this long
    # (0: never). The robot is down or handed to damping; more ticks add nothing, and ending on the
    # commands keeps the end of the run deterministic.
    "stop_after_damping_s": 0.0,
}


class LockstepError(RuntimeError):
    """The lockstep graph cannot start (missing peers)."""


@dataclass
class RunStats:
    """What the final-state file reports."""

    started_wall: float = 0.0
    command_timeouts: int = 0
    rejected_commands: int = 0
    lateness_s: deque = field(default_factory=lambda: deque(maxlen=300_000))  # last 10 min at 500 Hz
    overruns: int = 0


class SimNode(Node):
    def __init__(self):
        super().__init__("g1_sim")
        # Arrays declared by type have no default (rclpy cannot type an empty list): unset reads as [].
        p = {name: self.declare_parameter(name, default).value for name, default in PARAMETERS.items()}
        p = {name: ([] if value is None else value) for name, value in p.items()}
        self._check_rates(p)
        self.params = p
        self.mode = p["mode"]
        if self.mode not in ("lockstep", "realtime"):
            raise ValueError(f"parameter mode={self.mode!r}: use 'lockstep' or 'realtime'")
        self.sim = MujocoG1(self._sim_config(p), warn=self.get_logger().warning)
        self._reset_initial(p)
        self.stats = RunStats()
        self._pending_ops: list = []  # service requests applied between ticks, in arrival order
        self._scheduled_pushes = self._parse_pushes(p["scheduled_pushes"])
        self._damping_ticks = 0
        self._stopped_by_damping = False
        self.paused = False
        self._step_budget = 0
        self._command_for_tick: JointCommand | None = None
        self._last_command_wall: float | None = None  # real time: when the last command was accepted
        self._command_timed_out = False
        self._ready_peers: set[str] = set()
        self._end: tuple[str, str] | None = None  # (kind, text) once the run ended (end_reason)
        self._create_interfaces()

    # --- set-up ----------------------------------------------------------------------------------

    @staticmethod
    def _parse_pushes(values) -> list[tuple[int, np.ndarray]]:
        values = list(values or [])
        if len(values) % 4 or not np.all(np.isfinite(values)):
            raise ValueError(f"parameter scheduled_pushes={values}: give finite groups of [t_s, vx, vy, vz]")
        pushes = [(int(round(values[i] / robot.CONTROL_PERIOD_S)), np.array(values[i + 1:i + 4]))
                  for i in range(0, len(values), 4)]
        return sorted(pushes, key=lambda p: p[0])

    def _run_scheduled_pushes(self) -> None:
        while self._scheduled_pushes and self._scheduled_pushes[0][0] <= self.sim.tick:
            _, dv = self._scheduled_pushes.pop(0)
            self.sim.push(dv)
            self.get_logger().info(f"scheduled push {dv.tolist()} m/s at t={self.sim.tick * robot.CONTROL_PERIOD_S:.2f} s")

    @staticmethod
    def _check_rates(p) -> None:
        try:
            prof = physics_profiles.get_profile(p["physics_profile"])
        except robot.DescriptionError as exc:
            raise ValueError(f"parameter physics_profile: {exc}") from None
        physics_ok = not p["physics_rate_hz"] or abs(p["physics_rate_hz"] * prof.timestep_s - 1.0) < 1e-9
        if not physics_ok or abs(p["control_rate_hz"] * robot.CONTROL_PERIOD_S - 1.0) > 1e-9:
            raise ValueError(f"rates physics_rate_hz={p['physics_rate_hz']}, control_rate_hz="
                             f"{p['control_rate_hz']} differ from physics profile {prof.name} and g1_description "
                             f"({prof.rate_hz:g}, {robot.CONTROL_RATE_HZ:g} Hz); choose the profile with "
                             "physics_profile (0 = its rate); the control rate is the whole stack's")

    @staticmethod
    def _sim_config(p) -> SimConfig:
        return SimConfig(
            seed=int(p["seed"]), action_latency_steps=int(p["action_latency_steps"]),
            physics_profile=p["physics_profile"],
            randomization=Randomization(bool(p["randomize"]), tuple(p["friction_scale"]),
                                        tuple(p["mass_scale"]), tuple(p["motor_strength_scale"])),
            limits=CommandLimits(float(p["kp_max"]), float(p["kd_max"])))

    def _reset_initial(self, p) -> None:
        joints = list(p["initial_joint_positions"]) or None
        self._reset_to_named(p["initial_pose"], joints)()
        if p["initial_command"] == "stand":
            self.sim.set_command(MotorCommand.hold(self.sim.joint_positions))
        elif p["initial_command"] != "damping":
            raise ValueError(f"parameter initial_command={p['initial_command']!r}: use 'damping' or 'stand'")

    def _create_interfaces(self) -> None:
        q = topics.CONTROL_QOS
        self.pub_joint_states = self.create_publisher(JointState, topics.JOINT_STATES, q)
        self.pub_imu = self.create_publisher(Imu, topics.IMU, q)
        self.pub_odom = self.create_publisher(Odometry, topics.GROUND_TRUTH_ODOM, q)
        self.pub_key_bodies = self.create_publisher(KeyBodyPositions, topics.GROUND_TRUTH_KEY_BODIES, q)
        self.pub_clock = self.create_publisher(Clock, "/clock", _CLOCK_QOS) if self.mode == "lockstep" else None
        self.create_subscription(JointCommand, topics.JOINT_COMMAND, self._on_command, q)
        self.create_subscription(String, topics.READY, self._on_ready, topics.LATCHED_QOS)
        self.create_service(ResetSim, topics.SIM_RESET, self._on_reset)
        self.create_service(PushRobot, topics.SIM_PUSH, self._on_push)
        self.create_service(SetBool, topics.SIM_PAUSE, self._on_pause)
        self.create_service(StepSim, topics.SIM_STEP, self._on_step)

    # --- callbacks: store, never step ------------------------------------------------------------

    def _on_command(self, msg: JointCommand) -> None:
        if self.mode == "realtime":
            self._apply(msg)
            return
        tick = ticks.stamp_to_tick(msg.header.stamp)
        if tick == self.sim.tick:
            self._command_for_tick = msg
        else:
            self.get_logger().warning(
                f"lockstep: ignoring a joint_command stamped {ticks.stamp_to_ns(msg.header.stamp)} ns "
                f"(tick {tick}) while waiting for tick {self.sim.tick}; commands must carry the stamp of "
                "the joint_states they answer", throttle_duration_sec=2.0)

    def _apply(self, msg: JointCommand) -> None:
        fields = {f: getattr(msg, f) for f in ("position", "velocity", "kp", "kd", "effort")}
        if not self.sim.apply_command(msg.joint_names, fields):
            self.stats.rejected_commands += 1
            return  # a rejected command does not count as fresh (the driver's rule too)
        self._last_command_wall = time.monotonic()
        if self._command_timed_out:
            self._command_timed_out = False
            self.get_logger().info("joint_command resumed")

    def _check_command_timeout(self, now: float) -> None:
        """Real time: damping when the commands stopped, like the robot's driver."""
        timeout = self.params["command_timeout_s"]
        if self._command_timed_out or self._last_command_wall is None or now - self._last_command_wall <= timeout:
            return
        self._command_timed_out = True
        self.stats.command_timeouts += 1
        self.sim.damp()
        self.get_logger().error(f"no joint_command for > {timeout} s: damping (like the robot's driver); "
                                "resumes when commands come back")

    def _on_ready(self, msg: String) -> None:
        self._ready_peers.add(msg.data)

    def _on_reset(self, request, response):
        try:
            if request.pose == "explicit":
                op = self._reset_explicit(request)
            else:
                op = self._reset_to_named(request.pose or "stand", list(request.joint_positions) or None)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        self._pending_ops.append(op)
        response.success, response.message = True, f"reset to {request.pose or 'stand'} before the next tick"
        return response

    def _reset_to_named(self, pose: str, joints):
        if joints is not None:
            joints = robot.check_joint_vector(joints, "reset joint_positions")
        if pose == "stand":
            return lambda: self.sim.reset_standing(joints)
        if pose.startswith("keyframe:"):
            key = pose.split(":", 1)[1]
            try:
                qpos = self.sim.model.key(key).qpos.copy()
            except KeyError:
                raise ValueError(f"reset: the model has no keyframe {key!r}") from None
            return lambda: self.sim.reset_to(qpos[:3], qpos[3:7], qpos[7:])
        raise ValueError(f"reset: unknown pose {pose!r}; use 'stand', 'keyframe:<name>' or 'explicit'")

    def _reset_explicit(self, request):
        p, o = request.root_position, request.root_orientation
        position, quat = np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z])
        joints = robot.check_joint_vector(request.joint_positions, "reset joint_positions")
        if not 0.9 < np.linalg.norm(quat) < 1.1 or not np.all(np.isfinite(joints)):
            raise ValueError("reset: explicit pose needs a unit root_orientation and finite joint_positions")
        return lambda: self.sim.reset_to(position, quat, joints)

    def _on_push(self, request, response):
        v, w = request.linear_velocity, request.angular_velocity
        dv, dw = [v.x, v.y, v.z], [w.x, w.y, w.z]
        if not np.all(np.isfinite(dv + dw)):
            response.success, response.message = False, "push: NaN or inf in the velocity change"
            return response
        self._pending_ops.append(lambda: self.sim.push(dv, dw))
        response.success, response.message = True, "push applied before the next tick"
        return response

    def _on_pause(self, request, response):
        self.paused = bool(request.data)
        self._step_budget = 0
        response.success, response.message = True, "paused" if self.paused else "running"
        return response

    def _on_step(self, request, response):
        if not self.paused:
            response.success, response.message = False, "sim/step works while paused; call sim/pause first"
        else:
            self._step_budget += int(request.ticks)
            response.success, response.message = True, f"stepping {request.ticks} ticks"
        response.sim_time_s = (self.sim.tick + self._step_budget) * robot.CONTROL_PERIOD_S
        return response

    # --- publishing --------------------------------------------------------------------------------

    def publish_state(self, stamp) -> None:
        sim = self.sim
        self.pub_joint_states.publish(conversions.make_joint_state(
            stamp, sim.joint_positions, sim.joint_velocities, sim.last_torque))
        self.pub_imu.publish(self._imu_msg(stamp))
        if self.params["publish_ground_truth"]:
            self._publish_ground_truth(stamp)

    def _imu_msg(self, stamp) -> Imu:
        imu = self.sim.imu()
        msg = Imu()
        msg.header.stamp, msg.header.frame_id = stamp, robot.IMU_SITE
        w, x, y, z = imu.quat_wxyz.tolist()
        msg.orientation = Quaternion(w=w, x=x, y=y, z=z)
        msg.angular_velocity = _vector3(imu.angular_velocity)
        msg.linear_acceleration = _vector3(imu.linear_acceleration)
        return msg

    def _publish_ground_truth(self, stamp) -> None:
        gt = self.sim.ground_truth()
        odom = Odometry()
        odom.header.stamp, odom.header.frame_id, odom.child_frame_id = stamp, "world", robot.ROOT_BODY
        odom.pose.pose.position = Point(**dict(zip("xyz", gt.position.tolist())))
        w, x, y, z = gt.quat_wxyz.tolist()
        odom.pose.pose.orientation = Quaternion(w=w, x=x, y=y, z=z)
        odom.twist.twist.linear = _vector3(gt.linear_velocity)
        odom.twist.twist.angular = _vector3(gt.angular_velocity)
        self.pub_odom.publish(odom)
        bodies = KeyBodyPositions()
        bodies.header.stamp, bodies.header.frame_id = stamp, "world"
        bodies.names = list(robot.KEY_BODIES)
        bodies.positions = [Point(x=p[0], y=p[1], z=p[2]) for p in gt.key_body_positions.tolist()]
        self.pub_key_bodies.publish(bodies)

    def publish_clock(self, tick: int) -> None:
        if self.pub_clock is not None:  # lockstep only
            self.pub_clock.publish(Clock(clock=ticks.stamp_from_tick(tick)))

    # --- the loops ---------------------------------------------------------------------------------

    def _run_pending_ops(self) -> None:
        ops, self._pending_ops = self._pending_ops, []
        for op in ops:
            op()

    def _may_tick(self) -> bool:
        if not self.paused:
            return True
        if self._step_budget > 0:
            self._step_budget -= 1
            return True
        return False

    def flush_publishers(self, timeout_s: float = 1.0) -> None:
        """Wait until every reliable reader acknowledged what we published: a process that exits right
        after its last publish can otherwise take the last ticks with it (the recorder would miss them)."""
        from rclpy.duration import Duration

        for pub in (self.pub_joint_states, self.pub_imu, self.pub_odom, self.pub_key_bodies):
            try:
                pub.wait_for_all_acked(Duration(seconds=timeout_s))
            except Exception:  # noqa: BLE001 - best effort at shutdown
                pass

    def _done(self) -> bool:
        limit = self.params["duration_s"]
        return self._stopped_by_damping or (limit > 0 and self.sim.tick * robot.CONTROL_PERIOD_S >= limit - 1e-9)

    def end_reason(self, error: str | None = None) -> tuple[str, str]:
        """(kind, text) of what ended the run: ``duration``, ``damping`` (stop_after_damping_s), ``signal``
        or ``error``. The summary carries it, so a supervisor (g1 track) can tell a run that reached its
        end from one that was stopped or failed."""
        if error is not None:
            return "error", f"error: {error}"
        if self._stopped_by_damping:
            return "damping", (f"the commands had been damping for {self.params['stop_after_damping_s']:g} s "
                               f"(stop_after_damping_s; {self.stats.command_timeouts} ticks without a command)")
        if self._done():
            return "duration", f"duration_s {self.params['duration_s']:g} s of sim time reached"
        return "signal", "stopped by a signal or shutdown before the run's end"

    def _count_damping(self, command: JointCommand | None) -> None:
        damping = command is None or not any(command.kp)
        self._damping_ticks = self._damping_ticks + 1 if damping else 0
        limit = self.params["stop_after_damping_s"]
        if limit > 0 and self._damping_ticks * robot.CONTROL_PERIOD_S >= limit - 1e-9 and not self._stopped_by_damping:
            self._stopped_by_damping = True
            self.get_logger().info(f"stopping: the commands have been damping for {limit:g} s "
                                   "(stop_after_damping_s)")

    def wait_for_peers(self, executor) -> None:
        """Readiness handshake: no physics (lockstep: only /clock at t=0) until every peer said ready on
        g1/ready, and until their command publishers and state subscribers are matched on our side too."""
        peers = set(self.params["ready_peers"])
        if not peers and self.mode == "lockstep":
            self.get_logger().warning("lockstep with no ready_peers: every tick waits "
                                      f"{self.params['lockstep_command_timeout_s']} s for a command, then damps")
        deadline = time.monotonic() + self.params["ready_timeout_s"]
        while shutdown.ok():
            missing = peers - self._ready_peers
            matched = not peers or (self.count_publishers(topics.JOINT_COMMAND) >= 1
                                    and self.pub_joint_states.get_subscription_count() >= 1)
            if not missing and matched:
                settle_end = time.monotonic() + self.params["lockstep_settle_s"]
                while time.monotonic() < settle_end and shutdown.ok():
                    self.publish_clock(self.sim.tick)
                    executor.spin_once(timeout_sec=0.05)
                self.get_logger().info(f"{self.mode}: peers ready ({sorted(self._ready_peers)}), starting at "
                                       f"tick {self.sim.tick}")
                return
            if time.monotonic() > deadline:
                raise LockstepError(f"{self.mode}: peers {sorted(missing)} did not say ready on {topics.READY} within "
                                    f"{self.params['ready_timeout_s']} s (ready: {sorted(self._ready_peers)}"
                                    f", command publisher matched: {matched}); start them, or fix ready_peers")
            self.publish_clock(self.sim.tick)
            executor.spin_once(timeout_sec=0.05)

    def run_lockstep(self, executor) -> None:
        self.wait_for_peers(executor)
        self.stats.started_wall = time.monotonic()
        timeout = self.params["lockstep_command_timeout_s"]
        while shutdown.ok() and not self._done():
            self._run_pending_ops()
            self._run_scheduled_pushes()
            if not self._may_tick():
                executor.spin_once(timeout_sec=0.05)
                continue
            k = self.sim.tick
            stamp = ticks.stamp_from_tick(k)
            self._command_for_tick = None
            self.publish_clock(k)
            self.publish_state(stamp)
            command = self._wait_for_command(executor, timeout)
            if command is None:
                self.stats.command_timeouts += 1
                self.get_logger().error(
                    f"lockstep: no joint_command stamped for tick {k} within {timeout} s: damping this tick; "
                    "this run is no longer deterministic (a peer is stuck or too slow)")
                self.sim.damp()
            else:
                self._apply(command)
            self._count_damping(command)
            self.sim.step_tick()

    def _wait_for_command(self, executor, timeout_s: float) -> JointCommand | None:
        deadline = time.monotonic() + timeout_s
        while self._command_for_tick is None and shutdown.ok():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            executor.spin_once(timeout_sec=remaining)
        return self._command_for_tick

    def run_realtime(self, executor) -> None:
        """Absolute-deadline loop at the profile's physics rate (drivers_500hz: 500 Hz); publishes at the end
        of every control tick (every ``substeps``-th step)."""
        if self.params["realtime_wait_for_peers"]:
            self.wait_for_peers(executor)
        period_s, substeps = self.sim.profile.timestep_s, self.sim.profile.substeps
        self.stats.started_wall = next_deadline = time.monotonic()
        step_in_tick = 0
        while shutdown.ok() and not self._done():
            self._spin_until(executor, next_deadline)
            now = time.monotonic()
            lateness = now - next_deadline
            self.stats.lateness_s.append(lateness)
            if lateness > 0.1:  # starved (e.g. a debugger): do not try to catch up a burst of steps
                self.stats.overruns += 1
                next_deadline = now
            next_deadline += period_s
            if step_in_tick == 0:
                self._run_pending_ops()
                self._run_scheduled_pushes()
                if not self._may_tick():
                    continue
            self._check_command_timeout(time.monotonic())
            self.sim.step_physics()
            step_in_tick += 1
            if step_in_tick == substeps:
                step_in_tick = 0
                self.sim.finish_tick()
                self.publish_state(self.get_clock().now().to_msg())

    @staticmethod
    def _spin_until(executor, deadline: float) -> None:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            executor.spin_once(timeout_sec=remaining)

    # --- summary -------------------------------------------------------------------------------------

    def summary(self) -> dict:
        wall = time.monotonic() - self.stats.started_wall if self.stats.started_wall else 0.0
        sim_s = self.sim.tick * robot.CONTROL_PERIOD_S
        lateness_ms = np.array(self.stats.lateness_s) * 1e3
        out = {
            "mode": self.mode, "physics_profile": self.sim.profile.name, "ticks": self.sim.tick, "sim_time_s": sim_s, "wall_s": wall,
            "real_time_factor": sim_s / wall if wall > 0 else None,
            "state_sha256": hashlib.sha256(self.sim.state_bytes()).hexdigest(),
            "joint_positions": self.sim.joint_positions.tolist(),
            "pelvis_height_m": float(self.sim.data.qpos[2]),
            "command_timeouts": self.stats.command_timeouts,
            "rejected_commands": self.stats.rejected_commands,
            "deterministic": self.mode == "lockstep" and self.stats.command_timeouts == 0,
            "ended_by": (self._end or self.end_reason())[0], "end_reason": (self._end or self.end_reason())[1],
        }
        if lateness_ms.size:
            out.update(step_lateness_ms_p50=float(np.percentile(lateness_ms, 50)),
                       step_lateness_ms_p99=float(np.percentile(lateness_ms, 99)),
                       step_lateness_ms_max=float(lateness_ms.max()), overruns=self.stats.overruns)
        return out

    def write_summary(self, error: str | None = None) -> None:
        self._end = self.end_reason(error)
        summary = self.summary()
        self.get_logger().info(
            f"stopped at tick {summary['ticks']} ({summary['sim_time_s']:.2f} s sim, "
            f"RTF {summary['real_time_factor'] or 0:.2f}), pelvis {summary['pelvis_height_m']:.3f} m, "
            f"command timeouts {summary['command_timeouts']}, state sha256 {summary['state_sha256'][:16]}; "
            f"ended by {summary['end_reason']}")
        if self.params["final_state_file"]:
            Path(self.params["final_state_file"]).write_text(json.dumps(summary, indent=1))


def _vector3(v) -> Vector3:
    x, y, z = np.asarray(v, dtype=float).tolist()
    return Vector3(x=x, y=y, z=z)


def make_executor(kind: str):
    """EventsExecutor by default: its spin_once(timeout) loop was 1.6-2.7x faster than the
    SingleThreadedExecutor in the measured lockstep graphs (shared docs); bench/sim_rtf.py compares."""
    if kind == "events":
        return EventsExecutor()
    if kind == "single_threaded":
        return SingleThreadedExecutor()
    raise ValueError(f"parameter executor={kind!r}: use 'events' or 'single_threaded'")


def main(args=None) -> int:
    shutdown.init(args)
    node = None
    code = 0
    error = None
    try:
        node = SimNode()
        executor = make_executor(node.params["executor"])
        executor.add_node(node)
        (node.run_lockstep if node.mode == "lockstep" else node.run_realtime)(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RCLError as exc:
        if not interrupted(exc):
            error = f"{type(exc).__name__}: {exc}"
            raise
    except (LockstepError, ValueError) as exc:
        (node.get_logger() if node else rclpy.logging.get_logger("g1_sim")).error(str(exc))
        code, error = 1, str(exc)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if node is not None:
            node.write_summary(error)
            if rclpy.ok():
                node.flush_publishers()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
