"""The safety state machine (every transition and watchdog) and the command sanitiser."""

import math

import numpy as np
import pytest

from g1_description import robot
from g1_tracker_policy.controllers import ControllerOutput
from g1_tracker_policy.safety import (REF_HOLD_END, REF_IDLE, REF_PLAYING, Command, Mode, SafetyConfig,
                                      SafetyStateMachine, Source, TickInputs, Watchdog, sanitize_command)
from g1_tracker_policy.testing import standing_window

DT = robot.CONTROL_PERIOD_S
Q0 = np.asarray(robot.DEFAULT_JOINT_POS)
UPRIGHT = np.array([1.0, 0.0, 0.0, 0.0])


def within_limits(cmd: Command) -> bool:
    arrays = (cmd.position, cmd.velocity, cmd.kp, cmd.kd, cmd.effort)
    return (all(np.all(np.isfinite(a)) for a in arrays)
            and np.all(cmd.position >= robot.JOINT_LOWER) and np.all(cmd.position <= robot.JOINT_UPPER)
            and np.all(cmd.kp >= 0) and np.all(cmd.kd >= 0))


def is_damping(cmd: Command) -> bool:
    return np.all(cmd.kp == 0) and np.all(cmd.kd > 0)


class Rig:
    """Drives the state machine tick by tick with a fresh standing robot unless told otherwise."""

    def __init__(self, **cfg):
        self.sm = SafetyStateMachine(SafetyConfig(**cfg), "test-controller")
        self.t = 0.0
        self.window = standing_window(state=REF_PLAYING, motion_name="m1")
        self.resets = 0
        self.sm.on_track_start = self._count_reset
        self.controller_target = Q0 + 0.05
        self.controller_kp = np.asarray(robot.KP, dtype=float)

    def _count_reset(self):
        self.resets += 1

    def controller(self):
        return ControllerOutput(self.controller_target.copy(), self.controller_kp, robot.KD, np.zeros(29))

    def inputs(self, **kw) -> TickInputs:
        base = dict(now_s=self.t, joint_pos=Q0.copy(), joint_vel=np.zeros(29), state_time_s=self.t,
                    base_quat_wxyz=UPRIGHT, window=self.window, reference_time_s=self.t)
        base.update(kw)
        return TickInputs(**base)

    def tick(self, n=1, **kw):
        for _ in range(n):
            r = self.sm.tick(self.inputs(**kw), self.controller)
            assert within_limits(r.command)
            self.t += DT
        return r

    def request(self, mode, **kw):
        return self.sm.request(mode, self.inputs(**kw))


def test_passive_stand_track_hold_passive():
    rig = Rig(stand_ramp_s=1.0, track_ramp_s=0.4)
    r = rig.tick()
    assert r.mode == Mode.PASSIVE and is_damping(r.command) and r.command.source == Source.SAFETY
    measured = Q0 + 0.3 * (robot.JOINT_UPPER - Q0)
    assert rig.request("stand", joint_pos=measured)[0]
    r = rig.tick(joint_pos=measured)
    assert r.mode == Mode.STAND
    np.testing.assert_allclose(r.command.position, measured, atol=1e-9)  # ramp starts at the measured pose
    np.testing.assert_array_equal(r.command.kp, robot.STAND_KP)
    ok, why = rig.request("track")
    assert not ok and "ramp" in why
    r = rig.tick(int(1.0 / DT))
    np.testing.assert_allclose(r.command.position, Q0, atol=1e-9)  # ramp done: default pose
    # a reference that starts away from the robot's pose: pose ramp into it first
    rig.window = standing_window(state=REF_PLAYING, motion_name="m1", joint_pos=Q0 + 0.2 * (robot.JOINT_UPPER - Q0))
    assert rig.request("track")[0]
    r = rig.tick()
    assert r.mode == Mode.TRACK and r.command.source == Source.SAFETY and not r.ran_controller and rig.resets == 1
    assert "pose ramp first" in r.detail
    r = rig.tick(int(0.4 / DT))
    assert r.ran_controller and r.command.source == Source.POLICY
    np.testing.assert_allclose(r.command.position, rig.controller_target)
    rig.window = standing_window(state=REF_HOLD_END, motion_name="m1")
    r = rig.tick()
    assert r.mode == Mode.HOLD and r.detail == "clip end" and r.command.source == Source.SAFETY
    np.testing.assert_allclose(r.command.position, rig.controller_target)  # holds the last target
    np.testing.assert_array_equal(r.command.kp, robot.STAND_KP)
    assert rig.request("passive")[0]
    assert rig.tick().mode == Mode.PASSIVE


