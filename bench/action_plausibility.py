"""Measure what a sane controller's joint targets look like, to justify the action-plausibility limits of
the safety state machine (g1_tracker_policy.safety, parameters ``action_*`` in config/policy.yaml).

Two sources:
1. every G1-Moves clip, imported at 50 Hz (no simulation): the reference's per-tick joint change, i.e.
   what the pass-through baseline commands and what a residual policy's base moves by per tick;
2. the shipped policy run through ``g1 track`` (lockstep MuJoCo) on a few clips, then replayed open
   loop from the bag to get its RAW joint targets (before the command sanitiser clips them), with the
   quantities the safety check bounds (per joint, worst joint per tick):
   - ``beyond_limits``: how far the raw target lies outside the joint range;
   - ``step``: min(|target change|, |change of target - reference|) per tick (a sane controller either
     moves smoothly or follows the reference, whose mocap data jumps by up to 1.57 rad in one tick);
   - ``offset``: min(|target - reference next frame|, |target - measured pose|);
   step and offset on the target clipped to the joint range (what the robot is sent);
   and, for information, each distance alone and the largest |action|.

    .venv/bin/python bench/action_plausibility.py [--clips B_HandsUp,B_Fence2,...] [--keep DIR]
    .venv/bin/python bench/action_plausibility.py --tick-cost   # what the checks add to a tick, nothing else

Last line: a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# bench/motion_server.py would shadow the motion_server package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

REPO = Path(__file__).resolve().parent.parent
MOVES = Path(os.environ.get("G1_SHARED_DIR", REPO.parent / "shared")) / "data" / "motions" / "g1_moves"
DEFAULT_CLIPS = "default,B_HandsUp,B_Fence2,J_ShortDance15_Nineties,M_ShortMove14,B_DadDance"


def reference_steps() -> dict:
    from motion_server.importers import import_motion

    worst = {"step_rad": 0.0, "clip": "", "joint": ""}
    per_clip = {}
    from g1_description import robot

    for csv in sorted(MOVES.rglob("*.csv")):
        q = import_motion(csv).motion.joint_pos
        step = np.abs(np.diff(q, axis=0))
        per_clip[csv.stem] = float(step.max())
        if step.max() > worst["step_rad"]:
            j = int(np.unravel_index(int(np.argmax(step)), step.shape)[1])
            worst = {"step_rad": float(step.max()), "clip": csv.stem, "joint": robot.JOINT_NAMES[j]}
    vals = np.array(list(per_clip.values()))
    return {"clips": len(per_clip), "max_step_rad": worst, "median_clip_max_step_rad": float(np.median(vals))}


def track(out: Path, library: Path, clip: str, policy: Path) -> None:
    motion = [] if clip == "default" else ["--motion", str(next(MOVES.rglob(f"{clip}.csv")))]
    subprocess.run([sys.executable, "-m", "g1_bringup.cli", "track", "--out", str(out), "--quiet", "--library",
                    str(library), "--policy", str(policy), *motion],
                   check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def replay_raw(bag: Path, policy: Path, until_clip_time_s: float | None = None) -> dict:
    """Open-loop replay of the policy ticks of ``bag`` (as g1 replay does), keeping the raw targets."""
    from g1_bringup.evaluation import _by_tick, as_window, read_bag
    from g1_common import conversions, topics
    from g1_common.ticks import CONTROL_PERIOD_NS
    from g1_description import robot
    from g1_interfaces.msg import JointCommand
    from g1_tracker_policy import contract
    from g1_tracker_policy.controllers import PolicyController, RobotState
    from g1_tracker_policy.safety import Mode

    raw = read_bag(bag, wanted_topics=(topics.JOINT_STATES, topics.IMU, topics.REFERENCE_WINDOW,
                                       topics.JOINT_COMMAND, topics.TRACKING_STATUS))
    ctrl = PolicyController(contract.load_artifact(policy))
    st, imu, win, cmd, status = (_by_tick(raw[t], CONTROL_PERIOD_NS) for t in (
        topics.JOINT_STATES, topics.IMU, topics.REFERENCE_WINDOW, topics.JOINT_COMMAND, topics.TRACKING_STATUS))
    ticks = sorted(k for k in cmd if k in st and k in imu and k in win and k in status
                   and status[k].mode == Mode.TRACK and cmd[k].source == JointCommand.SOURCE_POLICY)
    steps, steps_abs, ref_d, pose_d, offsets, beyond, act = [], [], [], [], [], [], []
    pre = {"step_rad": [], "offset_rad": [], "beyond_limits_rad": []}  # before the run's termination
    prev_k, prev_target, prev_ref, last_action = None, None, None, np.zeros(robot.NUM_JOINTS)
    for k in ticks:
        if prev_k is None or k != prev_k + 1:
            ctrl.reset()
            prev_target = conversions.joint_command_to_arrays(cmd[k - 1])["position"] if k - 1 in cmd else None
            prev_ref = as_window(win[k - 1]).joint_pos[0] if k - 1 in win else None
            last_action = ctrl.observe_command(prev_target, as_window(win[k - 1])) \
                if prev_target is not None and k - 1 in win else np.zeros(robot.NUM_JOINTS)
        q, dq, _ = conversions.joint_state_to_arrays(st[k])
        quat, gyro, _ = conversions.imu_to_arrays(imu[k])
        w = as_window(win[k])
        out = ctrl.compute(RobotState(q, dq, quat, gyro), w, last_action)
        ref = w.joint_pos[0]
        tc = np.clip(out.position, robot.JOINT_LOWER, robot.JOINT_UPPER)
        before = until_clip_time_s is None or w.clip_time_s < until_clip_time_s
        if prev_target is not None:
            d_abs = np.abs(tc - prev_target)
            d_rel = d_abs if prev_ref is None else np.abs((tc - ref) - (prev_target - prev_ref))
            steps.append(np.minimum(d_abs, d_rel).max())
            steps_abs.append(d_abs.max())
            if before:
                pre["step_rad"].append(steps[-1])
        ref_d.append(np.abs(out.position - ref).max())
        pose_d.append(np.abs(out.position - q).max())
        offsets.append(np.minimum(np.abs(tc - ref), np.abs(tc - q)).max())
        beyond.append(np.maximum(np.maximum(out.position - robot.JOINT_UPPER, robot.JOINT_LOWER - out.position),
                                 0.0).max())
        if before:
            pre["offset_rad"].append(offsets[-1])
            pre["beyond_limits_rad"].append(beyond[-1])
        act.append(np.abs(out.action).max())
        recorded = conversions.joint_command_to_arrays(cmd[k])["position"]
        # what the safety check compares with next tick: the command actually sent (sanitised)
        prev_target, prev_ref, prev_k = recorded, ref, k
        last_action = ctrl.observe_command(recorded, w)

    def stats(x):
        x = np.asarray(x)
        return {"max": float(x.max()), "p99": float(np.percentile(x, 99))} if x.size else {}
    return {"policy_ticks": len(ticks), "step_rad": stats(steps), "offset_rad": stats(offsets),
            "beyond_limits_rad": stats(beyond), "target_step_abs_rad": stats(steps_abs),
            "target_from_reference_rad": stats(ref_d), "target_from_measured_rad": stats(pose_d),
            "abs_action": stats(act), "before_termination": {k: stats(v) for k, v in pre.items()}}


def tick_cost(n: int = 5000) -> dict:
    """SafetyStateMachine.tick in TRACK with a controller output, checks on vs off (median us per tick)."""
    import time

    from g1_description import robot
    from g1_tracker_policy.controllers import ControllerOutput
    from g1_tracker_policy.safety import Mode, SafetyConfig, SafetyStateMachine, TickInputs
    from g1_tracker_policy.testing import standing_window

    q0 = np.asarray(robot.DEFAULT_JOINT_POS)
    window = standing_window()
    out = ControllerOutput(q0 + 0.05, robot.STAND_KP, robot.STAND_KD, np.zeros(robot.NUM_JOINTS))
    result = {}
    quick = dict(stand_ramp_s=0.0, track_ramp_s=0.0, auto_stand=True, auto_track=True)  # TRACK from tick 2
    for label, cfg in (("checks_on", SafetyConfig(**quick)), ("checks_off", SafetyConfig(
            **quick, action_max_beyond_limits_rad=0, action_max_step_rad=0, action_max_offset_rad=0))):
        sm, times = SafetyStateMachine(cfg), []
        for i in range(n):
            inp = TickInputs(now_s=i * 0.02, joint_pos=q0, joint_vel=np.zeros(29), state_time_s=i * 0.02,
                             base_quat_wxyz=np.array([1.0, 0, 0, 0]), window=window, reference_time_s=i * 0.02)
            t = time.perf_counter()
            r = sm.tick(inp, lambda: out)
            if i >= 5:
                times.append(time.perf_counter() - t)
                assert r.mode == Mode.TRACK and r.ran_controller, r.detail
        result[label + "_us_median"] = float(np.median(times) * 1e6)
        result[label + "_us_p99"] = float(np.percentile(times, 99) * 1e6)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", default=DEFAULT_CLIPS, help="'default' = the embedded squat; G1-Moves names")
    parser.add_argument("--keep", type=Path, help="keep the runs in this directory")
    parser.add_argument("--policy", type=Path, help="policy artifact (default: the shipped default.onnx; the "
                        "action_* defaults were measured on policies/squat_handsup.onnx)")
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument("--tick-cost", action="store_true", help="only time the state machine's tick")
    args = parser.parse_args()
    if args.tick_cost:
        r = tick_cost()
        print(f"SafetyStateMachine.tick in TRACK: checks on {r['checks_on_us_median']:.1f} us median "
              f"({r['checks_on_us_p99']:.1f} p99), off {r['checks_off_us_median']:.1f} us "
              f"({r['checks_off_us_p99']:.1f} p99)")
        print(json.dumps(r))
        return
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randrange(20, 200)))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    from g1_bringup import shipped

    result = {}
    if not args.skip_reference:
        result["reference"] = reference_steps()
        print(f"reference (all G1-Moves clips at 50 Hz): {json.dumps(result['reference'])}", flush=True)
    policy = args.policy or shipped.default_policy()
    if policy is None or not Path(policy).is_file():
        raise SystemExit(f"action_plausibility: no policy file {policy}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="g1-plausibility-"))
    result["policy"] = str(policy)
    result["runs"] = {}
    for clip in [c for c in args.clips.split(",") if c]:
        out = root / clip
        if not (out / "bag" / "metadata.yaml").is_file():
            track(out, root / "library", clip, policy)
        rep = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
        per_clip = (rep.get("per_clip") or [{}])[0]
        r = replay_raw(out / "bag", policy, per_clip.get("terminated_at_clip_time_s"))
        r["success"], r["termination"] = per_clip.get("success"), per_clip.get("termination")
        r["terminated_at_clip_time_s"] = per_clip.get("terminated_at_clip_time_s")
        result["runs"][clip] = r
        print(f"{clip}: {json.dumps(r)}", flush=True)
    keys = ("step_rad", "offset_rad", "beyond_limits_rad", "target_step_abs_rad", "target_from_reference_rad",
            "target_from_measured_rad", "abs_action")
    result["overall_max"] = {k: max(r[k]["max"] for r in result["runs"].values() if r[k]) for k in keys}
    result["overall_max_before_termination"] = {
        k: max(r["before_termination"][k]["max"] for r in result["runs"].values() if r["before_termination"][k])
        for k in ("step_rad", "offset_rad", "beyond_limits_rad")}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
