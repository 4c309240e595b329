"""Tracking metrics on synthetic records: exact numbers where they can be computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from g1_bringup import metrics as M

N, K = 200, 4


def _record(**overrides) -> M.TrackingRecord:
    t = np.arange(N) * 0.02
    ref_kb = np.random.default_rng(0).normal(size=(N, K, 3))
    base = dict(
        t_s=t, dt_s=0.02, motion_name=["clip"] * N, clip_time_s=t + 0.02, clip_duration_s=np.full(N, N * 0.02),
        playing=np.ones(N, bool), ref_joint_pos=np.zeros((N, 29)), ref_root_pos=np.tile([0, 0, 0.75], (N, 1)),
        ref_root_quat=np.tile([1.0, 0, 0, 0], (N, 1)), ref_root_lin_vel=np.zeros((N, 3)),
        ref_root_ang_vel=np.zeros((N, 3)), ref_key_body_pos=ref_kb, joint_pos=np.zeros((N, 29)),
        root_pos=np.tile([0, 0, 0.75], (N, 1)), root_quat=np.tile([1.0, 0, 0, 0], (N, 1)),
        root_lin_vel=np.zeros((N, 3)), root_ang_vel=np.zeros((N, 3)), key_body_pos=ref_kb.copy())
    base.update(overrides)
    return M.TrackingRecord(**base)


def test_perfect_tracking_is_zero_error_and_success():
    m = M.compute_metrics(_record())
    clip = m["per_clip"][0]
    assert clip["success"] and clip["completion"] == pytest.approx(1.0)
    for key in ("E_mpkpe_mm", "E_mpjpe_rad", "E_vel_mps", "E_yaw_vel_rads", "key_body_root_relative_mm"):
        assert clip[key] == pytest.approx(0.0, abs=1e-12), key
    assert m["overall"]["success_rate"] == 1.0


def test_known_offsets_give_known_errors():
    rec = _record()
    rec.key_body_pos = rec.ref_key_body_pos + np.array([0.0, 0.03, 0.04])  # 50 mm everywhere
    rec.joint_pos = rec.ref_joint_pos + 0.1
    rec.root_lin_vel = np.tile([0.3, 0.4, 0.0], (N, 1))
    rec.root_ang_vel = np.tile([0.0, 0.0, 0.2], (N, 1))
    clip = M.compute_metrics(rec)["per_clip"][0]
    assert clip["E_mpkpe_mm"] == pytest.approx(50.0)
    assert clip["E_mpjpe_rad"] == pytest.approx(0.1)
    assert clip["E_vel_mps"] == pytest.approx(0.5)
    assert clip["E_yaw_vel_rads"] == pytest.approx(0.2)
    # a global offset of every key body is not a pose error once made root relative... but the root
    # did not move here, so the root-relative error is the same 50 mm
    assert clip["key_body_root_relative_mm"] == pytest.approx(50.0)
    assert clip["success"]


def test_world_offset_and_heading_error_are_named_apart_from_the_pose():
    """E_root_xy_mm / E_yaw_rad say how much of E_mpkpe is the robot standing in the wrong place or facing
    the wrong way; root_xy_at_start_mm is the offset the clip started with."""
    rec = _record()
    shift = np.zeros((N, 3))
    shift[:, 1] = np.linspace(0.05, 0.15, N)  # the whole robot slides sideways from 50 to 150 mm
    rec.root_pos = rec.root_pos + shift
    rec.key_body_pos = rec.ref_key_body_pos + shift[:, None, :]
    yaw = 0.3
    rec.root_quat = np.tile([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], (N, 1))
    clip = M.compute_metrics(rec)["per_clip"][0]
    assert clip["E_root_xy_mm"] == pytest.approx(100.0) and clip["E_mpkpe_mm"] == pytest.approx(100.0)
    assert clip["root_xy_at_start_mm"] == pytest.approx(50.0)
    assert clip["E_yaw_rad"] == pytest.approx(0.3)
    rec.root_quat = np.tile([np.cos(3.0 / 2), 0, 0, np.sin(3.0 / 2)], (N, 1))  # wraps: 3.0 rad, not 3.28
    rec.ref_root_quat = np.tile([np.cos(-3.0 / 2), 0, 0, np.sin(-3.0 / 2)], (N, 1))
    assert M.compute_metrics(rec)["per_clip"][0]["E_yaw_rad"] == pytest.approx(2 * np.pi - 6.0)
    perfect = M.compute_metrics(_record())["per_clip"][0]
    assert perfect["E_root_xy_mm"] == perfect["E_yaw_rad"] == perfect["root_xy_at_start_mm"] == 0.0


def test_fall_terminates_and_reports_failure():
    rec = _record()
    rec.root_pos = rec.root_pos.copy()
    rec.root_pos[120:, 2] = 0.3  # the pelvis drops 45 cm at tick 120
    clip = M.compute_metrics(rec)["per_clip"][0]
    assert not clip["success"]
    assert clip["termination"] == "height error > 0.25 m"
    assert clip["completion"] == pytest.approx(120 / N)
    assert clip["terminated_at_clip_time_s"] == pytest.approx(rec.clip_time_s[120])


def test_tilt_terminates_on_orientation():
    rec = _record()
    angle = 1.2
    rec.root_quat = rec.root_quat.copy()
    rec.root_quat[50:] = [np.cos(angle / 2), np.sin(angle / 2), 0, 0]  # rolled 1.2 rad
    clip = M.compute_metrics(rec)["per_clip"][0]
    assert clip["termination"] == "orientation error > 1.0 rad" and clip["ticks_before_termination"] == 50


def test_yaw_drift_is_not_a_fall():
    rec = _record()
    rec.root_quat = np.tile([np.cos(0.8), 0, 0, np.sin(0.8)], (N, 1))  # 1.6 rad of yaw
    assert M.compute_metrics(rec)["per_clip"][0]["success"]


def test_run_stopped_early_is_not_success():
    rec = _record()
    rec.clip_duration_s = np.full(N, 2 * N * 0.02)
    clip = M.compute_metrics(rec)["per_clip"][0]
    assert not clip["success"] and "run stopped" in clip["termination"]
    assert clip["completion"] == pytest.approx(0.5)


def test_two_clips_are_two_segments():
    rec = _record()
    rec.motion_name = ["a"] * 100 + ["b"] * 100
    rec.clip_time_s = np.concatenate([np.arange(100), np.arange(100)]) * 0.02 + 0.02
    rec.clip_duration_s = np.full(N, 100 * 0.02)
    m = M.compute_metrics(rec)
    assert [c["motion"] for c in m["per_clip"]] == ["a", "b"]
    assert m["overall"]["clips"] == 2


def test_control_rate_counts_ticks_that_reused_a_state_but_not_those_after_the_last_state():
    from g1_bringup.evaluation import control_rate_hz

    t = np.arange(500) * 0.02  # 50 Hz for 10 s
    assert control_rate_hz(t) == pytest.approx(50.0)
    late = t.copy()
    late[100] = late[99]  # a tick that found no new state (it reuses the previous stamp): still a tick
    assert control_rate_hz(late) == pytest.approx(50.0)
    stalled = np.concatenate([t, np.full(60, t[-1])])  # the simulator stopped; the policy ticked on
    assert control_rate_hz(stalled) == pytest.approx(50.0)
    assert control_rate_hz(np.array([1.0])) is None and control_rate_hz(np.full(5, 2.0)) is None


def test_inputs_rejected_for_their_stamp_are_events_and_a_flood_is_summarised():
    from g1_bringup import evaluation

    n = 30
    status = {"t_s": np.arange(n) * 0.02, "mode": np.full(n, 3), "watchdog": np.zeros(n, dtype=int),
              "detail": ["" for _ in range(n)]}
    status["detail"][2] = "; rejected joint_states stamp 0 ns goes back"
    for i in range(5, n):
        status["detail"][i] = "; rejected imu stamp far ahead"
    events = evaluation._events(status)
    rejected = [e for e in events if e["event"].startswith("input rejected")]
    assert rejected[0] == {"t_s": 0.04, "event": "input rejected: ; rejected joint_states stamp 0 ns goes back"}
    assert len(rejected) == evaluation.MAX_REJECTION_EVENTS
    assert events[-1]["event"] == f"{n - 5 + 1 - evaluation.MAX_REJECTION_EVENTS} more ticks with rejected inputs"