def test_track_without_ramp_when_the_reference_starts_at_the_measured_pose():
    """motion_server blends in from the measured pose: the controller acts from the first TRACK tick
    (as the policy was trained), with no stiff pose ramp in between."""
    rig = Rig(stand_ramp_s=0.2, track_ramp_s=1.0, track_ramp_skip_rad=0.1)
    assert rig.request("stand")[0]
    rig.tick(15)
    measured = Q0 + 0.05  # e.g. the stand pose sagging under gravity
    rig.window = standing_window(state=REF_PLAYING, motion_name="m1", joint_pos=measured + 0.02)
    assert rig.request("track", joint_pos=measured)[0]
    r = rig.tick(joint_pos=measured)
    assert r.mode == Mode.TRACK and r.ran_controller and r.command.source == Source.POLICY
    assert "no ramp" in r.detail and "0.020 rad" in r.detail


def test_auto_stand_and_auto_track_then_next_motion():
    rig = Rig(stand_ramp_s=0.2, track_ramp_s=0.1, auto_stand=True, auto_track=True)
    rig.window = standing_window(state=REF_IDLE, motion_name="")
    assert rig.tick().mode == Mode.STAND
    assert rig.tick(20).mode == Mode.STAND  # nothing playing: stays standing
    rig.window = standing_window(state=REF_PLAYING, motion_name="m1")
    assert rig.tick().mode == Mode.TRACK
    rig.tick(10)
    rig.window = standing_window(state=REF_HOLD_END, motion_name="m1")
    assert rig.tick().mode == Mode.HOLD
    rig.window = standing_window(state=REF_PLAYING, motion_name="m1")  # the same clip played again
    assert rig.tick().mode == Mode.TRACK and rig.resets == 2


def test_track_refused_without_fresh_reference_or_standing():
    rig = Rig(stand_ramp_s=0.1)
    ok, why = rig.request("track")
    assert not ok and "standing" in why
    rig.request("stand")
    rig.tick(10)
    ok, why = rig.request("track", reference_time_s=rig.t - 0.3)
    assert not ok and "reference" in why
    ok, why = rig.request("track", reference_error="offsets differ")
    assert not ok and "offsets differ" in why
    ok, why = rig.request("stand", base_quat_wxyz=np.array([math.cos(0.7), math.sin(0.7), 0, 0]))
    assert not ok and "upright" in why
    assert not rig.request("dance")[0]


def test_a_policy_observing_position_needs_fresh_odometry_to_track_and_holds_when_it_stops():
    """The robot has no odometry (no state estimator): track was accepted and the policy's first tick
    failed and damped, dropping a standing robot. Now track is refused with the reason, and a position
    that stops mid-clip holds the last target (the joint state and IMU are fine) instead of damping."""
    rig = Rig(stand_ramp_s=0.1, track_ramp_s=0.1)
    rig.sm.needs_position = True
    rig.request("stand")
    rig.tick(6)
    ok, why = rig.request("track")  # no position ever
    assert not ok and "odometry" in why and "none received" in why and "g1_leg_odometry" in why, why
    ok, why = rig.request("track", position_time_s=rig.t - 0.2)
    assert not ok and "200 ms old" in why, why
    rig.tick(3, position_time_s=None)  # a refused request leaves the robot standing
    assert rig.sm.mode == Mode.STAND
    assert rig.request("track", position_time_s=rig.t)[0]
    r = None
    for _ in range(6):
        r = rig.tick(position_time_s=rig.t)
    assert r.mode == Mode.TRACK and r.ran_controller
    last = rig.t - DT
    r = rig.tick(position_time_s=last)  # 20 ms old: still tracking
    assert r.mode == Mode.TRACK and r.ran_controller
    r = rig.tick(2, position_time_s=last)  # 60 ms old (> state_late 50 ms): hold, never a stale position
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.STATE_LATE and "odometry" in r.detail
    assert not r.ran_controller and not is_damping(r.command) and r.command.source == Source.SAFETY
    r = rig.tick(20, position_time_s=None)
    assert r.mode == Mode.HOLD and not is_damping(r.command)


