"""motion_server: publishes the reference window at the control rate (a thin shell over ReferencePlayer).

Timing (docs/lockstep.md):
- real time (``use_sim_time:=false``): its own absolute-deadline 50 Hz loop in a thread (a plain
  sleep-until-deadline loop has ~10x less period jitter here than an rclpy timer), stamped with the
  ROS clock at each deadline.
- lockstep (``use_sim_time:=true``): no loop; each ``joint_states`` stamped t_k produces the window
  stamped t_(k+1), one tick ahead, so it is computed while the policy works on tick k and is already
  there when the state of tick k+1 arrives (the first joint_states also produces the window of its own
  tick). This takes the motion server off the per-tick critical path of the lockstep loop. Says its
  name once on ``g1/ready`` when its inputs (joint_states and /clock) are matched.
- ``autoplay``/``autoplay_at_s`` start a motion ``autoplay_at_s`` after the first joint state (the first
  tick at or after that; in lockstep the first joint state is t = 0, so it is a sim time), which makes
  scripted lockstep runs (``g1 track``) deterministic - no service call races the simulation - and
  gives real-time runs the same stand-up time before the clip whenever the robot comes up.

Re-anchoring needs the robot's x/y/yaw: they come from an odometry topic (``odom_topic``, by default the
simulator's ground truth). On the real robot point it at a state estimator's odometry; with no
odometry the robot is assumed at the origin facing +x.
"""

from __future__ import annotations

import collections
import sys
import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import Point
from nav_msgs.msg import Odometry
from rclpy.exceptions import ParameterUninitializedException
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from g1_common import conversions, shutdown, ticks, topics, window_cdr
from g1_description import robot
from g1_interfaces.msg import ReferenceWindow
from g1_interfaces.srv import ListMotions, PlayMotion, StopMotion

from .library import MotionLibrary, UnknownMotionError
from .motion import MotionFormatError
from .player import END_BEHAVIORS, Pose, ReferencePlayer
from .reference import DEFAULT_FUTURE_OFFSETS, ReferenceWindowData

PARAMETERS = {
    "library": "",                      # "" -> $G1_MOTION_LIBRARY or ~/.local/share/g1_tracker/motions
    "future_offsets": list(DEFAULT_FUTURE_OFFSETS),  # control periods ahead; a policy contract overrides
    "blend_in_s": 2.0,                  # robot pose -> first clip frame
    "end_behavior": "hold",             # hold | default (blend to the default standing pose)
    "end_blend_s": 2.0,                 # duration of blends to a hold pose (end, stop to default)
    "reanchor": True,                   # move the clip to the robot's x/y/yaw at start
    "reanchor_after_blend": False,      # ... and again where the robot stands when the blend-in ends
    "preload": Parameter.Type.STRING_ARRAY,  # motion names to load at start-up
    "rate_hz": robot.CONTROL_RATE_HZ,   # real-time publish rate
    "odom_topic": topics.GROUND_TRUTH_ODOM,  # "" -> no odometry, robot assumed at the origin
    "publish_visualization": True,      # ghost JointState + key-body markers
    "visualization_rate_hz": 10.0,      # RViz needs no 50 Hz; each marker message costs ~0.2 ms
    "autoplay": "",                     # motion to play without a service call ("" = none)
    "autoplay_at_s": 0.0,               # ... this long after the first joint state (lockstep: sim time)
}


