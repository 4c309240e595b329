"""The safety state machine and the command sanitiser: plain Python, no ROS.

::

               set_mode stand / auto_stand            ramp done + motion playing (auto_track)
    PASSIVE ------------------------------> STAND --------------------------------> TRACK
    (damping)                              (ramp measured -> default,               (ramp into the
       ^                                    2.5 s, STAND gains, then hold)           reference, then
       |  set_mode passive                      ^                                    the controller)
       +-------------------- any mode           | set_mode stand                        |
                                                |                                       | clip end (HOLD_END/STOPPED),
    DAMP <---- e-stop, NaN/inf, fall,       HOLD <--------------------------------------+ state > 50 ms, ref > 150 ms,
    (damping)  state > 500 ms, controller   (last target, STAND gains)  -- new motion + auto_track --> TRACK
               output non-finite, reference                                   reference IDLE, implausible
               IDLE/lost > 1 s in HOLD                                         controller output (latched)

DAMP is left only by request (set_mode passive or stand) and never while the e-stop is pressed.
Whatever any mode or controller produces goes through :func:`sanitize_command` before it is sent.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from g1_description import robot
from g1_tracker_policy.contract import KD_MAX, KP_MAX
from g1_tracker_policy.controllers import ControllerOutput

# Reference window states (mirror g1_interfaces/ReferenceWindow STATE_*; no ROS import here).
REF_IDLE, REF_BLEND_IN, REF_PLAYING, REF_HOLD_END, REF_STOPPED = 0, 1, 2, 3, 4
_REF_STATE_NAMES = {REF_IDLE: "IDLE", REF_BLEND_IN: "BLEND_IN", REF_PLAYING: "PLAYING", REF_HOLD_END: "HOLD_END",
                    REF_STOPPED: "STOPPED"}


class Mode(enum.IntEnum):
    """Values match g1_interfaces/TrackingStatus MODE_*."""

    PASSIVE = 0
    STAND = 1
    TRACK = 2
    HOLD = 3
    DAMP = 4


class Watchdog(enum.IntEnum):
    """Values match g1_interfaces/TrackingStatus WATCHDOG_*."""

    OK = 0
    STATE_LATE = 1
    STATE_LOST = 2
    REFERENCE_LATE = 3
    NONFINITE = 4
    FALL = 5
    ESTOP = 6
    REFERENCE_LOST = 7
    CONTROLLER_FAULT = 8


class Source(enum.IntEnum):
    """Values match g1_interfaces/JointCommand SOURCE_*."""

    POLICY = 0
    BASELINE = 1
    SAFETY = 2


@dataclass
class SafetyConfig:
    stand_ramp_s: float = 2.5          # measured pose -> default pose
    track_ramp_s: float = 1.0          # hold pose -> reference's first frame ...
    track_ramp_skip_rad: float = 0.1   # ... unless that frame is this close to the measured pose (every joint)
    state_late_s: float = 0.050        # joint state/IMU older than this -> HOLD
    state_lost_s: float = 0.500        # ... older than this -> DAMP
    reference_late_s: float = 0.150    # reference older than this (while tracking) -> HOLD
    reference_lost_s: float = 1.0      # ... and still missing this long (holding after TRACK) -> DAMP
    fall_tilt_rad: float = 1.0         # |roll| or |pitch| beyond this -> DAMP
    fall_height_drop_m: float = 0.35   # base this far below the reference root height -> DAMP (if known)
    auto_stand: bool = False           # PASSIVE -> STAND as soon as fresh joint states arrive (once)
    auto_track: bool = False           # STAND (ramp done) / HOLD -> TRACK when a motion starts playing
    position_margin_rad: float = 0.0   # keep targets this far inside the joint limits
    # Controller output plausibility (TRACK): beyond any of these the output is a controller fault -> HOLD of
    # the last sane target in the same tick (<= 0 switches a check off). Defaults: about twice the worst the
    # two-clip policy then shipped (policies/squat_handsup.onnx) produced over 7 G1-Moves/default clips through
    # g1 track, falls included (1.79, 0.33, 0.75 rad; 0.47, 0.105, 0.37 before any fall):
    # bench/action_plausibility.py --policy, README.
    action_max_beyond_limits_rad: float = 3.5  # raw target outside the joint range by more than this
    action_max_step_rad: float = 1.3   # per tick, per joint: min(|target change|, |change of target - reference|)
    action_max_offset_rad: float = 2.5  # per joint: min(|target - reference next frame|, |target - measured|)
    # The three limits above are in rad at STAND gains, where they were measured. What a target error does
    # to the robot is kp * error of torque, so for a controller commanding lower gains each joint's limits
    # scale by STAND_KP / kp (>= 1): the same torque a STAND-gain controller may ask for. Low-gain trackers
    # (mjlab/BeyondMimic exports and students in their action space, kp 14-99) step targets 1.3-2.4 rad in a
    # tick and put ankle targets 4 rad outside the range as a matter of course (G1-Moves experts and their
    # students through g1 track: 56-114 Nm, what 0.4-0.7 rad asks at STAND gains); the unscaled limits held
    # them and they fell. A 1e6 target is still far beyond any scaled limit. False: rad limits for all gains.
    action_limits_scale_with_gains: bool = True


@dataclass
class TickInputs:
    """Everything the state machine looks at in one tick. Times in seconds on the node's clock."""

    now_s: float
    joint_pos: np.ndarray | None = None
    joint_vel: np.ndarray | None = None
    state_time_s: float | None = None      # when the joint state (and IMU) was taken / received
    base_quat_wxyz: np.ndarray | None = None
    window: object | None = None           # motion_server ReferenceWindowData
    reference_time_s: float | None = None
    estop: bool = False
    input_fault: str = ""                  # a NaN/inf/malformed input seen since the last tick
    reference_error: str = ""              # the reference cannot be used (e.g. offsets the policy does not know)
    base_height_m: float | None = None     # from a state estimator, if the robot has one
    position_time_s: float | None = None   # when the robot's world position (odometry) came; None: none