def tracking_rig(**cfg):
    rig = Rig(stand_ramp_s=0.1, track_ramp_s=0.1, **cfg)
    rig.request("stand")
    rig.tick(6)
    assert rig.request("track")[0]
    rig.tick(6)
    assert rig.sm.mode == Mode.TRACK
    return rig


def test_state_late_holds_then_lost_damps():
    rig = tracking_rig()
    last_state = rig.t
    r = rig.tick(state_time_s=last_state)
    assert r.mode == Mode.TRACK
    r = rig.tick(2, state_time_s=last_state)       # 40 ms: still fine
    assert r.mode == Mode.TRACK
    r = rig.tick(state_time_s=last_state)           # 60 ms > 50 ms: hold in this very tick
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.STATE_LATE and r.command.source == Source.SAFETY
    while rig.t - last_state <= 0.5:
        r = rig.tick(state_time_s=last_state)
        assert r.mode == Mode.HOLD
    r = rig.tick(state_time_s=last_state)
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.STATE_LOST and is_damping(r.command)
    assert rig.tick().mode == Mode.DAMP  # fresh state again: damping stays until asked
    assert rig.request("stand")[0] and rig.tick().mode == Mode.STAND


def test_state_late_while_standing_resumes_standing():
    rig = Rig(stand_ramp_s=0.1)
    rig.request("stand")
    rig.tick(3)
    stale = rig.t - 0.07
    assert rig.tick(state_time_s=stale).mode == Mode.HOLD
    assert rig.tick().mode == Mode.STAND


def test_reference_late_holds_and_stays_held():
    rig = tracking_rig()
    last_ref = rig.t
    r = rig.tick(8, reference_time_s=last_ref)   # ages 0..140 ms
    assert r.mode == Mode.TRACK
    r = rig.tick(reference_time_s=last_ref)      # 160 ms
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.REFERENCE_LATE
    assert rig.tick().mode == Mode.HOLD          # the reference is back: still held (no silent resume)


def test_reference_lost_after_tracking_holds_then_damps():
    """The motion server dies mid-clip: HOLD at 150 ms, DAMP once the reference is 1 s old."""
    rig = tracking_rig()
    last_ref = rig.t
    r = rig.tick(9, reference_time_s=last_ref)
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.REFERENCE_LATE
    while rig.t - last_ref <= 1.0:
        r = rig.tick(reference_time_s=last_ref)
        assert r.mode == Mode.HOLD and r.watchdog == Watchdog.REFERENCE_LATE
    r = rig.tick(reference_time_s=last_ref)
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.REFERENCE_LOST and is_damping(r.command)


@pytest.mark.parametrize("where", ["joint_pos", "joint_vel", "base_quat_wxyz", "input_fault", "controller"])
def test_nonfinite_anywhere_damps_in_the_same_tick(where):
    rig = tracking_rig()
    if where == "controller":
        rig.controller_target = np.full(29, np.nan)
        r = rig.tick()
    elif where == "input_fault":
        r = rig.tick(input_fault="reference_window: joint_pos contains NaN or inf")
    else:
        bad = rig.inputs()
        arr = np.array(getattr(bad, where), dtype=float)
        arr[1] = np.inf if where == "joint_vel" else np.nan
        r = rig.tick(**{where: arr})
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.NONFINITE and is_damping(r.command)


def test_controller_exception_damps():
    rig = tracking_rig()

    def broken():
        raise RuntimeError("onnx runtime exploded")
    r = rig.sm.tick(rig.inputs(), broken)
    assert r.mode == Mode.DAMP and "exploded" in r.detail and is_damping(r.command)


@pytest.mark.parametrize("roll,pitch", [(1.1, 0.0), (0.0, -1.2)])
def test_fall_damps(roll, pitch):
    rig = tracking_rig()
    cr, sr, cp, sp = math.cos(roll / 2), math.sin(roll / 2), math.cos(pitch / 2), math.sin(pitch / 2)
    quat = np.array([cr * cp, sr * cp, cr * sp, -sr * sp])
    r = rig.tick(base_quat_wxyz=quat)
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.FALL and is_damping(r.command)


