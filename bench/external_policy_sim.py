"""Does a policy trained elsewhere track in OUR simulator as it is? (no ROS: the same cores, one process)

    .venv/bin/python bench/external_policy_sim.py ../shared/data/policies/mjlab_B_Fence1/B_Fence1.onnx
        [--clip-s 35] [--base-lin-vel zero|odometry] [--sidecar FILE] [--command-frame next|current]

The simulator core of g1_sim (MuJoCo, 500 Hz Python PD on the policy's own kp/kd, per-motor armature),
motion_server's ReferencePlayer playing the policy's embedded motion (re-anchored, 2 s blend-in from
the stand), and the policy node's external controller, tick by tick. Prints E_mpkpe (world, mm), the
root-relative key-body error and whether/when it fell (0.25 m height / 1.0 rad tilt rules of
g1_bringup.metrics); last line JSON. ``--command-frame current`` feeds the frame at the current clip
time instead of the next one (the node's choice), to show why the node uses the next frame.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np

from g1_description import robot
from g1_hardware.sim_core import MotorCommand, MujocoG1
from g1_tracker_policy import external
from g1_tracker_policy.controllers import RobotState
from g1_tracker_policy.external_controller import ExternalPolicyController
from g1_tracker_policy.observation import quat_to_rotmat
from motion_server.importers import import_motion
from motion_server.player import Pose, ReferencePlayer
from motion_server.reference import WindowState


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("policy")
    ap.add_argument("--sidecar", default=None)
    ap.add_argument("--clip-s", type=float, default=0.0, help="stop after this much clip time (0: the whole clip)")
    ap.add_argument("--base-lin-vel", default="zero", choices=external.BASE_LIN_VEL_SOURCES)
    ap.add_argument("--command-frame", default="next", choices=("next", "current"))
    ap.add_argument("--stand-s", type=float, default=2.0)
    ap.add_argument("--reanchor", default="blend_end", choices=("blend_start", "blend_end"),
                    help="motion_server's reanchor_at (g1 track uses blend_end for embedded motions)")
    args = ap.parse_args()

    art = external.load_external(args.policy, args.sidecar, base_lin_vel=args.base_lin_vel)
    ctrl = ExternalPolicyController(art)
    motion = import_motion(art.path, sidecar=args.sidecar).motion
    sim = MujocoG1()
    player = ReferencePlayer(blend_in_s=2.0, reanchor_after_blend=args.reanchor == "blend_end")
    zeros = np.zeros(robot.NUM_JOINTS)
    dt = robot.CONTROL_PERIOD_S
    sim.set_command(MotorCommand.hold(robot.DEFAULT_JOINT_POS))
    for _ in range(int(args.stand_s / dt)):
        sim.step_tick()
    t0 = sim.sim_time_s
    player.set_robot_pose(Pose(sim.joint_positions, sim.ground_truth().position, sim.ground_truth().quat_wxyz))
    player.play(motion)
    last_action = ctrl.observe_command(robot.DEFAULT_JOINT_POS)
    end_clip_s = args.clip_s or motion.duration_s
    err, rel, dz, err_xy, fell_at, ticks, start_offset = [], [], [], [], None, 0, None
    wall = time.perf_counter()
    pending = None  # (window of the previous tick): its next frame is the pose for this tick
    while True:
        t = sim.sim_time_s
        gt, imu = sim.ground_truth(), sim.imu()
        q, dq = sim.joint_positions, sim.joint_velocities
        if pending is not None and pending.state == WindowState.PLAYING:
            ref_bodies, bodies = pending.key_body_pos[0], gt.key_body_positions
            err.append(np.linalg.norm(bodies - ref_bodies, axis=1).mean())
            if not err_xy:
                start_offset = (gt.position - pending.root_pos[0]).round(3).tolist()
            dz.append(float(np.mean(bodies[:, 2] - ref_bodies[:, 2])))
            err_xy.append(np.linalg.norm(bodies[:, :2] - ref_bodies[:, :2], axis=1).mean())
            rel.append(np.linalg.norm((bodies - bodies[0]) - (ref_bodies - ref_bodies[0]), axis=1).mean())
            up = quat_to_rotmat(gt.quat_wxyz)[:, 2] @ quat_to_rotmat(pending.root_quat_wxyz[0])[:, 2]
            if abs(gt.position[2] - pending.root_pos[0][2]) > 0.25 or np.arccos(np.clip(up, -1, 1)) > 1.0:
                fell_at = pending.clip_time_s
                break
            if pending.clip_time_s >= end_clip_s - 1e-9:
                break
        player.set_robot_pose(Pose(q, gt.position, gt.quat_wxyz))
        window = player.window(t - t0)
        obs_window = window
        if args.command_frame == "current":
            shifted = player.window(t - t0 - dt)  # its next frame is this tick's frame
            obs_window = dataclasses.replace(window, joint_pos=shifted.joint_pos, joint_vel=shifted.joint_vel,
                                             root_pos=shifted.root_pos, root_quat_wxyz=shifted.root_quat_wxyz,
                                             times_s=shifted.times_s)
        state = RobotState(q, dq, imu.quat_wxyz, imu.angular_velocity, gt.position, gt.linear_velocity)
        out = ctrl.compute(state, obs_window, last_action)
        last_action = out.action
        target = np.clip(out.position, robot.JOINT_LOWER, robot.JOINT_UPPER)
        sim.set_command(MotorCommand(target, zeros, out.kp, out.kd, zeros))
        sim.step_tick()
        pending = window
        ticks += 1
    wall = time.perf_counter() - wall
    result = {"policy": art.name, "format": art.format, "clip_s_tracked": round(float(pending.clip_time_s), 2),
              "clip_s": round(motion.duration_s, 2),
              "fell_at_clip_s": None if fell_at is None else round(float(fell_at), 2),
              "E_mpkpe_mm": round(float(np.mean(err)) * 1e3, 1) if err else None,
              "root_relative_mm": round(float(np.mean(rel)) * 1e3, 1) if rel else None,
              "horizontal_mm": round(float(np.mean(err_xy)) * 1e3, 1) if err else None,
              "mean_height_offset_mm": round(float(np.mean(dz)) * 1e3, 1) if dz else None,
              "pelvis_offset_at_play_start_m": start_offset, "base_lin_vel": args.base_lin_vel,
              "reanchor": args.reanchor, "command_frame": args.command_frame,
              "sim_rtf": round(ticks * dt / wall, 1)}
    print(f"{art.name}: tracked {result['clip_s_tracked']} of {result['clip_s']} s clip, "
          f"{'fell at ' + str(result['fell_at_clip_s']) + ' s' if fell_at is not None else 'no fall'}, "
          f"E_mpkpe {result['E_mpkpe_mm']} mm, root-relative {result['root_relative_mm']} mm")
    if err_xy:  # how the horizontal error develops: per fifth of the tracked clip
        fifths = np.array_split(np.array(err_xy) * 1e3, 5)
        result["horizontal_mm_by_fifth"] = [round(float(np.mean(f)), 1) for f in fifths]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
