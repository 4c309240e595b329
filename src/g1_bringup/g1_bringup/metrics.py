"""Tracking metrics (plain numpy, no ROS): the one implementation used by `g1 eval` on bags and by the
training workspace's `g1-train eval`, so both report the same numbers.

Definitions (per control tick, over the ticks where the reference is playing a clip):
- E_mpkpe (mm): mean over key bodies of the world-frame position error |p - p_ref| (GMT's metric;
  the reference is re-anchored to the robot's start pose by the motion server).
- root-relative key-body error (mm): the same with both sides expressed relative to their root
  position (and the robot's/reference's heading), i.e. pose error without global drift.
- E_mpjpe (rad): mean absolute joint position error over the 29 joints.
- E_vel (m/s): |v_root - v_root_ref| (world). E_yaw_vel (rad/s): |w_z - w_z_ref|.
- Termination (failure) when |z_root - z_root_ref| > 0.25 m or the angle between the robot's and the
  reference's up axes exceeds 1.0 rad (roll/pitch deviation; yaw drift is not a fall).
- success: the clip played to its end without termination. completion: the fraction of the clip's
  ticks before termination (or before the run stopped).
- joint jerk (rad/s^3): mean |d^3 q / dt^3| of the measured joint positions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from g1_tracker_policy.observation import quat_to_rotmat, yaw_from_quat

HEIGHT_TERMINATION_M = 0.25
ORIENTATION_TERMINATION_RAD = 1.0


@dataclass
class TrackingRecord:
    """Time-aligned robot state and reference for one run: arrays with a leading tick axis (N)."""

    t_s: np.ndarray                  # (N,) time of the robot state
    dt_s: float                      # control period
    motion_name: list                # (N,) the clip being played ("" when not playing)
    clip_time_s: np.ndarray          # (N,) clip time of the reference frame
    clip_duration_s: np.ndarray      # (N,)
    playing: np.ndarray              # (N,) bool: reference state is PLAYING
    ref_joint_pos: np.ndarray        # (N, 29)
    ref_root_pos: np.ndarray         # (N, 3)
    ref_root_quat: np.ndarray        # (N, 4) wxyz
    ref_root_lin_vel: np.ndarray     # (N, 3) world
    ref_root_ang_vel: np.ndarray     # (N, 3) world
    ref_key_body_pos: np.ndarray     # (N, K, 3) world
    joint_pos: np.ndarray            # (N, 29)
    root_pos: np.ndarray             # (N, 3)
    root_quat: np.ndarray            # (N, 4) wxyz
    root_lin_vel: np.ndarray         # (N, 3) world
    root_ang_vel: np.ndarray         # (N, 3) world
    key_body_pos: np.ndarray         # (N, K, 3) world
    key_body_names: tuple = ()
    extras: dict = field(default_factory=dict)


def _up_axis(quat_wxyz: np.ndarray) -> np.ndarray:
    """World z axis of the body frame (third column of the rotation matrix), batched."""
    return quat_to_rotmat(quat_wxyz)[..., :, 2]


def _heading_relative(points: np.ndarray, root: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """Key-body positions relative to the root, rotated into the root's heading (yaw) frame."""
    rel = points - root[:, None, :]
    yaw = yaw_from_quat(quat)
    c, s = np.cos(-yaw)[:, None], np.sin(-yaw)[:, None]
    x, y = rel[..., 0], rel[..., 1]
    return np.stack([c * x - s * y, s * x + c * y, rel[..., 2]], axis=-1)


def termination_flags(rec: TrackingRecord) -> tuple[np.ndarray, np.ndarray]:
    """(height_error_m, orientation_error_rad) per tick."""
    height_err = np.abs(rec.root_pos[:, 2] - rec.ref_root_pos[:, 2])
    cosang = np.clip(np.sum(_up_axis(rec.root_quat) * _up_axis(rec.ref_root_quat), axis=-1), -1.0, 1.0)
    return height_err, np.arccos(cosang)


def per_tick_errors(rec: TrackingRecord) -> dict[str, np.ndarray]:
    kp_err = np.linalg.norm(rec.key_body_pos - rec.ref_key_body_pos, axis=-1)          # (N, K) m
    rel = _heading_relative(rec.key_body_pos, rec.root_pos, rec.root_quat)
    rel_ref = _heading_relative(rec.ref_key_body_pos, rec.ref_root_pos, rec.ref_root_quat)
    height_err, orient_err = termination_flags(rec)
    yaw_err = yaw_from_quat(rec.root_quat) - yaw_from_quat(rec.ref_root_quat)
    return {
        "mpkpe_mm": 1000.0 * kp_err.mean(axis=1),
        "root_xy_mm": 1000.0 * np.linalg.norm(rec.root_pos[:, :2] - rec.ref_root_pos[:, :2], axis=-1),
        "yaw_err_rad": np.abs((yaw_err + np.pi) % (2 * np.pi) - np.pi),
        "key_body_rel_mm": 1000.0 * np.linalg.norm(rel - rel_ref, axis=-1).mean(axis=1),
        "mpjpe_rad": np.abs(rec.joint_pos - rec.ref_joint_pos).mean(axis=1),
        "joint_abs_err_rad": np.abs(rec.joint_pos - rec.ref_joint_pos),                  # (N, 29)
        "vel_mps": np.linalg.norm(rec.root_lin_vel - rec.ref_root_lin_vel, axis=-1),
        "yaw_vel_rads": np.abs(rec.root_ang_vel[:, 2] - rec.ref_root_ang_vel[:, 2]),
        "height_err_m": height_err,
        "orientation_err_rad": orient_err,
    }