def test_base_far_below_reference_damps():
    rig = tracking_rig()
    r = rig.tick(base_height_m=robot.DEFAULT_ROOT_HEIGHT_M - 0.2)
    assert r.mode == Mode.TRACK
    r = rig.tick(base_height_m=robot.DEFAULT_ROOT_HEIGHT_M - 0.4)
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.FALL


def test_estop_damps_immediately_and_blocks_rearming():
    rig = tracking_rig()
    r = rig.tick(estop=True)
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.ESTOP and is_damping(r.command)
    ok, why = rig.request("stand", estop=True)
    assert not ok and "e-stop" in why
    assert rig.tick(estop=True).mode == Mode.DAMP
    assert rig.request("stand")[0] and rig.tick().mode == Mode.STAND


def test_damp_request_and_passive_from_anywhere():
    rig = tracking_rig()
    rig.request("damp")
    assert rig.tick().mode == Mode.DAMP
    rig.request("passive")
    assert rig.tick().mode == Mode.PASSIVE


def test_sanitiser_never_emits_nan_or_out_of_limit_values():
    rng = np.random.default_rng(0)
    specials = np.array([np.nan, np.inf, -np.inf, 1e9, -1e9, 0.0])
    for _ in range(500):
        fields = []
        for _ in range(5):
            a = rng.normal(0, 10, 29)
            idx = rng.random(29) < 0.2
            a[idx] = rng.choice(specials, idx.sum())
            fields.append(a)
        raw = Command(*fields, Source.POLICY)
        fallback = Q0 if rng.random() < 0.5 else np.full(29, np.nan)
        cmd, fixes = sanitize_command(raw, fallback)
        assert within_limits(cmd)
        assert np.all(np.abs(cmd.effort) <= robot.EFFORT_LIMIT) and np.all(np.abs(cmd.velocity) <= robot.VELOCITY_LIMIT)
        nan_pos = ~np.isfinite(raw.position)
        assert np.all(cmd.kp[nan_pos] == 0)  # a broken target never pulls
        assert fixes or np.all(np.isfinite(raw.position))
    cmd, fixes = sanitize_command(Command(np.zeros(3), *[np.zeros(29)] * 4, Source.POLICY))
    assert is_damping(cmd) and "shape" in fixes[0]



# --- implausible controller outputs (issue 12, item 4) -------------------------------------------------

PLAUSIBILITY = dict(action_max_beyond_limits_rad=0.5, action_max_step_rad=0.5, action_max_offset_rad=1.0,
                    action_limits_scale_with_gains=False)


def _tracking_with_policy_target(target, **cfg):
    rig = tracking_rig(**cfg)
    r = rig.tick()
    assert r.mode == Mode.TRACK and r.ran_controller
    sane = r.command.position.copy()
    rig.controller_target = np.asarray(target, dtype=float)
    return rig, sane


@pytest.mark.parametrize("what,target,cfg", [
    ("huge", np.full(29, 1e6), {}),                  # the audit's 1e6, with the shipped defaults
    ("one joint huge", Q0 + np.eye(29)[3] * 1e6, {}),
    ("one joint -huge", Q0 - np.eye(29)[20] * 1e6, {}),
    ("beyond limits", Q0 + np.eye(29)[3] * (robot.JOINT_UPPER[3] - Q0[3] + 0.6), PLAUSIBILITY),
    ("far from reference and robot", Q0 + np.eye(29)[15] * 1.5,  # in range, but 1.5 rad from both
     dict(PLAUSIBILITY, action_max_step_rad=2.0)),
    ("jump", Q0 + np.eye(29)[15] * 0.8, PLAUSIBILITY),
])
def test_implausible_controller_output_holds_the_last_sane_target_in_the_same_tick(what, target, cfg):
    rig, sane = _tracking_with_policy_target(target, **cfg)
    r = rig.tick()
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.CONTROLLER_FAULT, (what, r.detail)
    assert "controller fault" in r.detail and r.command.source == Source.SAFETY
    np.testing.assert_allclose(r.command.position, sane)              # not the implausible one
    np.testing.assert_array_equal(r.command.kp, robot.STAND_KP)
    # latched: the controller is not resumed by itself, not even by a new motion with auto_track
    rig.sm.cfg.auto_track = True
    rig.window = standing_window(state=REF_IDLE, motion_name="")
    rig.tick(2)
    rig.window = standing_window(state=REF_PLAYING, motion_name="m2")
    assert rig.tick(3).mode == Mode.HOLD
    rig.controller_target = sane
    assert rig.request("track")[0] and rig.tick().mode == Mode.TRACK  # an operator may try again


