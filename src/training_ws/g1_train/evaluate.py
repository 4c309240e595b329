"""Evaluate an exported policy artifact in plain MuJoCo, with the stack's own pieces end to end:

- the simulator core of the sim node (``g1_hardware.sim_core.MujocoG1``: motor PD, with the physics
  profile the artifact was trained with - its provenance's ``physics_profile``, drivers_500hz when it
  names none - or the one given),
- the policy node's controller (``g1_tracker_policy.controllers.PolicyController``: contract loader,
  deployment observation builder, ONNX Runtime runner) - or the pass-through baseline - and the
  node's command sanitiser (``safety.sanitize_command``: targets clipped to the joint limits),
- the evaluator's metrics (``g1_bringup.metrics.compute_metrics``: success, completion, E_mpkpe,
  E_mpjpe, E_vel, E_yaw_vel, jerk) - the same numbers ``g1 eval`` reports from a bag.

No ROS graph: this is the fast offline check. Each clip starts in its first frame with the reference
velocities (as in training); the full-graph evaluation (stand, blend-in, re-anchoring) is ``g1 track``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from g1_bringup.metrics import TrackingRecord, compute_metrics
from g1_description import physics as physics_profiles
from g1_description import robot
from g1_hardware.sim_core import MotorCommand, MujocoG1, SimConfig
from g1_tracker_policy import contract
from g1_tracker_policy.controllers import PassthroughController, PolicyController, RobotState
from g1_tracker_policy.safety import Command, Source, sanitize_command
from motion_server.reference import ReferenceWindowData

from .motions import MotionSet

FALL_STOP_S = 0.5  # keep simulating this long after a fall is detected, then go to the next clip


def _window(ms: MotionSet, c: int, frame: int, offsets: tuple[int, ...]) -> ReferenceWindowData:
    last = int(ms.length[c]) - 1
    idx = np.minimum(frame + np.array((1,) + tuple(offsets)), last)
    g = ms.start[c] + idx
    f = lambda a: a[g].astype(np.float64)  # noqa: E731
    return ReferenceWindowData(
        times_s=idx * robot.CONTROL_PERIOD_S, joint_pos=f(ms.joint_pos), joint_vel=f(ms.joint_vel),
        root_pos=f(ms.root_pos), root_quat_wxyz=f(ms.root_quat_wxyz), root_lin_vel=f(ms.root_lin_vel),
        root_ang_vel=f(ms.root_ang_vel), key_body_pos=f(ms.key_body_pos), future_offsets=tuple(offsets),
        motion_name=ms.names[c], clip_time_s=frame * robot.CONTROL_PERIOD_S,
        clip_duration_s=last * robot.CONTROL_PERIOD_S, state=2)


def run_clip(controller, ms: MotionSet, c: int, offsets: tuple[int, ...], max_s: float | None = None,
             physics_profile: str = physics_profiles.DEFAULT_PROFILE) -> dict:
    """Track clip ``c``; returns per-tick arrays for a TrackingRecord."""
    sim = MujocoG1(SimConfig(physics_profile=physics_profile))
    g0 = ms.start[c]
    sim.reset_to(ms.root_pos[g0], ms.root_quat_wxyz[g0], ms.joint_pos[g0])
    rot = np.empty(9)
    import mujoco

    mujoco.mju_quat2Mat(rot, sim.data.qpos[3:7])
    sim.data.qvel[:3] = ms.root_lin_vel[g0]
    sim.data.qvel[3:6] = rot.reshape(3, 3).T @ ms.root_ang_vel[g0]
    sim.data.qvel[6:] = ms.joint_vel[g0]
    mujoco.mj_forward(sim.model, sim.data)
    controller.reset()
    last_action = np.zeros(robot.NUM_JOINTS)
    n_frames = int(ms.length[c]) - 1
    if max_s:
        n_frames = min(n_frames, int(max_s / robot.CONTROL_PERIOD_S))
    rows: dict[str, list] = {k: [] for k in ROW_KEYS}
    fallen_ticks = 0
    for k in range(n_frames):
        imu, d = sim.imu(), sim.data
        state = RobotState(joint_pos=d.qpos[7:].copy(), joint_vel=d.qvel[6:].copy(),
                           base_quat_wxyz=imu.quat_wxyz, base_ang_vel_body=imu.angular_velocity,
                           base_pos_world=d.qpos[:3].copy())  # the graph's odometry: ground truth
        out = controller.compute(state, _window(ms, c, k, offsets), last_action)
        last_action = out.action
        zeros = np.zeros(robot.NUM_JOINTS)
        # the policy node's last step before the robot: targets clipped to the joint limits, gains bounded
        cmd, _ = sanitize_command(Command(out.position, zeros, np.asarray(out.kp), np.asarray(out.kd), zeros,
                                          Source.POLICY), state.joint_pos)
        sim.set_command(MotorCommand(cmd.position, cmd.velocity, cmd.kp, cmd.kd, cmd.effort))
        sim.step_tick()
        gt = sim.ground_truth()
        rot = np.empty(9)
        mujoco.mju_quat2Mat(rot, gt.quat_wxyz)
        rows["ref_idx"].append(g0 + k + 1)
        rows["q"].append(sim.data.qpos[7:].copy())
        rows["root_pos"].append(gt.position)
        rows["root_quat"].append(gt.quat_wxyz)
        rows["lin"].append(rot.reshape(3, 3) @ gt.linear_velocity)
        rows["ang"].append(rot.reshape(3, 3) @ gt.angular_velocity)
        rows["kb"].append(gt.key_body_positions)
        if abs(gt.position[2] - ms.root_pos[g0 + k + 1, 2]) > 0.25:
            fallen_ticks += 1
            if fallen_ticks * robot.CONTROL_PERIOD_S > FALL_STOP_S:
                break
    return rows


def evaluate(artifact_path: str | Path | None, ms: MotionSet, max_s: float | None = None,
             physics_profile: str | None = None) -> dict:
    """Metrics of an artifact (or, with ``None``, of the pass-through baseline) on every clip of ``ms``,
    simulated with ``physics_profile`` (None: the artifact's training profile, else drivers_500hz)."""
    profile = physics_profile
    if artifact_path is None:
        controller, offsets = PassthroughController(), tuple(ReferenceWindowData.__dataclass_fields__[
            "future_offsets"].default)
    else:
        art = contract.load_artifact(artifact_path)
        controller, offsets = PolicyController(art), tuple(art.observation.future_offsets)
        profile = profile or art.provenance.get("physics_profile")
    profile = physics_profiles.get_profile(profile or physics_profiles.DEFAULT_PROFILE).name
    parts = []
    for c in range(ms.num_clips):
        rows = run_clip(controller, ms, c, offsets, max_s, profile)
        duration = min((ms.length[c] - 1) * robot.CONTROL_PERIOD_S, max_s or np.inf)
        parts.append(clip_part(ms, c, rows, duration))
    metrics = clip_parts_metrics(parts, ms.key_body_names)
    metrics["controller"] = controller.name
    metrics["physics_profile"] = profile
    return metrics


ROW_KEYS = ("ref_idx", "q", "root_pos", "root_quat", "lin", "ang", "kb")


def clip_part(ms: MotionSet, c: int, rows: dict, duration_s: float, dt: float = robot.CONTROL_PERIOD_S) -> dict:
    """One clip's TrackingRecord fields (no time axis) from its recorded ``rows`` (:data:`ROW_KEYS` lists:
    global reference frame index, joint positions, root position / quaternion / world velocities, key
    bodies per tick), the reference read from ``ms`` at those frames."""
    idx = np.array(rows["ref_idx"])
    n = len(idx)
    return dict(
        motion_name=[ms.names[c]] * n, clip_time_s=(idx - ms.start[c]) * dt, clip_duration_s=np.full(n, duration_s),
        ref_joint_pos=ms.joint_pos[idx], ref_root_pos=ms.root_pos[idx], ref_root_quat=ms.root_quat_wxyz[idx],
        ref_root_lin_vel=ms.root_lin_vel[idx], ref_root_ang_vel=ms.root_ang_vel[idx],
        ref_key_body_pos=ms.key_body_pos[idx], joint_pos=np.array(rows["q"]), root_pos=np.array(rows["root_pos"]),
        root_quat=np.array(rows["root_quat"]), root_lin_vel=np.array(rows["lin"]),
        root_ang_vel=np.array(rows["ang"]), key_body_pos=np.array(rows["kb"]))


def clip_parts_metrics(parts: list[dict], key_body_names) -> dict:
    """``g1_bringup.metrics.compute_metrics`` over per-clip tick arrays (``parts``: one dict per clip with
    the TrackingRecord fields but the time axis), one clip after another."""
    cat = {k: (sum((p[k] for p in parts), []) if k == "motion_name" else
               np.concatenate([np.asarray(p[k], dtype=np.float64) for p in parts])) for k in parts[0]}
    n = len(cat["motion_name"])
    rec = TrackingRecord(t_s=np.arange(n) * robot.CONTROL_PERIOD_S, dt_s=robot.CONTROL_PERIOD_S,
                         playing=np.ones(n, dtype=bool), key_body_names=tuple(key_body_names), **cat)
    metrics = compute_metrics(rec)
    metrics.pop("_per_tick", None)
    return metrics


# --- split tables (g1-train eval --split, scripts/track_clips.py) ---------------------------------------

def split_summary(report: dict) -> dict:
    """Success count, mean completion and E_mpkpe (median over the clips that played frames; tick-weighted
    overall) of one split's metrics (``compute_metrics``' or ``g1 eval``'s report: ``per_clip`` +
    ``overall``)."""
    clips = report["per_clip"]

    def median(key: str) -> float | None:
        v = [float(c[key]) for c in clips if c.get(key) is not None and np.isfinite(c[key])]
        return float(np.median(v)) if v else None

    return {"clips": len(clips), "successes": int(sum(bool(c["success"]) for c in clips)),
            "success_rate": float(np.mean([bool(c["success"]) for c in clips])) if clips else None,
            "completion_mean": float(np.mean([c["completion"] for c in clips])) if clips else None,
            "E_mpkpe_median_mm": median("E_mpkpe_mm"),
            "E_mpkpe_overall_mm": report.get("overall", {}).get("E_mpkpe_mm"),
            # how much of it is the pelvis in the wrong place (reports from before these keys: None)
            "E_root_xy_median_mm": median("E_root_xy_mm"),
            "root_xy_at_start_median_mm": median("root_xy_at_start_mm")}


def _fmt(v, spec: str) -> str:
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def markdown_tables(splits: dict[str, dict], title: str) -> str:
    """Markdown: a summary row per split, then one row per clip. ``splits`` = {name: report}."""
    lines = [f"# {title}", "", "| split | clips | success | mean completion | median E_mpkpe mm | overall E_mpkpe mm | "
             "median E_root_xy mm | median root xy at start mm |", "|---|---|---|---|---|---|---|---|"]
    for name, rep in splits.items():
        s = split_summary(rep)
        lines.append(f"| {name} | {s['clips']} | {s['successes']}/{s['clips']} | {_fmt(s['completion_mean'], '.3f')} | "
                     f"{_fmt(s['E_mpkpe_median_mm'], '.1f')} | {_fmt(s['E_mpkpe_overall_mm'], '.1f')} | "
                     f"{_fmt(s['E_root_xy_median_mm'], '.1f')} | {_fmt(s['root_xy_at_start_median_mm'], '.1f')} |")
    lines += ["", "| split | clip | success | completion | E_mpkpe mm | E_root_xy mm |", "|---|---|---|---|---|---|"]
    for name, rep in splits.items():
        for c in rep["per_clip"]:
            lines.append(f"| {name} | {c['motion']} | {'yes' if c['success'] else 'no'} | "
                         f"{_fmt(c['completion'], '.3f')} | {_fmt(c.get('E_mpkpe_mm'), '.1f')} | "
                         f"{_fmt(c.get('E_root_xy_mm'), '.1f')} |")
    return "\n".join(lines) + "\n"
