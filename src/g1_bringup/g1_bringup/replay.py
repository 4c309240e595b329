"""`g1 replay BAG --policy FILE`: feed a bag's recorded observations through another policy, open loop,
and report how its joint targets differ from the commands that were recorded.

A regression check between policy versions: replaying a run through the policy that produced it gives
zero difference (up to float32 rounding); a retrained policy shows where and how much it changed.
Only ticks whose recorded command came from the controller (source POLICY, i.e. tracking after the
ramp-in) are compared; the policy's state (observation history, transformer context) is reset at the
start of each such segment, as the node does at track start. The "last action" input is taken from the
recorded commands, so every tick sees exactly what the robot saw.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from g1_common import conversions, topics
from g1_description import robot



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory recorded by g1 track / g1 record")
    parser.add_argument("--policy", required=True, type=Path, help="policy artifact (.onnx) to replay")
    parser.add_argument("--out", type=Path, help="write the JSON result here too")


def replay(bag: Path, policy: Path) -> dict:
    from g1_tracker_policy.controllers import PolicyController, RobotState
    from g1_tracker_policy.safety import Mode

    from .evaluation import EvalError, _by_tick, as_window, read_bag
    from g1_common.ticks import CONTROL_PERIOD_NS

    raw = read_bag(bag, wanted_topics=(topics.JOINT_STATES, topics.IMU, topics.REFERENCE_WINDOW,
                                       topics.JOINT_COMMAND, topics.TRACKING_STATUS, topics.GROUND_TRUTH_ODOM,
                                       topics.GROUND_TRUTH_KEY_BODIES))
    for t in (topics.IMU, topics.JOINT_COMMAND, topics.TRACKING_STATUS):
        if t not in raw:
            raise EvalError(f"{bag}: replay needs the topic {t!r}, which the bag lacks")
    from g1_tracker_policy import external

    artifact = external.load_policy(policy)  # ours, or an mjlab / holosoma export
    if isinstance(artifact, external.ExternalArtifact):
        from g1_tracker_policy.external_controller import ExternalPolicyController

        controller = ExternalPolicyController(artifact)
    else:
        controller = PolicyController(artifact)
    # the odometry such a policy observes (its position): the simulator's ground truth, as in the run
    odoms = _by_tick(raw.get(topics.GROUND_TRUTH_ODOM, []), CONTROL_PERIOD_NS)
    states, imus = _by_tick(raw[topics.JOINT_STATES], CONTROL_PERIOD_NS), _by_tick(raw[topics.IMU], CONTROL_PERIOD_NS)
    windows = _by_tick(raw[topics.REFERENCE_WINDOW], CONTROL_PERIOD_NS)
    commands = _by_tick(raw[topics.JOINT_COMMAND], CONTROL_PERIOD_NS)
    status = _by_tick(raw[topics.TRACKING_STATUS], CONTROL_PERIOD_NS)
    from g1_interfaces.msg import JointCommand

    ticks = sorted(k for k in commands if k in states and k in imus and k in windows and k in status
                   and status[k].mode == Mode.TRACK and commands[k].source == JointCommand.SOURCE_POLICY)
    if not ticks:
        raise EvalError(f"{bag}: no tick where a policy was tracking (mode TRACK, command source POLICY); "
                        "a baseline run has nothing to replay")
    diffs, prev = [], None
    last_action = np.zeros(robot.NUM_JOINTS)
    for k in ticks:
        if prev is None or k != prev + 1:  # a new tracking segment: fresh policy state
            controller.reset()
            last_action = controller.observe_command(
                conversions.joint_command_to_arrays(commands[k - 1])["position"],
                as_window(windows[k - 1]) if k - 1 in windows else None) if k - 1 in commands \
                else np.zeros(robot.NUM_JOINTS)
        q, dq, _ = conversions.joint_state_to_arrays(states[k])
        quat, gyro, _ = conversions.imu_to_arrays(imus[k])
        window = as_window(windows[k])
        pos = lin = None
        if k in odoms:
            o = odoms[k]
            pos = np.array([o.pose.pose.position.x, o.pose.pose.position.y, o.pose.pose.position.z])
            lin = np.array([o.twist.twist.linear.x, o.twist.twist.linear.y, o.twist.twist.linear.z])
        out = controller.compute(RobotState(q, dq, quat, gyro, pos, lin), window, last_action)
        recorded = conversions.joint_command_to_arrays(commands[k])["position"]
        # the recorded command went through the sanitiser, which keeps targets inside the joint limits
        diffs.append(np.clip(out.position, robot.JOINT_LOWER, robot.JOINT_UPPER) - recorded)
        # the node fed back the policy's own (unclipped) action: do the same while the replay agrees with
        # the recording (float32 on the wire), else recover it from the recorded command
        agrees = np.max(np.abs(diffs[-1])) < 1e-4
        last_action = (np.asarray(out.action, dtype=np.float64) if agrees
                       else controller.observe_command(recorded, window))
        prev = k
    d = np.abs(np.array(diffs))
    worst = np.argsort(d.mean(axis=0))[::-1][:5]
    return {
        "bag": str(bag), "policy": str(policy), "ticks_compared": len(ticks),
        "recorded_controller": status[ticks[0]].controller,
        "target_diff_rad_mean": float(d.mean()), "target_diff_rad_p99": float(np.percentile(d, 99)),
        "target_diff_rad_max": float(d.max()),
        "worst_joints": {robot.JOINT_NAMES[i]: float(d[:, i].mean()) for i in worst},
    }


def run(args: argparse.Namespace) -> int:
    from g1_tracker_policy import contract

    from .evaluation import EvalError

    if not args.policy.is_file():
        print(f"g1 replay: policy file {args.policy} does not exist", file=sys.stderr)
        return 2
    try:
        result = replay(args.bag, args.policy)
    except (EvalError, contract.ContractError) as exc:
        print(f"g1 replay: {exc}", file=sys.stderr)
        return 1
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)
    return 0