def test_implausible_rate_of_change_holds_but_following_a_jumping_reference_does_not():
    rig, sane = _tracking_with_policy_target(Q0 + 0.05, **PLAUSIBILITY)
    # the reference jumps by 1.2 rad on a shoulder in one tick (mocap data does: up to 1.57 rad measured)
    jumped = Q0.copy()
    jumped[15] += 1.2
    rig.window = standing_window(state=REF_PLAYING, motion_name="m1", joint_pos=jumped)
    rig.controller_target = jumped + 0.05          # a residual policy follows it: plausible
    assert rig.tick().mode == Mode.TRACK
    rig.controller_target = jumped - 0.05          # ... and a smooth step on top of it: plausible
    assert rig.tick().mode == Mode.TRACK
    rig.controller_target = jumped + np.eye(29)[22] * 0.9   # the other arm jumps 0.9 rad on its own
    r = rig.tick()
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.CONTROLLER_FAULT and "per tick" in r.detail


def test_plausibility_limits_scale_with_the_commanded_gains():
    """The limits are rad at STAND gains; a low-gain controller (the rig commands robot.KP: mjlab's, 40 on
    the hip pitch vs STAND 161, 28.5 on the ankle vs 300) gets them x STAND_KP/kp: the same torque."""
    hip = robot.JOINT_NAMES.index("left_hip_pitch_joint")
    ankle = robot.JOINT_NAMES.index("left_ankle_pitch_joint")
    hip_scale = robot.STAND_KP[hip] / robot.KP[hip]
    # a 2.4 rad hip step (what a distilled student did through g1 track): 96 Nm, 0.6 rad at STAND gains
    rig, sane = _tracking_with_policy_target(Q0 + 0.05)
    rig.controller_target = sane + np.eye(29)[hip] * 2.4
    assert rig.tick().mode == Mode.TRACK
    # ... an ankle target 4 rad outside its range (an mjlab expert did): plausible at kp 28.5
    rig.controller_target = rig.controller_target.copy()
    rig.controller_target[ankle] = robot.JOINT_UPPER[ankle] + 4.0
    assert rig.tick().mode == Mode.TRACK
    # ... and a step beyond the scaled limit is a fault, with the scaling in the detail (a wrist: STAND 20
    # vs 16.8, limit 1.3 x 1.19 = 1.55 rad, a step that fits in its range both ways)
    wrist = robot.JOINT_NAMES.index("left_wrist_pitch_joint")
    assert 1.5 < 1.3 * robot.STAND_KP[wrist] / robot.KP[wrist] < 1.6
    rig, sane = _tracking_with_policy_target(Q0 + 0.05)
    rig.controller_target = sane - np.eye(29)[wrist] * 1.45           # > 1.3 rad, < 1.55: plausible
    assert rig.tick().mode == Mode.TRACK
    rig.controller_target = rig.controller_target + np.eye(29)[wrist] * 1.7
    r = rig.tick()
    assert r.mode == Mode.HOLD and "left_wrist_pitch_joint moved 1.7 rad" in r.detail and "x STAND_KP/kp 1.19" in r.detail
    # ... and garbage is garbage at any gains
    rig, sane = _tracking_with_policy_target(Q0 + 0.05)
    rig.controller_target = Q0 + np.eye(29)[ankle] * 1e6
    r = rig.tick()
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.CONTROLLER_FAULT and "outside its range" in r.detail
    # the same 1.4 rad hip step at STAND gains (225 Nm) is a fault: the rad limit applies unchanged
    rig, sane = _tracking_with_policy_target(Q0 + 0.05)
    rig.controller_kp = np.asarray(robot.STAND_KP, dtype=float)
    rig.tick()
    rig.controller_target = sane + np.eye(29)[hip] * 1.4
    r = rig.tick()
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.CONTROLLER_FAULT and "moved 1.4 rad" in r.detail
    assert "STAND_KP" not in r.detail
    # ... and with the scaling switched off the low-gain 2.4 rad step is a fault again
    rig, sane = _tracking_with_policy_target(Q0 + 0.05, action_limits_scale_with_gains=False)
    rig.controller_target = sane + np.eye(29)[hip] * 2.4
    assert rig.tick().mode == Mode.HOLD


