"""The scripted part of a tracking run: stand up, play the motion, watch it to the end.

A small rclpy node in the `g1 track` process talks to the graph only through its public API
(``set_mode``, ``play_motion``, ``tracking_status``, ``reference_window``), exactly like a user would.
"""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node

from g1_common import topics
from g1_interfaces.msg import ReferenceWindow, TrackingStatus
from g1_interfaces.srv import PlayMotion, SetMode

MODE_NAMES = {0: "passive", 1: "stand", 2: "track", 3: "hold", 4: "damp"}
STATE_HOLD_END = ReferenceWindow.STATE_HOLD_END


class SessionError(RuntimeError):
    pass


class TrackSession:
    def __init__(self, use_sim_time: bool = True):
        if not rclpy.ok():
            rclpy.init()
        self.node = Node("g1_track")
        if use_sim_time:
            self.node.set_parameters([rclpy.parameter.Parameter("use_sim_time", value=True)])
        self.status: TrackingStatus | None = None
        self.window: ReferenceWindow | None = None
        self.events: list[dict] = []
        self._last_mode = None
        self.node.create_subscription(TrackingStatus, topics.TRACKING_STATUS, self._on_status, topics.CONTROL_QOS)
        self.node.create_subscription(ReferenceWindow, topics.REFERENCE_WINDOW, self._on_window, topics.CONTROL_QOS)
        self.set_mode_client = self.node.create_client(SetMode, topics.SET_MODE)
        self.play_client = self.node.create_client(PlayMotion, topics.PLAY_MOTION)

    # --- subscriptions ---
    def _on_status(self, msg: TrackingStatus):
        self.status = msg
        if msg.mode != self._last_mode:
            self._event(f"mode -> {MODE_NAMES.get(msg.mode, msg.mode)}"
                        + (f" ({msg.watchdog_detail})" if msg.watchdog_detail else ""))
            self._last_mode = msg.mode

    def _on_window(self, msg: ReferenceWindow):
        self.window = msg

    def sim_time_s(self) -> float:
        if self.status is None:
            return 0.0
        return self.status.header.stamp.sec + self.status.header.stamp.nanosec * 1e-9

    def _event(self, text: str):
        self.events.append({"t_s": round(self.sim_time_s(), 3), "event": text})

    # --- helpers ---
    def _spin_until(self, predicate, timeout_wall_s: float, procs=None, what: str = "") -> bool:
        deadline = time.monotonic() + timeout_wall_s
        while time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.02)
            if predicate():
                return True
            if procs is not None:
                dead = procs.dead_required()
                if dead:
                    tail = "".join(dead[0].log_tail[-15:])
                    raise SessionError(f"{dead[0].name} exited with code {dead[0].popen.returncode} while "
                                       f"waiting for {what}:\n{tail}")
        return False

    def _call(self, client, request, what: str, procs):
        if not self._spin_until(client.service_is_ready, 30.0, procs, f"the {what} service"):
            raise SessionError(f"service {client.srv_name} did not appear")
        future = client.call_async(request)
        if not self._spin_until(future.done, 30.0, procs, f"the {what} response"):
            raise SessionError(f"service {client.srv_name} did not answer")
        return future.result()

    # --- the run ---
    def run(self, procs, motion: str, stand_s: float, clip_s: float, limit_s: float,
            show_progress: bool = True) -> dict:
        from tqdm import tqdm

        if not self._spin_until(lambda: self.status is not None, 120.0, procs, "the first tracking status"):
            raise SessionError("no tracking status within 120 s: the graph did not start (see logs/)")
        res = self._call(self.set_mode_client, SetMode.Request(mode="stand"), "set_mode", procs)
        if not res.success:
            raise SessionError(f"set_mode stand refused: {res.message}")
        t_stand = self.sim_time_s()
        self._spin_until(lambda: self.sim_time_s() >= t_stand + stand_s, 600.0, procs, "the stand-up")
        res = self._call(self.play_client, PlayMotion.Request(name=motion, speed=1.0), "play_motion", procs)
        if not res.success:
            raise SessionError(f"play_motion {motion!r} refused: {res.message}")
        self._event(f"play_motion {motion}")
        res = self._call(self.set_mode_client, SetMode.Request(mode="track"), "set_mode", procs)
        if not res.success:
            raise SessionError(f"set_mode track refused: {res.message}")

        bar = tqdm(total=round(clip_s, 2), unit="s clip", disable=not show_progress, leave=True,
                   bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} s clip [{elapsed}<{remaining}]")
        hold_since, damp_since, died, died_at = None, None, None, None
        outcome = "limit"
        try:
            while True:
                rclpy.spin_once(self.node, timeout_sec=0.02)
                now = self.sim_time_s()
                if self.window is not None and self.window.motion_name == motion:
                    progress = min(round(self.window.clip_time_s, 1), bar.total)
                    if progress > bar.n:
                        bar.update(progress - bar.n)  # tqdm rate-limits the redraws itself
                if self.window is not None and self.window.state == STATE_HOLD_END:
                    hold_since = hold_since if hold_since is not None else now
                    if now - hold_since >= 1.0:
                        outcome = "clip ended"
                        break
                if self.status is not None and self.status.mode == 4:  # DAMP: a fault stopped tracking
                    damp_since = damp_since if damp_since is not None else now
                    if now - damp_since >= 1.0:
                        outcome = "damping after a fault"
                        break
                if now >= limit_s:
                    break
                dead = procs.dead_required()
                if dead and died is None:
                    died, died_at = dead[0], time.monotonic()
                    self._event(f"{died.name} died (exit code {died.popen.returncode})")
                if died is not None and time.monotonic() - died_at > 8.0:
                    outcome = f"{died.name} died"
                    break
        finally:
            bar.close()
        self._event(f"run ended: {outcome}")
        return {"outcome": outcome, "events": self.events, "sim_time_s": self.sim_time_s()}

    def close(self):
        self.node.destroy_node()
        rclpy.try_shutdown()