@dataclass
class Command:
    position: np.ndarray
    velocity: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    effort: np.ndarray
    source: Source


@dataclass
class TickResult:
    command: Command
    mode: Mode
    watchdog: Watchdog
    detail: str
    ran_controller: bool = False
    controller_output: ControllerOutput | None = None
    sanitized: list[str] = field(default_factory=list)


# --- sanitiser --------------------------------------------------------------------------------------

_ZERO = np.zeros(robot.NUM_JOINTS)


def damping_command() -> Command:
    return Command(position=np.asarray(robot.DEFAULT_JOINT_POS, dtype=np.float64).copy(), velocity=_ZERO.copy(),
                   kp=_ZERO.copy(), kd=np.asarray(robot.DAMPING_KD, dtype=np.float64).copy(), effort=_ZERO.copy(),
                   source=Source.SAFETY)


def _bounds(margin_rad: float) -> tuple[np.ndarray, np.ndarray]:
    """(5, 29) lower/upper bounds of (position, kp, kd, velocity, effort): the sanitiser's fast path."""
    lo = np.stack([robot.JOINT_LOWER + margin_rad, _ZERO, _ZERO, -robot.VELOCITY_LIMIT, -robot.EFFORT_LIMIT])
    hi = np.stack([robot.JOINT_UPPER - margin_rad, KP_MAX, KD_MAX, robot.VELOCITY_LIMIT, robot.EFFORT_LIMIT])
    return lo, hi


_BOUNDS: dict[float, tuple[np.ndarray, np.ndarray]] = {}