def test_plausibility_limits_can_be_switched_off():
    rig = Rig(stand_ramp_s=0.1, track_ramp_s=0.1, action_max_step_rad=0.0, action_max_offset_rad=0.0,
              action_max_beyond_limits_rad=0.0)
    rig.request("stand")
    rig.tick(6)
    assert rig.request("track")[0]
    rig.tick(6)
    rig.controller_target = np.full(29, 1e6)
    r = rig.tick()
    assert r.mode == Mode.TRACK and within_limits(r.command)  # only the sanitiser's clipping is left


def test_sane_controller_outputs_never_trip_the_checks():
    """A residual controller that follows a swinging reference with small corrections, standing still."""
    rig = tracking_rig(**PLAUSIBILITY)
    for i in range(200):
        q = Q0.copy()
        q[15] += 0.6 * math.sin(2 * math.pi * 1.0 * i * DT)
        rig.window = standing_window(state=REF_PLAYING, motion_name="m1", joint_pos=q)
        rig.controller_target = q + 0.2 * math.sin(i * 0.3)
        r = rig.tick()
        assert r.mode == Mode.TRACK and r.ran_controller, r.detail


# --- the reference goes IDLE while tracking (issue 12, item 9) ---------------------------------------

def test_reference_idle_while_tracking_holds_then_damps():
    """motion_server reset to IDLE mid-clip: never track an IDLE reference; hold, then damping once it has
    been IDLE for reference_lost_s (as when the reference is lost)."""
    rig = tracking_rig()
    rig.window = standing_window(state=REF_IDLE, motion_name="")
    r = rig.tick()
    assert r.mode == Mode.HOLD and r.watchdog == Watchdog.REFERENCE_LATE and "IDLE" in r.detail
    assert not r.ran_controller and r.command.source == Source.SAFETY
    start = rig.t - DT
    while rig.t - start <= 1.0:
        r = rig.tick()
        assert r.mode == Mode.HOLD, r.detail
    r = rig.tick()
    assert r.mode == Mode.DAMP and r.watchdog == Watchdog.REFERENCE_LOST and is_damping(r.command)


def test_reference_idle_then_playing_again_stays_held():
    rig = tracking_rig()
    rig.window = standing_window(state=REF_IDLE, motion_name="")
    assert rig.tick(5).mode == Mode.HOLD
    rig.window = standing_window(state=REF_PLAYING, motion_name="m1")
    for _ in range(60):  # longer than reference_lost_s: no damping once the reference is back
        r = rig.tick()
        assert r.mode == Mode.HOLD
    # but a clip end hold is not a fault: an IDLE reference after it does not damp
    rig2 = tracking_rig()
    rig2.window = standing_window(state=REF_HOLD_END, motion_name="m1")
    assert rig2.tick().mode == Mode.HOLD
    rig2.window = standing_window(state=REF_IDLE, motion_name="")
    assert rig2.tick(80).mode == Mode.HOLD


@pytest.mark.parametrize("state", [REF_IDLE, REF_HOLD_END])
def test_track_refused_with_no_motion_playing(state):
    rig = Rig(stand_ramp_s=0.1)
    rig.request("stand")
    rig.tick(10)
    rig.window = standing_window(state=state, motion_name="" if state == REF_IDLE else "m1")
    ok, why = rig.request("track")
    assert not ok and "no motion playing" in why, why
    assert rig.tick().mode == Mode.STAND


def test_a_refused_request_does_not_unlatch_a_controller_fault():
    rig, sane = _tracking_with_policy_target(np.full(29, 1e6), auto_track=True)
    assert rig.tick().watchdog == Watchdog.CONTROLLER_FAULT
    rig.window = standing_window(state=REF_IDLE, motion_name="")
    assert not rig.request("track")[0]          # refused: nothing playing
    rig.tick(2)
    rig.window = standing_window(state=REF_PLAYING, motion_name="m2")
    r = rig.tick(5)
    assert r.mode == Mode.HOLD and not r.ran_controller
