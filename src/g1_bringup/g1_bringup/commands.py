"""`g1 eval`, `g1 record`, `g1 play`: the bag and graph tools of the bringup package."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _join_sim_graph_dds() -> None:
    """Commands that attach to a running graph use its DDS settings: a `g1 track` / launch simulation
    graph's by default (g1_bringup.graph.dds_settings), the user's ROS_DOMAIN_ID /
    ROS_AUTOMATIC_DISCOVERY_RANGE when set (a robot graph: export ROS_DOMAIN_ID=0)."""
    import os

    from .graph import dds_settings

    os.environ.update(dds_settings("sim").env)


# --- g1 eval -------------------------------------------------------------------------------------

def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bag", type=Path, help="rosbag2 directory (metadata.yaml + .mcap)")
    parser.add_argument("--out", type=Path, help="report directory (default: BAG/../report)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run_eval(args: argparse.Namespace) -> int:
    from .evaluation import EvalError, evaluate_bag

    out = args.out or args.bag.parent / "report"
    t0 = time.perf_counter()
    try:
        report = evaluate_bag(args.bag, out, plots=not args.no_plots)
    except (EvalError, FileNotFoundError) as exc:
        print(f"g1 eval: {exc}", file=sys.stderr)
        return 1
    o = report["overall"]
    print(json.dumps({k: o.get(k) for k in ("clips", "success_rate", "completion", "E_mpkpe_mm", "E_mpjpe_rad",
                                               "E_vel_mps", "E_yaw_vel_rads")}))
    print(f"report: {out / 'report.md'} ({time.perf_counter() - t0:.2f} s)", file=sys.stderr)
    return 0


# --- g1 record -----------------------------------------------------------------------------------

def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-o", "--output", type=Path, required=True, help="bag directory to create")
    parser.add_argument("--topics", nargs="*", help="topics to record (default: all tracking topics)")


def run_record(args: argparse.Namespace) -> int:
    from . import recorder

    _join_sim_graph_dds()
    ros_args = ["--ros-args", "-p", f"output:={args.output}"]
    if args.topics:
        ros_args += ["-p", f"topics:=[{','.join(args.topics)}]"]
    return recorder.main(args=[sys.argv[0], *ros_args])


# --- g1 play -------------------------------------------------------------------------------------

def add_play_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", help="motion name (omit with --list or --stop)")
    parser.add_argument("--loop", action="store_true")
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--start", type=float, default=0.0, help="start time in the clip (s)")
    parser.add_argument("--enqueue", action="store_true", help="queue behind the current motion")
    parser.add_argument("--stop", action="store_true", help="call /stop_motion instead")
    parser.add_argument("--list", action="store_true", help="call /list_motions instead")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the service")


def run_play(args: argparse.Namespace) -> int:
    """The pip world's `ros2 service call /play_motion ...` against a running graph."""
    import rclpy
    from rclpy.node import Node

    from g1_common import topics
    from g1_interfaces.srv import ListMotions, PlayMotion, StopMotion

    if not (args.name or args.stop or args.list):
        print("g1 play: give a motion name, --stop or --list", file=sys.stderr)
        return 2
    _join_sim_graph_dds()
    rclpy.init()
    node = Node("g1_play")
    try:
        if args.list:
            srv, name, req = ListMotions, topics.LIST_MOTIONS, ListMotions.Request()
        elif args.stop:
            srv, name, req = StopMotion, topics.STOP_MOTION, StopMotion.Request()
        else:
            srv, name = PlayMotion, topics.PLAY_MOTION
            req = PlayMotion.Request(name=args.name, loop=args.loop, speed=args.speed,
                                     start_time_s=args.start, enqueue=args.enqueue)
        client = node.create_client(srv, name)
        if not client.wait_for_service(timeout_sec=args.timeout):
            env = __import__("os").environ
            print(f"g1 play: no /{name} service within {args.timeout} s: is a graph running on ROS_DOMAIN_ID="
                  f"{env.get('ROS_DOMAIN_ID')} (discovery {env.get('ROS_AUTOMATIC_DISCOVERY_RANGE')})? A robot "
                  "graph runs on the robot's domain: export ROS_DOMAIN_ID=0", file=sys.stderr)
            return 1
        future = client.call_async(req)
        rclpy.spin_until_future_complete(node, future, timeout_sec=args.timeout)
        if not future.done():
            print(f"g1 play: /{name} did not answer within {args.timeout} s", file=sys.stderr)
            return 1
        res = future.result()
        if args.list:
            for n, d, f in zip(res.names, res.durations_s, res.fps):
                print(f"{n:<40} {d:8.2f} s  {f:5.1f} fps")
            return 0
        print(res.message or ("ok" if res.success else "failed"))
        return 0 if res.success else 1
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