def sanitize_command(cmd: Command, fallback_position: np.ndarray | None = None,
                     margin_rad: float = 0.0) -> tuple[Command, list[str]]:
    """Return a command that is finite, inside the joint limits and with bounded gains, plus what was
    fixed. Non-finite position targets become the fallback (measured pose) or the default pose with
    kp = 0 for that joint, so a broken target never pulls; non-finite gains become damping."""
    # Fast path (every tick): one comparison of all five vectors against their bounds. NaN compares
    # False, so anything non-finite, out of range or misshapen takes the detailed path below.
    try:
        stacked = np.array((cmd.position, cmd.kp, cmd.kd, cmd.velocity, cmd.effort), dtype=np.float64)
    except ValueError:
        stacked = None
    if stacked is not None and stacked.shape == (5, robot.NUM_JOINTS):
        bounds = _BOUNDS.get(margin_rad) or _BOUNDS.setdefault(margin_rad, _bounds(margin_rad))
        if ((stacked >= bounds[0]) & (stacked <= bounds[1])).all():
            return Command(stacked[0], stacked[3], stacked[1], stacked[2], stacked[4], cmd.source), []
    fixes: list[str] = []
    lo, hi = robot.JOINT_LOWER + margin_rad, robot.JOINT_UPPER - margin_rad
    pos = np.array(cmd.position, dtype=np.float64, copy=True).reshape(-1)
    kp = np.array(cmd.kp, dtype=np.float64, copy=True).reshape(-1)
    kd = np.array(cmd.kd, dtype=np.float64, copy=True).reshape(-1)
    vel = np.array(cmd.velocity, dtype=np.float64, copy=True).reshape(-1)
    eff = np.array(cmd.effort, dtype=np.float64, copy=True).reshape(-1)
    if not all(a.shape == (robot.NUM_JOINTS,) for a in (pos, kp, kd, vel, eff)):
        return damping_command(), ["wrong command shape -> damping"]
    bad_pos = ~np.isfinite(pos)
    if bad_pos.any():
        fb = fallback_position if fallback_position is not None and np.all(np.isfinite(fallback_position)) \
            else robot.DEFAULT_JOINT_POS
        pos[bad_pos] = np.asarray(fb)[bad_pos]
        kp[bad_pos] = 0.0
        fixes.append(f"non-finite position target on {int(bad_pos.sum())} joints")
    for name, arr, hi_gain, fill in (("kp", kp, KP_MAX, 0.0), ("kd", kd, KD_MAX, None)):
        bad = ~np.isfinite(arr)
        if bad.any():
            arr[bad] = robot.DAMPING_KD[bad] if fill is None else fill
            fixes.append(f"non-finite {name} on {int(bad.sum())} joints")
        over = (arr < 0) | (arr > hi_gain)
        if over.any():
            np.clip(arr, 0.0, hi_gain, out=arr)
            fixes.append(f"{name} outside [0, max] on {int(over.sum())} joints")
    out_of_range = (pos < lo) | (pos > hi)
    if out_of_range.any():
        np.clip(pos, lo, hi, out=pos)
        fixes.append(f"position target outside joint limits on {int(out_of_range.sum())} joints")
    for name, arr, lim in (("velocity", vel, robot.VELOCITY_LIMIT), ("effort", eff, robot.EFFORT_LIMIT)):
        bad = ~np.isfinite(arr)
        if bad.any():
            arr[bad] = 0.0
            fixes.append(f"non-finite {name} on {int(bad.sum())} joints")
        if np.any(np.abs(arr) > lim):
            np.clip(arr, -lim, lim, out=arr)
            fixes.append(f"{name} beyond limits")
    return Command(pos, vel, kp, kd, eff, cmd.source), fixes


# --- helpers ---------------------------------------------------------------------------------------

def tilt_rad(quat_wxyz: np.ndarray) -> tuple[float, float]:
    w, x, y, z = (float(v) for v in quat_wxyz)
    roll = math.atan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = math.asin(max(-1.0, min(1.0, 2 * (w * y - z * x))))
    return roll, pitch


def smoothstep(alpha: float) -> float:
    """0..1 with zero slope at both ends: a ramp that starts and ends without a velocity jump."""
    a = min(max(alpha, 0.0), 1.0)
    return a * a * (3.0 - 2.0 * a)


def _all_finite(*arrays) -> bool:
    return all(a is None or bool(np.all(np.isfinite(a))) for a in arrays)


# --- the state machine ----------------------------------------------------------------------------