class MotionServer(Node):
    def __init__(self):
        super().__init__("motion_server")
        for name, default in PARAMETERS.items():
            self.declare_parameter(name, default)
        p = {name: self._parameter(name) for name in PARAMETERS}
        if p["end_behavior"] not in END_BEHAVIORS:
            raise ValueError(f"parameter end_behavior={p['end_behavior']!r}: expected one of {END_BEHAVIORS}")
        self.lockstep = bool(self.get_parameter("use_sim_time").value)
        self.period_s = 1.0 / float(p["rate_hz"])
        self.publish_visualization = bool(p["publish_visualization"])
        self.visualization_period_ns = int(1e9 / max(float(p["visualization_rate_hz"]), 1e-3))
        self._last_visualization_ns = -(2**62)
        self.library = MotionLibrary(p["library"] or None)
        self.player = ReferencePlayer(tuple(p["future_offsets"]), blend_in_s=p["blend_in_s"],
                                      end_behavior=p["end_behavior"], end_blend_s=p["end_blend_s"],
                                      reanchor=p["reanchor"], reanchor_after_blend=p["reanchor_after_blend"])
        self._lock = threading.Lock()  # player + robot pose: touched by callbacks and the real-time loop
        self._joint_pos = np.array(robot.DEFAULT_JOINT_POS)
        self._odom: collections.deque = collections.deque(maxlen=8)  # (stamp_ns, root_pos, root_quat_wxyz)
        self._sequence = 0
        self._last_stamp_ns = -1
        self._last_state_ns: int | None = None  # lockstep: the newest joint_states stamp accepted
        self._warned: set[str] = set()

        self.pub_window = self.create_publisher(ReferenceWindow, topics.REFERENCE_WINDOW, topics.CONTROL_QOS)
        self.pub_ghost = self.create_publisher(JointState, topics.REFERENCE_JOINT_STATES, topics.VIS_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, topics.REFERENCE_MARKERS, topics.VIS_QOS)
        self.pub_ready = self.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self.sub_joints = self.create_subscription(JointState, topics.JOINT_STATES, self._on_joint_states,
                                                   topics.CONTROL_QOS)
        if p["odom_topic"]:
            self.create_subscription(Odometry, p["odom_topic"], self._on_odom, topics.CONTROL_QOS)
        self.create_service(PlayMotion, topics.PLAY_MOTION, self._on_play)
        self.create_service(StopMotion, topics.STOP_MOTION, self._on_stop)
        self.create_service(ListMotions, topics.LIST_MOTIONS, self._on_list)
        self._preload([n for n in (p["preload"] or []) if n])
        self._autoplay = None  # (motion, delay ns after the first joint state) until it has started
        self._first_state_ns: int | None = None  # when the first joint state arrived (ROS/sim time)
        if p["autoplay"]:
            try:
                self._autoplay = (self.library.load(p["autoplay"]), int(round(float(p["autoplay_at_s"]) * 1e9)))
            except (UnknownMotionError, MotionFormatError, OSError) as exc:
                self.get_logger().error(f"autoplay {p['autoplay']!r}: {exc}; nothing will play by itself")
        self._pose_cutoff_ns: int | None = None  # lockstep: use odometry strictly older than this

        self._stop_event = threading.Event()
        self._thread = None
        # Readiness for the simulator (g1/ready), in both modes. A wall-clock timer: sim-time timers stay
        # silent until the first /clock.
        self._ready_sent = False
        self._ready_timer = self.create_timer(0.05, self._check_ready, clock=rclpy.clock.Clock())
        if not self.lockstep:
            self._thread = threading.Thread(target=self._realtime_loop, name="reference-loop", daemon=True)
            self._thread.start()
        self.get_logger().info(
            f"motion_server: {'lockstep (use_sim_time)' if self.lockstep else f'real time {1 / self.period_s:g} Hz'}"
            f", library {self.library.root} ({len(self.library.names())} motions), odometry "
            f"{p['odom_topic'] or 'none (robot assumed at the origin)'}")

    def _parameter(self, name: str):
        try:
            return self.get_parameter(name).value
        except ParameterUninitializedException:  # a typed parameter declared without a default
            return None

    # --- timing ---
    def _realtime_loop(self) -> None:
        period_ns = int(round(self.period_s * 1e9))
        deadline = time.monotonic_ns()
        while not self._stop_event.is_set():
            deadline += period_ns
            remaining = deadline - time.monotonic_ns()
            if remaining > 0:
                time.sleep(remaining * 1e-9)
            elif -remaining > period_ns:  # overran by more than a tick: skip, do not burst to catch up
                deadline = time.monotonic_ns()
            if not shutdown.ok():
                return
            self.publish_tick(self.get_clock().now().nanoseconds)

    def _check_ready(self) -> None:
        if self._ready_sent:
            return
        clock_matched = not self.lockstep or self.count_publishers("/clock") > 0
        if clock_matched and self.sub_joints.get_publisher_count() > 0:
            self.pub_ready.publish(String(data=self.get_name()))
            self._ready_sent = True
            self._ready_timer.cancel()
            self.get_logger().info(f"joint_states{' and /clock' if self.lockstep else ''} matched: ready")

    # --- inputs ---
    def _on_joint_states(self, msg: JointState) -> None:
        if self.lockstep and not self._stamp_accepted(ticks.stamp_to_ns(msg.header.stamp)):
            return
        try:
            q, _, _ = conversions.joint_state_to_arrays(msg)
        except conversions.MessageError as exc:
            self._warn_once("joint_states", f"ignoring joint_states: {exc}")
            return
        with self._lock:
            self._joint_pos = q
            if self._first_state_ns is None:  # lockstep: the state's stamp (t = 0); real time: our clock
                self._first_state_ns = (ticks.stamp_to_ns(msg.header.stamp) if self.lockstep
                                        else self.get_clock().now().nanoseconds)
        if self.lockstep:
            stamp_ns = ticks.stamp_to_ns(msg.header.stamp)
            # Odometry strictly older than this joint state: whether this tick's odometry arrived before
            # its joint_states is a race, so it must not influence the result (determinism).
            self._pose_cutoff_ns = stamp_ns
            if stamp_ns > self._last_stamp_ns:  # first tick, or a tick we have not published ahead
                self.publish_tick(stamp_ns)
            self.publish_tick(stamp_ns + ticks.CONTROL_PERIOD_NS)

    def _stamp_accepted(self, stamp_ns: int) -> bool:
        """Lockstep: a joint_states stamp that does not fit lockstep time (g1_common.ticks) is refused with
        a log line, so one bad message can neither reset playback to IDLE (a stamp of 0: 'time went back')
        nor jump it ahead. Time going back is accepted only when /clock went back too (a new simulation)."""
        clock_ns = self.get_clock().now().nanoseconds
        problem = ticks.lockstep_stamp_problem(stamp_ns, self._last_state_ns, clock_ns)
        if problem and self._last_state_ns is not None and stamp_ns < self._last_state_ns \
                and clock_ns < self._last_state_ns and not ticks.lockstep_stamp_problem(stamp_ns, None, clock_ns):
            problem = ""  # the simulator's clock restarted: publish_tick resets playback
        if problem:
            self.get_logger().warning(f"joint_states {problem}: rejected (no reference published for it)",
                                      throttle_duration_sec=1.0)
            return False
        self._last_state_ns = stamp_ns
        return True

    def _on_odom(self, msg: Odometry) -> None:
        p, o = msg.pose.pose.position, msg.pose.pose.orientation
        pos, quat = np.array([p.x, p.y, p.z]), np.array([o.w, o.x, o.y, o.z])
        norm = np.linalg.norm(quat)
        if not (np.all(np.isfinite(pos)) and np.isfinite(norm) and norm > 0.5):
            self._warn_once("odom", "ignoring odometry with NaN or a non-unit orientation")
            return
        with self._lock:
            self._odom.append((ticks.stamp_to_ns(msg.header.stamp), pos, quat / norm))

    def _robot_pose(self, stamp_ns: int) -> Pose:
        """The robot pose for tick ``stamp_ns``. In lockstep, odometry strictly older than the tick is used
        so the result does not depend on whether this tick's odometry or joint_states arrived first."""
        cutoff = self._pose_cutoff_ns if self._pose_cutoff_ns is not None else stamp_ns
        odom = [o for o in self._odom if o[0] < cutoff] if self.lockstep else list(self._odom)
        if not odom:
            pose = Pose.default_standing()
            pose.joint_pos = self._joint_pos
            return pose
        _, pos, quat = odom[-1]
        return Pose(self._joint_pos, pos, quat)

    # --- output ---
    def publish_tick(self, stamp_ns: int) -> ReferenceWindowData | None:
        """Compute and publish the window for the tick at ``stamp_ns``. Never raises: a failure is logged
        and the tick is skipped (the policy's reference-age watchdog then holds)."""
        with self._lock:
            if stamp_ns == self._last_stamp_ns:
                return None  # a repeated joint_states: that tick is already published
            if stamp_ns < self._last_stamp_ns:  # e.g. the simulator was reset to t=0
                self.get_logger().warning(f"time went back from {self._last_stamp_ns * 1e-9:.3f} s to "
                                          f"{stamp_ns * 1e-9:.3f} s: playback reset to idle")
                self._reset_player()
            self._last_stamp_ns = stamp_ns
            if (self._autoplay is not None and self._first_state_ns is not None
                    and stamp_ns >= self._first_state_ns + self._autoplay[1]):
                motion, _ = self._autoplay
                self._autoplay = None
                self.player.play(motion)
                self.get_logger().info(f"autoplay: playing {motion.name} ({motion.duration_s:.2f} s) "
                                       f"from t={stamp_ns * 1e-9:.2f} s")
            try:
                self.player.set_robot_pose(self._robot_pose(stamp_ns))
                window = self.player.window(stamp_ns * 1e-9)
                window.validate()
            except Exception as exc:  # noqa: BLE001 - bad data must never stop the reference stream
                self.get_logger().error(f"reference window for t={stamp_ns * 1e-9:.3f} s failed: {exc}; "
                                        "stopping playback", throttle_duration_sec=1.0)
                self._reset_player()
                return None
            sequence = self._sequence
            self._sequence += 1
        stamp = ticks.stamp_from_ns(stamp_ns)
        # the standard CDR bytes of the ReferenceWindow, written with numpy: ~6x cheaper than building
        # the 105 nested message objects and serialising them (g1_common.window_cdr)
        self.pub_window.publish(window_cdr.encode(window, stamp_ns, sequence))
        if self.publish_visualization and stamp_ns - self._last_visualization_ns >= self.visualization_period_ns:
            self._last_visualization_ns = stamp_ns
            self.pub_ghost.publish(conversions.make_joint_state(stamp, window.joint_pos[0], window.joint_vel[0]))
            self.pub_markers.publish(markers(window, stamp))
        return window

    def _reset_player(self) -> None:
        old = self.player
        self.player = ReferencePlayer(old.future_offsets, old.blend_in_s, old.end_behavior, old.end_blend_s,
                                      old.reanchor, kinematics=old.kinematics,
                                      reanchor_after_blend=old.reanchor_after_blend)

    # --- services ---
    def _on_play(self, request: PlayMotion.Request, response: PlayMotion.Response) -> PlayMotion.Response:
        try:
            motion = self.library.load(request.name)
            with self._lock:
                self.player.play(motion, loop=request.loop, speed=float(request.speed) or 1.0,
                                 start_time_s=float(request.start_time_s), enqueue=request.enqueue)
        except (UnknownMotionError, MotionFormatError, ValueError, OSError) as exc:
            return self._refuse(response, f"play_motion {request.name!r}: {exc}")
        except Exception as exc:  # noqa: BLE001 - a bad file must never take the server down
            return self._refuse(response, f"play_motion {request.name!r}: unexpected {type(exc).__name__}: {exc}")
        response.success, response.duration_s = True, motion.duration_s
        response.message = (f"{'queued' if request.enqueue else 'playing'} {motion.name} "
                            f"({motion.duration_s:.2f} s{', loop' if request.loop else ''})")
        self.get_logger().info(response.message)
        return response

    def _refuse(self, response: PlayMotion.Response, message: str) -> PlayMotion.Response:
        response.success, response.message = False, message
        self.get_logger().warning(message)
        return response

    def _on_stop(self, request: StopMotion.Request, response: StopMotion.Response) -> StopMotion.Response:
        with self._lock:
            self.player.stop(blend_to_default=request.blend_to_default)
        response.success = True
        response.message = "stopped: " + ("blending to the default pose" if request.blend_to_default
                                          else "holding the current reference pose")
        return response

    def _on_list(self, request: ListMotions.Request, response: ListMotions.Response) -> ListMotions.Response:
        try:
            entries = self.library.entries()
            names = self.library.names(request.pattern)
        except (MotionFormatError, OSError) as exc:  # a damaged index: answer empty, keep serving
            self.get_logger().error(f"list_motions: {exc}")
            return response
        response.names = names
        response.durations_s = [float(entries[n].duration_s) for n in names]
        response.fps = [float(entries[n].fps) for n in names]
        response.sources = [entries[n].source_file for n in names]
        return response

    def _preload(self, names: list[str]) -> None:
        for name in names:
            try:
                self.library.load(name)
            except Exception as exc:  # noqa: BLE001 - a bad preload entry must not stop the server
                self.get_logger().error(f"preload {name!r}: {exc}")

    def _warn_once(self, key: str, text: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self.get_logger().warning(text)

    def close(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)


_KEY_BODY_COLOR = ColorRGBA(r=0.1, g=0.8, b=0.3, a=0.9)
_ROOT_PATH_COLOR = ColorRGBA(r=0.9, g=0.6, b=0.1, a=0.8)


def markers(window: ReferenceWindowData, stamp) -> MarkerArray:
    """Key bodies of the next frame as spheres, and the root path over the future window as a line."""
    bodies = Marker(ns="reference_key_bodies", id=0, type=Marker.SPHERE_LIST, action=Marker.ADD)
    bodies.scale.x = bodies.scale.y = bodies.scale.z = 0.06
    bodies.color = _KEY_BODY_COLOR
    bodies.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in window.key_body_pos[0]]
    path = Marker(ns="reference_root_path", id=1, type=Marker.LINE_STRIP, action=Marker.ADD)
    path.scale.x = 0.02
    path.color = _ROOT_PATH_COLOR
    path.points = [Point(x=float(x), y=float(y), z=float(z)) for x, y, z in window.root_pos]
    for m in (bodies, path):
        m.header.stamp, m.header.frame_id = stamp, "world"
        m.pose.orientation.w = 1.0
    return MarkerArray(markers=[bodies, path])


def main(args=None) -> int:
    shutdown.init(args)
    node = None
    code = 0
    try:
        node = MotionServer()
        executor = _executor()
        executor.add_node(node)
        shutdown.spin(executor)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except ValueError as exc:  # bad parameters
        rclpy.logging.get_logger("motion_server").error(str(exc))
        code = 1
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code


def _executor():
    # EventsExecutor with a spin_once loop was 1.6-2.7x faster in lockstep here (shared docs);
    # its plain spin() busy-looped, so the loop above drives it.
    try:
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    except ImportError:
        return rclpy.executors.SingleThreadedExecutor()


if __name__ == "__main__":
    sys.exit(main())
