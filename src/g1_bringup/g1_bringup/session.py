"""Watch a scripted tracking run to its end: progress, events, fault injection.

The graph scripts itself (the policy starts standing and tracks as soon as the motion server's
autoplay starts the clip), so this node only watches ``tracking_status`` and ``reference_window`` and,
for robustness tests, kills a node at a given clip time (pushes are scheduled in the simulator).
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import rclpy
from rclpy.node import Node

from g1_common import shutdown, topics
from g1_interfaces.msg import TrackingStatus
from g1_tracker_policy.safety import Mode

from .evaluation import mode_name
from std_msgs.msg import String



#: the robot's processes: when one exits the run is over (the graph has nothing left to control)
HARDWARE_NODES = ("g1_sim", "g1_driver")
#: wall seconds without a tracking status whose stamp advanced before a run is declared stuck. A lockstep
#: tick may legitimately wait lockstep_command_timeout_s (2 s) for a command; after an injected kill the
#: graph is expected to go quiet sooner, and that is an observation, not a failure.
STALL_TIMEOUT_S = 15.0
STALL_AFTER_KILL_S = 5.0


class SessionError(RuntimeError):
    pass


def describe_exit(code: int | None) -> str:
    """'exit code 1', 'killed by SIGKILL', 'exited 0'."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}" if code else "exited 0"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _stamp_ns(msg) -> int:
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _raise_if_interrupted() -> None:
    """Ctrl-C as KeyboardInterrupt, raised here between spins: raised by the default handler inside
    rclpy's take it would come out as a pybind11 RuntimeError (see g1_common.shutdown)."""
    if shutdown.requested():
        raise KeyboardInterrupt