class SafetyStateMachine:
    """Decides, every tick, who commands the robot and with what; see the module docstring."""

    def __init__(self, config: SafetyConfig | None = None, controller_name: str = "none",
                 controller_is_baseline: bool = False):
        self.cfg = config or SafetyConfig()
        self.mode = Mode.PASSIVE
        self.watchdog = Watchdog.OK
        self.detail = "start-up"
        self.controller_name = controller_name
        self.controller_is_baseline = controller_is_baseline
        self.has_controller = True
        #: the controller observes the robot's world position (odometry): TRACK needs a fresh one
        self.needs_position = False
        self._pending: str | None = None
        self._ramp_start_s = 0.0
        self._track_ramp_s = self.cfg.track_ramp_s
        self._ramp_from: np.ndarray | None = None
        self._last_target = np.asarray(robot.DEFAULT_JOINT_POS, dtype=np.float64).copy()
        self._auto_stand_done = False
        self._motion_name: str | None = None     # the motion being tracked
        self._next_motion_armed = False          # in HOLD: a non-playing reference was seen since
        self._hold_after_track = False
        self._controller_fault = False           # latched until a set_mode request: no automatic re-TRACK
        self._idle_hold_since_s: float | None = None  # HOLD because the reference went IDLE while tracking
        self._prev_reference: np.ndarray | None = None  # last tick's reference next frame (rate check)
        self.on_track_start: Callable[[], None] | None = None  # reset the controller's state

    # --- requests -------------------------------------------------------------------------------
    def request(self, mode: str, inputs: TickInputs | None = None) -> tuple[bool, str]:
        """Validate a mode request now (for the service reply); it takes effect on the next tick."""
        mode = mode.strip().lower()
        if mode not in ("passive", "stand", "track", "damp"):
            return False, f"unknown mode {mode!r}: use passive, stand, track or damp"
        if mode in ("stand", "track") and inputs is not None:
            if inputs.estop:
                return False, "e-stop is pressed: release it first"
            ok, why = self._can_enter(mode, inputs)
            if not ok:
                return False, why
        self._pending = mode
        return True, f"{mode} accepted"

    def _state_fresh(self, inp: TickInputs) -> bool:
        return (inp.joint_pos is not None and inp.state_time_s is not None
                and inp.now_s - inp.state_time_s <= self.cfg.state_late_s)

    def _reference_fresh(self, inp: TickInputs) -> bool:
        return (not inp.reference_error and inp.window is not None and inp.reference_time_s is not None
                and inp.now_s - inp.reference_time_s <= self.cfg.reference_late_s)

    def _position_fresh(self, inp: TickInputs) -> bool:
        return not self.needs_position or (inp.position_time_s is not None
                                           and inp.now_s - inp.position_time_s <= self.cfg.state_late_s)

    def _position_problem(self, inp: TickInputs) -> str:
        age = "none received" if inp.position_time_s is None else \
            f"the latest is {(inp.now_s - inp.position_time_s) * 1e3:.0f} ms old"
        return (f"{self.controller_name} observes the robot's position (odometry): {age} (need one younger than "
                f"{self.cfg.state_late_s * 1e3:.0f} ms on odom_topic: g1_leg_odometry on a real G1, or your estimator)")

    def _upright(self, inp: TickInputs) -> bool:
        if inp.base_quat_wxyz is None:
            return False
        roll, pitch = tilt_rad(inp.base_quat_wxyz)
        return max(abs(roll), abs(pitch)) < self.cfg.fall_tilt_rad

    def _can_enter(self, mode: str, inp: TickInputs) -> tuple[bool, str]:
        if mode == "track" and not self.has_controller:  # the most fundamental reason first
            return False, f"no controller to track with ({self.controller_name})"
        if not self._state_fresh(inp):
            return False, "no fresh joint state (need one younger than %.0f ms)" % (self.cfg.state_late_s * 1e3)
        if not self._upright(inp):
            return False, "robot is not upright (or no IMU): cannot stand or track"
        if mode == "track":
            if self.mode not in (Mode.STAND, Mode.HOLD, Mode.TRACK):
                return False, f"track needs the robot standing first (mode is {self.mode.name})"
            if self.mode == Mode.STAND and not self._stand_done(inp.now_s):
                return False, "stand ramp still running"
            if inp.reference_error:
                return False, f"reference unusable: {inp.reference_error}"
            if not self._reference_fresh(inp):
                return False, "no fresh reference window"
            if not self._position_fresh(inp):  # else the first policy tick fails and damps the robot
                return False, self._position_problem(inp)
            state = int(inp.window.state)
            if state not in (REF_BLEND_IN, REF_PLAYING):
                return False, (f"no motion playing (reference state {_REF_STATE_NAMES.get(state, state)}): "
                               "start one with play_motion first")
        return True, ""

    # --- tick -------------------------------------------------------------------------------------
    def tick(self, inp: TickInputs, run_controller: Callable[[], ControllerOutput] | None) -> TickResult:
        """One control tick: apply watchdogs and requests, then produce the (sanitised) command."""
        self._apply_watchdogs(inp)
        self._apply_requests(inp)
        self._apply_automatic_transitions(inp)

        ran, out = False, None
        if self.mode in (Mode.PASSIVE, Mode.DAMP):
            cmd = damping_command()
        elif self.mode == Mode.STAND:
            cmd = self._pose_command(self._ramp(inp.now_s, self.cfg.stand_ramp_s, robot.DEFAULT_JOINT_POS))
        elif self.mode == Mode.HOLD:
            cmd = self._pose_command(self._last_target)
        else:  # TRACK
            ref_first = np.asarray(inp.window.joint_pos[0], dtype=np.float64)
            if inp.now_s - self._ramp_start_s < self._track_ramp_s:
                cmd = self._pose_command(self._ramp(inp.now_s, self._track_ramp_s, ref_first))
            elif run_controller is None:
                self._fault(Watchdog.NONFINITE, "TRACK without a controller")
                cmd = damping_command()
            else:
                try:
                    out, ran = run_controller(), True
                except Exception as exc:  # noqa: BLE001 - any controller failure must end in damping
                    out = None
                    self._fault(Watchdog.NONFINITE, f"controller {self.controller_name} failed: {exc}")
                    cmd = damping_command()
                if out is None:
                    pass
                elif not _all_finite(out.position, out.kp, out.kd):
                    self._fault(Watchdog.NONFINITE, f"controller {self.controller_name} output NaN/inf")
                    cmd = damping_command()
                elif why := self._implausible(out.position, inp, out.kp):
                    # A finite but implausible output (e.g. 1e6): clipped to the joint limits and sent with
                    # stiff gains it throws the robot over. HOLD the last sane target, in this very tick;
                    # damping would drop a standing robot whose inputs are fine (the fault is the controller's).
                    self._enter_hold(f"controller fault: {self.controller_name} {why}", Watchdog.CONTROLLER_FAULT)
                    self._controller_fault = True
                    cmd = self._pose_command(self._last_target)
                else:
                    src = Source.BASELINE if self.controller_is_baseline else Source.POLICY
                    cmd = Command(out.position, _ZERO.copy(), out.kp, out.kd, _ZERO.copy(), src)

        cmd, fixes = sanitize_command(cmd, inp.joint_pos, self.cfg.position_margin_rad)
        if self.mode not in (Mode.PASSIVE, Mode.DAMP):
            self._last_target = cmd.position.copy()
        self._prev_reference = None if inp.window is None else inp.window.joint_pos[0]
        return TickResult(cmd, self.mode, self.watchdog, self.detail, ran, out, fixes)

    def _implausible(self, target: np.ndarray, inp: TickInputs, kp: np.ndarray | None = None) -> str:
        """Why a finite controller target is not one a sane controller gives ('' if it is plausible).

        Checked per joint: the raw target's distance outside the joint range (magnitude); then, on the
        target clipped to the range (what would be sent), the per-tick change and the distance from the
        reference's next frame / the measured pose. A sane controller either moves smoothly or follows the
        reference (mocap references jump by up to 1.57 rad in a tick), and stays near the reference or the
        robot, so each of the last two takes the smaller of its two distances."""
        c = self.cfg
        t = np.asarray(target, dtype=np.float64)
        scale = np.ones(t.shape)  # per joint: the limits' multiplier (torque-equivalent to STAND gains)
        if c.action_limits_scale_with_gains and kp is not None:
            with np.errstate(divide="ignore"):  # kp = 0: no position torque, any target is harmless
                scale = np.maximum(1.0, np.asarray(robot.STAND_KP, dtype=np.float64) / np.asarray(kp, dtype=np.float64))

        def why(j: int, limit_rad: float) -> str:
            lim = limit_rad * scale[j]
            return f"limit {lim:.3g}" + (f" = {limit_rad:g} x STAND_KP/kp {scale[j]:.3g}" if scale[j] > 1 else "")

        if c.action_max_beyond_limits_rad > 0:
            beyond = np.maximum(t - robot.JOINT_UPPER, robot.JOINT_LOWER - t)
            j = int(np.argmax(beyond / scale))
            if beyond[j] > c.action_max_beyond_limits_rad * scale[j]:
                return (f"target {t[j]:.3g} rad for {robot.JOINT_NAMES[j]} is {beyond[j]:.3g} rad outside its "
                        f"range ({why(j, c.action_max_beyond_limits_rad)})")
        t = np.clip(t, robot.JOINT_LOWER, robot.JOINT_UPPER)
        ref = np.asarray(inp.window.joint_pos[0], dtype=np.float64)
        if c.action_max_step_rad > 0:
            step = np.abs(t - self._last_target)
            if self._prev_reference is not None:
                step = np.minimum(step, np.abs((t - ref) - (self._last_target - self._prev_reference)))
            j = int(np.argmax(step / scale))
            if step[j] > c.action_max_step_rad * scale[j]:
                return (f"target for {robot.JOINT_NAMES[j]} moved {step[j]:.3g} rad per tick beyond the "
                        f"reference's own motion ({why(j, c.action_max_step_rad)})")
        if c.action_max_offset_rad > 0 and inp.joint_pos is not None:
            off = np.minimum(np.abs(t - ref), np.abs(t - np.asarray(inp.joint_pos, dtype=np.float64)))
            j = int(np.argmax(off / scale))
            if off[j] > c.action_max_offset_rad * scale[j]:
                return (f"target for {robot.JOINT_NAMES[j]} is {off[j]:.3g} rad from both the reference and "
                        f"the measured pose ({why(j, c.action_max_offset_rad)})")
        return ""

    def _pose_command(self, target: np.ndarray) -> Command:
        return Command(np.asarray(target, dtype=np.float64), _ZERO.copy(), np.asarray(robot.STAND_KP, dtype=np.float64),
                       np.asarray(robot.STAND_KD, dtype=np.float64), _ZERO.copy(), Source.SAFETY)

    def _ramp(self, now_s: float, duration_s: float, goal: np.ndarray) -> np.ndarray:
        a = smoothstep((now_s - self._ramp_start_s) / duration_s) if duration_s > 0 else 1.0
        return (1.0 - a) * self._ramp_from + a * np.asarray(goal, dtype=np.float64)

    def _stand_done(self, now_s: float) -> bool:
        return self.mode == Mode.STAND and now_s - self._ramp_start_s >= self.cfg.stand_ramp_s

    # --- transitions --------------------------------------------------------------------------------
    def _set(self, mode: Mode, detail: str, watchdog: Watchdog = Watchdog.OK) -> None:
        self.mode, self.detail, self.watchdog = mode, detail, watchdog
        if mode != Mode.HOLD:
            self._idle_hold_since_s = None  # only a HOLD entered on an IDLE reference runs the IDLE timer

    def _fault(self, watchdog: Watchdog, detail: str) -> None:
        self._set(Mode.DAMP, detail, watchdog)
        self._pending = None

    def _enter_stand(self, inp: TickInputs, why: str) -> None:
        self._ramp_from = np.asarray(inp.joint_pos, dtype=np.float64).copy()
        self._ramp_start_s = inp.now_s
        self._hold_after_track = False
        self._set(Mode.STAND, why)

    def _enter_track(self, inp: TickInputs, why: str) -> None:
        # ramp from what we command now (stand/hold target), not from the measured pose: no target jump
        self._ramp_from = self._last_target.copy() if self.mode in (Mode.STAND, Mode.HOLD, Mode.TRACK) \
            else np.asarray(inp.joint_pos, dtype=np.float64).copy()
        self._ramp_start_s = inp.now_s
        # A reference that starts where the robot is (the motion server blends in from the measured pose)
        # needs no ramp: the policy takes over at once, as in training. A jump gets the stiff pose ramp.
        gap = float(np.max(np.abs(np.asarray(inp.window.joint_pos[0], dtype=np.float64) - inp.joint_pos)))
        self._track_ramp_s = 0.0 if gap <= self.cfg.track_ramp_skip_rad else self.cfg.track_ramp_s
        why = (f"{why}; reference starts {gap:.3f} rad from the measured pose: "
               + ("no ramp" if self._track_ramp_s == 0.0 else f"{self._track_ramp_s:.1f} s pose ramp first"))
        self._motion_name = inp.window.motion_name
        self._next_motion_armed = False
        self._hold_after_track = False
        if self.on_track_start is not None:
            self.on_track_start()
        self._set(Mode.TRACK, why)

    def _enter_hold(self, why: str, watchdog: Watchdog = Watchdog.OK) -> None:
        self._hold_after_track = self.mode == Mode.TRACK or self._hold_after_track
        self._next_motion_armed = False
        self._set(Mode.HOLD, why, watchdog)

    def _apply_watchdogs(self, inp: TickInputs) -> None:
        if inp.estop:
            if self.mode != Mode.DAMP or self.watchdog != Watchdog.ESTOP:
                self._fault(Watchdog.ESTOP, "e-stop pressed")
            self._pending = None
            return
        if inp.input_fault or not _all_finite(inp.joint_pos, inp.joint_vel, inp.base_quat_wxyz):
            if self.mode != Mode.DAMP:
                self._fault(Watchdog.NONFINITE, inp.input_fault or "NaN/inf in joint state or IMU")
            return
        if self.mode in (Mode.PASSIVE, Mode.DAMP):
            return
        age = math.inf if inp.state_time_s is None else inp.now_s - inp.state_time_s
        if age > self.cfg.state_lost_s:
            self._fault(Watchdog.STATE_LOST, f"joint state {age * 1e3:.0f} ms old (> {self.cfg.state_lost_s * 1e3:.0f} ms)")
            return
        if inp.base_quat_wxyz is not None:
            roll, pitch = tilt_rad(inp.base_quat_wxyz)
            if max(abs(roll), abs(pitch)) > self.cfg.fall_tilt_rad:
                self._fault(Watchdog.FALL, f"fall: roll {roll:.2f} rad, pitch {pitch:.2f} rad "
                                           f"(limit {self.cfg.fall_tilt_rad:.2f})")
                return
        if inp.base_height_m is not None and inp.window is not None and self.mode == Mode.TRACK:
            drop = float(inp.window.root_pos[0][2]) - inp.base_height_m
            if drop > self.cfg.fall_height_drop_m:
                self._fault(Watchdog.FALL, f"fall: base {drop:.2f} m below the reference")
                return
        if age > self.cfg.state_late_s:
            if self.mode != Mode.HOLD or self.watchdog != Watchdog.STATE_LATE:
                self._enter_hold(f"joint state {age * 1e3:.0f} ms old (> {self.cfg.state_late_s * 1e3:.0f} ms)",
                                 Watchdog.STATE_LATE)
            return
        if self.mode == Mode.HOLD and self._idle_hold_since_s is not None:
            if inp.window is not None and int(inp.window.state) == REF_IDLE:
                idle_s = inp.now_s - self._idle_hold_since_s
                if idle_s > self.cfg.reference_lost_s:
                    self._fault(Watchdog.REFERENCE_LOST, f"reference IDLE for {idle_s * 1e3:.0f} ms after tracking "
                                                         f"(> {self.cfg.reference_lost_s * 1e3:.0f} ms): damping")
                return  # still holding on an IDLE reference: the watchdog stays REFERENCE_LATE
            self._idle_hold_since_s = None  # a reference plays again: an ordinary HOLD from now on
        if self.mode == Mode.HOLD and self._hold_after_track and inp.reference_time_s is not None \
                and inp.now_s - inp.reference_time_s > self.cfg.reference_late_s:
            # Holding a pose taken mid-motion is only safe for a short while (the motion server died or
            # its link is down): then give the robot to damping, as the real driver does without commands.
            ref_age = inp.now_s - inp.reference_time_s
            if ref_age > self.cfg.reference_lost_s:
                self._fault(Watchdog.REFERENCE_LOST, f"reference {ref_age * 1e3:.0f} ms old "
                                                     f"(> {self.cfg.reference_lost_s * 1e3:.0f} ms): damping")
            return  # still holding, still late: the watchdog stays REFERENCE_LATE
        if self.mode == Mode.TRACK and inp.reference_error:
            self._enter_hold(f"reference unusable: {inp.reference_error}", Watchdog.REFERENCE_LATE)
            return
        if self.mode == Mode.TRACK and not self._reference_fresh(inp):
            ref_age = math.inf if inp.reference_time_s is None else inp.now_s - inp.reference_time_s
            self._enter_hold(f"reference {ref_age * 1e3:.0f} ms old (> {self.cfg.reference_late_s * 1e3:.0f} ms)",
                             Watchdog.REFERENCE_LATE)
            return
        if self.mode == Mode.TRACK and not self._position_fresh(inp):
            # never a stale position for the policy; hold the last target (damping drops a robot whose joint
            # state and IMU are fine) and leave it to the operator, as after a controller fault
            self._enter_hold(self._position_problem(inp), Watchdog.STATE_LATE)
            return
        if self.mode == Mode.HOLD and self.watchdog == Watchdog.STATE_LATE and not self._hold_after_track:
            # a late state while standing: the stand pose is safe to resume once the state is fresh
            self._set(Mode.STAND, "joint state fresh again")
            self._ramp_from, self._ramp_start_s = self._last_target.copy(), inp.now_s
        elif self.watchdog != Watchdog.OK and self.mode == Mode.HOLD:
            self.watchdog = Watchdog.OK  # the input recovered; stay in HOLD until asked or a new motion

    def _apply_requests(self, inp: TickInputs) -> None:
        req, self._pending = self._pending, None
        if req is None:
            return
        if req in ("passive", "damp"):
            self._controller_fault = False  # an operator decided: automatic transitions may act again
        if req == "passive":
            self._set(Mode.PASSIVE, "requested")
        elif req == "damp":
            self._set(Mode.DAMP, "requested")
        elif req == "stand":
            ok, why = self._can_enter("stand", inp)
            if ok:
                self._controller_fault = False
                self._enter_stand(inp, "requested")
            else:
                self.detail = f"stand refused: {why}"
        elif req == "track":
            ok, why = self._can_enter("track", inp)
            if ok:
                self._controller_fault = False
                self._enter_track(inp, "requested")
            else:
                self.detail = f"track refused: {why}"

    def _apply_automatic_transitions(self, inp: TickInputs) -> None:
        if self.cfg.auto_stand and not self._auto_stand_done and self.mode == Mode.PASSIVE:
            if self._can_enter("stand", inp)[0]:
                self._auto_stand_done = True
                self._enter_stand(inp, "auto_stand")
        if inp.window is None:
            return
        state = int(inp.window.state)
        playing = state in (REF_BLEND_IN, REF_PLAYING)
        if self.mode == Mode.TRACK:
            if state == REF_IDLE:  # e.g. motion_server restarted or reset: never track an IDLE reference
                self._enter_hold("reference went IDLE while tracking (motion server reset or restarted?): "
                                 "holding, damping if it stays IDLE", Watchdog.REFERENCE_LATE)
                self._idle_hold_since_s = inp.now_s
                return
            # clip end only counts after the entry ramp: a HOLD_END window during the ramp is the tail
            # of the previous motion, not the end of this one
            if inp.now_s - self._ramp_start_s >= self._track_ramp_s and state in (REF_HOLD_END, REF_STOPPED):
                self._enter_hold("clip end" if state == REF_HOLD_END else "motion stopped")
                self._next_motion_armed = True
            elif playing and inp.window.motion_name != self._motion_name:
                # the playlist moved on: a new motion must never attend to the previous clip's context
                self._motion_name = inp.window.motion_name
                if self.on_track_start is not None:
                    self.on_track_start()
            return
        if self.mode == Mode.HOLD and not playing:
            self._next_motion_armed = True  # a play that starts after this is a new motion
        if not self.cfg.auto_track or not playing:
            return
        if self.mode == Mode.STAND and self._stand_done(inp.now_s) and self._can_enter("track", inp)[0]:
            self._enter_track(inp, "auto_track: motion playing")
        elif (self.mode == Mode.HOLD and self.watchdog == Watchdog.OK and self._next_motion_armed
              and not self._controller_fault and self._can_enter("track", inp)[0]):
            self._enter_track(inp, "auto_track: new motion")