def clip_segments(rec: TrackingRecord) -> list[tuple[str, np.ndarray]]:
    """Index arrays of consecutive playing ticks of the same clip (a clip played twice gives two)."""
    out = []
    start = None
    for i in range(len(rec.t_s) + 1):
        same = (i < len(rec.t_s) and rec.playing[i] and start is not None
                and rec.motion_name[i] == rec.motion_name[start]
                and rec.clip_time_s[i] >= rec.clip_time_s[i - 1] - 1e-9)
        if start is not None and not same:
            out.append((rec.motion_name[start], np.arange(start, i)))
            start = None
        if start is None and i < len(rec.t_s) and rec.playing[i]:
            start = i
    return out


def _stats(values: np.ndarray) -> float | None:
    return float(np.mean(values)) if values.size else None


def termination_index(idx: np.ndarray, errors: dict[str, np.ndarray]) -> int | None:
    """Position in ``idx`` (a clip segment's ticks) of the first terminated tick, None if none."""
    failed = ((errors["height_err_m"][idx] > HEIGHT_TERMINATION_M)
              | (errors["orientation_err_rad"][idx] > ORIENTATION_TERMINATION_RAD))
    return int(np.argmax(failed)) if failed.any() else None


def clip_metrics(rec: TrackingRecord, idx: np.ndarray, errors: dict[str, np.ndarray]) -> dict:
    height_err = errors["height_err_m"][idx]
    fail_at = termination_index(idx, errors)
    valid = idx if fail_at is None else idx[:fail_at]
    duration = float(rec.clip_duration_s[idx[0]])
    played_to_s = float(rec.clip_time_s[idx[-1]])
    reached_end = played_to_s >= duration - 2.5 * rec.dt_s
    n_expected = max(1, int(round(duration / rec.dt_s)))
    completion = min(1.0, len(valid) / n_expected)
    q = rec.joint_pos[valid]
    jerk = np.abs(np.diff(q, n=3, axis=0)).mean() / rec.dt_s**3 if len(q) > 3 else None
    reason = None
    if fail_at is not None:
        reason = ("height error > 0.25 m" if height_err[fail_at] > HEIGHT_TERMINATION_M
                  else "orientation error > 1.0 rad")
    elif not reached_end:
        reason = f"run stopped at clip time {played_to_s:.2f} s of {duration:.2f} s"
    return {
        "motion": rec.motion_name[idx[0]],
        "duration_s": duration,
        "success": bool(fail_at is None and reached_end),
        "completion": float(completion),
        "termination": reason,
        "terminated_at_clip_time_s": None if fail_at is None else float(rec.clip_time_s[idx[fail_at]]),
        "E_mpkpe_mm": _stats(errors["mpkpe_mm"][valid]),
        "E_mpjpe_rad": _stats(errors["mpjpe_rad"][valid]),
        "E_vel_mps": _stats(errors["vel_mps"][valid]),
        "E_yaw_vel_rads": _stats(errors["yaw_vel_rads"][valid]),
        "key_body_root_relative_mm": _stats(errors["key_body_rel_mm"][valid]),
        # where E_mpkpe comes from: the pelvis in the wrong place (world xy) or facing the wrong way, and
        # the xy offset the clip started with (what the stand and blend-in left)
        "E_root_xy_mm": _stats(errors["root_xy_mm"][valid]),
        "E_yaw_rad": _stats(errors["yaw_err_rad"][valid]),
        "root_xy_at_start_mm": float(errors["root_xy_mm"][idx[0]]),
        "joint_jerk_rads3": None if jerk is None else float(jerk),
        "ticks": int(len(idx)),
        "ticks_before_termination": int(len(valid)),
    }


def compute_metrics(rec: TrackingRecord) -> dict:
    """Per-clip and overall metrics (overall = tick-weighted means over clips, success rate over clips)."""
    errors = per_tick_errors(rec)
    clips = [clip_metrics(rec, idx, errors) for _, idx in clip_segments(rec)]
    overall: dict = {"clips": len(clips)}
    if clips:
        weights = np.array([c["ticks_before_termination"] for c in clips], dtype=float)
        overall["success_rate"] = float(np.mean([c["success"] for c in clips]))
        overall["completion"] = float(np.mean([c["completion"] for c in clips]))
        for key in ("E_mpkpe_mm", "E_mpjpe_rad", "E_vel_mps", "E_yaw_vel_rads", "key_body_root_relative_mm",
                    "E_root_xy_mm", "E_yaw_rad", "joint_jerk_rads3"):
            vals = [(c[key], w) for c, w in zip(clips, weights) if c[key] is not None and w > 0]
            overall[key] = (float(np.average([v for v, _ in vals], weights=[w for _, w in vals]))
                            if vals else None)
    return {"overall": overall, "per_clip": clips, "_per_tick": errors}