class TrackSession:
    NAME = "g1_track"

    def __init__(self, realtime: bool = False):
        """``realtime``: stamps are wall-clock times (real-time simulation, the robot); run times are
        then counted from the first status. In lockstep they are sim times from t = 0 already."""
        self._origin_s: float | None = None if realtime else 0.0
        if not rclpy.ok():
            if threading.current_thread() is threading.main_thread():
                shutdown.init()  # Ctrl-C sets a flag that the loops below turn into KeyboardInterrupt
            else:
                rclpy.init()
        self.node = Node(self.NAME)
        # Only the small status message: the clip time is in it, and deserialising every 13 kB reference
        # window here would cost a third of a core in lockstep.
        self.status: TrackingStatus | None = None
        self.events: list[dict] = []
        self._last_mode = None
        self._progress_wall = time.monotonic()  # wall time of the last status whose stamp advanced
        self._status_sub = self.node.create_subscription(TrackingStatus, topics.TRACKING_STATUS, self._on_status,
                                                         topics.CONTROL_QOS)
        # A lockstep peer: the simulator starts only once this monitor hears the status (else a fast run
        # could be over before discovery completes).
        self._ready_pub = self.node.create_publisher(String, topics.READY, topics.LATCHED_QOS)
        self._ready_sent = False
        # EventsExecutor: a status message at 50 Hz x the lockstep speed-up through the default wait-set
        # executor cost ~14 % of a core (measured), CPU the simulation's critical path needs
        from rclpy.experimental import EventsExecutor

        self._executor = EventsExecutor()
        self._executor.add_node(self.node)

    def graph_already_running(self, wait_s: float = 2.0, confirm_s: float = 5.0) -> list[str]:
        """Call before this run's graph starts: the topics on which another graph on this DDS domain is
        publishing right now (its joint states or tracking status), else []. Two graphs on one domain take
        each other's messages - in lockstep both runs are corrupted, on a robot two controllers command
        it - so such a run must not start. Only messages count: a graph that died leaves its endpoints
        in discovery for up to a lease duration, but sends nothing. Listens ``wait_s``; if by then a
        publisher on those topics is known but nothing arrived yet (a loaded machine), up to ``confirm_s`` more."""
        from rclpy.qos import QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import JointState

        heard: set[str] = set()
        probe = self.node.create_subscription(
            JointState, topics.JOINT_STATES, lambda _msg: heard.add(topics.JOINT_STATES),
            QoSProfile(depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        def listen(seconds: float) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not heard and self.status is None:
                self._executor.spin_once(timeout_sec=0.05)
                _raise_if_interrupted()

        try:
            listen(wait_s)
            if not heard and self.status is None and any(
                    self.node.count_publishers(t) for t in (topics.JOINT_STATES, topics.TRACKING_STATUS)):
                listen(confirm_s)  # endpoints known: a live graph sends within a few ticks, a dead one never
        finally:
            self.node.destroy_subscription(probe)
        if self.status is not None:
            heard.add(topics.TRACKING_STATUS)
        self.status, self._last_mode, self.events = None, None, []
        return sorted(heard)

    # --- subscriptions ---
    def _on_status(self, msg: TrackingStatus):
        previous = self.status
        if previous is None or _stamp_ns(msg) > _stamp_ns(previous):
            self._progress_wall = time.monotonic()
        self.status = msg
        if msg.mode != self._last_mode:
            self._event(f"mode -> {mode_name(msg.mode)}"
                        + (f" ({msg.watchdog_detail})" if msg.watchdog_detail else ""))
            self._last_mode = msg.mode

    def sim_time_s(self) -> float:
        """Run time of the latest status: sim time in lockstep, seconds since the first status in real time."""
        if self.status is None:
            return 0.0
        stamp_s = self.status.header.stamp.sec + self.status.header.stamp.nanosec * 1e-9
        if self._origin_s is None:
            self._origin_s = stamp_s
        return stamp_s - self._origin_s

    def _event(self, text: str):
        self.events.append({"t_s": round(self.sim_time_s(), 3), "event": text})

    # --- helpers ---
    def _spin_until(self, predicate, timeout_wall_s: float, procs=None, what: str = "") -> bool:
        deadline = time.monotonic() + timeout_wall_s
        while time.monotonic() < deadline:
            self._executor.spin_once(timeout_sec=0.02)
            _raise_if_interrupted()
            if not self._ready_sent and self._status_sub.get_publisher_count() > 0:
                self._ready_pub.publish(String(data=self.NAME))
                self._ready_sent = True
            if predicate():
                return True
            if procs is not None:
                dead = procs.dead_required()
                if dead:
                    tail = "".join(dead[0].log_tail[-15:])
                    raise SessionError(f"{dead[0].name} exited with code {dead[0].popen.returncode} while "
                                       f"waiting for {what}:\n{tail}")
        return False

    def _inject(self, fault: dict, procs) -> None:
        if fault["kind"] == "kill":
            victims = [p for p in procs.procs if p.name == fault["node"]]
            if not victims:
                raise SessionError(f"--inject kill: no node named {fault['node']!r} "
                                   f"(running: {[p.name for p in procs.procs]})")
            import os
            import signal

            os.killpg(victims[0].popen.pid, signal.SIGKILL)
            victims[0].required = False  # an injected death is observed, not a reason to abort
            self._event(f"injected kill of {fault['node']}")

    def run(self, procs, motion: str, clip_s: float, limit_s: float, show_progress: bool = True,
            injections: list | None = None, sim_ends_run: bool = False, sim_summary: Path | None = None) -> dict:
        """Watch the run to its end. Returns ``outcome`` (what ended the run, in words), ``failed`` (the
        run could not end as planned: the simulator or driver died, a required node died, the graph
        stalled), the events and the run time. ``sim_summary``: the simulator's final-state file, which
        says why it stopped. Events are kept in ``self.events`` as they happen (Ctrl-C keeps them)."""
        from tqdm import tqdm

        if not self._spin_until(lambda: self.status is not None, 120.0, procs, "the first tracking status"):
            raise SessionError("no tracking status within 120 s: the graph did not start (see logs/)")

        bar = tqdm(total=round(clip_s, 2), unit="s clip", disable=not show_progress, leave=True,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s clip [{elapsed}<{remaining}]")
        hold_since, damp_since, died, died_at = None, None, None, None
        pending = sorted(injections or [], key=lambda f: f["at_s"])
        injected_kill_at, killed = None, None
        outcome, failed = "limit", False
        self._progress_wall = time.monotonic()
        try:
            while True:
                self._executor.spin_once(timeout_sec=0.02)
                _raise_if_interrupted()
                now = self.sim_time_s()
                playing = self.status is not None and self.status.active_motion == motion
                if playing:
                    progress = min(round(self.status.clip_time_s, 1), bar.total)
                    if progress > bar.n:
                        bar.update(progress - bar.n)  # tqdm rate-limits the redraws itself
                clip_t = self.status.clip_time_s if playing else 0.0
                while pending and clip_t >= pending[0]["at_s"]:
                    fault = pending.pop(0)
                    self._inject(fault, procs)
                    if fault["kind"] == "kill":
                        injected_kill_at, killed = now, fault["node"]
                if injected_kill_at is not None and now - injected_kill_at >= 3.0:
                    outcome = f"observed 3 s after the injected kill of {killed}"
                    break
                # the robot (simulator or driver) exited: the run cannot go on, whoever stopped it
                hardware = next((p for p in procs.procs if p.name in HARDWARE_NODES and p.popen.poll() is not None),
                                None)
                if hardware is not None:
                    outcome, failed = self._hardware_ended(hardware, sim_summary, killed == hardware.name)
                    # let the last messages arrive (real time: the policy's reaction to the lost state)
                    self._spin_until(lambda: False, 0.5 if not failed else 2.0)
                    break
                # The lockstep simulator ends a scripted run itself (duration, or 1 s of damping), which keeps
                # the end deterministic; otherwise (real time, the robot) this monitor ends it.
                if (not sim_ends_run and self.status is not None and self.status.mode == Mode.HOLD
                        and clip_t >= clip_s - 0.05):
                    hold_since = hold_since if hold_since is not None else now
                    if now - hold_since >= 1.0:
                        outcome = "clip ended"
                        break
                if not sim_ends_run and self.status is not None and self.status.mode == Mode.DAMP:  # after a fault
                    damp_since = damp_since if damp_since is not None else now
                    if now - damp_since >= 1.0:
                        outcome = "damping after a fault"
                        break
                elif injected_kill_at is None:
                    damp_since = None
                # the simulator should have stopped by itself at limit_s (real time: counted from its own
                # start, which comes after the first status this monitor counts from)
                if now >= limit_s + (1.0 if sim_ends_run else 5.0):
                    break
                dead = [p for p in procs.dead_required() if p.name not in HARDWARE_NODES]
                if dead and died is None:
                    died, died_at = dead[0], time.monotonic()
                    self._event(f"{died.name} died ({describe_exit(died.popen.returncode)})")
                if died is not None and time.monotonic() - died_at > 8.0:
                    outcome, failed = f"{died.name} died ({describe_exit(died.popen.returncode)})", True
                    break
                # Run time comes from the status stamps: when they stop advancing (the controller or the
                # simulator is gone, a lockstep graph is stuck), time-based ends above never come.
                stalled_s = time.monotonic() - self._progress_wall
                if injected_kill_at is not None and stalled_s > STALL_AFTER_KILL_S:
                    outcome = (f"observed after the injected kill of {killed}: no new tracking status for "
                               f"{stalled_s:.0f} s")
                    break
                if stalled_s > STALL_TIMEOUT_S:
                    outcome, failed = (f"no progress: no new tracking status for {stalled_s:.0f} s "
                                       "(a node is stuck; see logs/)"), True
                    break
        finally:
            bar.close()
        self._event(f"run ended: {outcome}")
        return {"outcome": outcome, "failed": failed, "events": self.events, "sim_time_s": self.sim_time_s()}

    def _hardware_ended(self, proc, sim_summary: Path | None, injected: bool) -> tuple[str, bool]:
        """(outcome, failed) once the simulator/driver process exited: a lockstep simulator that stopped at
        the run's planned end (duration, or damping after a fall) is the normal end; anything else is a
        death of the robot."""
        code = proc.popen.returncode
        summary = _read_json(sim_summary) if proc.name == "g1_sim" and sim_summary else None
        if code == 0 and summary and summary.get("ended_by") in ("duration", "damping"):
            return f"the simulator ended the run: {summary['end_reason']}", False
        why = describe_exit(code) + (f": {summary['end_reason']}" if code == 0 and summary else "")
        self._event(f"{proc.name} died ({why}{', injected' if injected else ''})")
        return f"{proc.name} died ({why}{', injected kill' if injected else ''})", True

    def close(self):
        self._executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown()
