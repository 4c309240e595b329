#!/usr/bin/env python3
"""Lockstep real-time factor of g1_sim with its peers, bit-identical reruns, and real-time step lateness.

Runs the simulator node as its own process in lockstep (publishing joint_states, imu, ground truth and
/clock every tick) with a set of lockstep peer processes, ``--runs`` times with the same seed, and
reports the real-time factor measured by the simulator (sim time / wall time from t=0 to the end), and
whether every run ended in the same state (sha256 of qpos/qvel). Then runs the real-time mode and reports
the lateness of its 500 Hz physics steps against their absolute deadlines.

Peers (default: the minimal command-echo peer) are given as NAME=MODULE [ROS args...], e.g. once the
policy and motion server exist:
  bench/sim_rtf.py --peer "motion_server=motion_server.node" --peer "g1_tracker_policy=g1_tracker_policy.node"
Every peer gets use_sim_time:=true and must take part in the g1/ready handshake (docs/lockstep.md).

Last line: a JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def parse_peer(spec: str) -> tuple[str, list[str]]:
    name, _, rest = spec.partition("=")
    words = shlex.split(rest)
    if not name or not words:
        raise argparse.ArgumentTypeError(f"--peer {spec!r}: use NAME=MODULE [ROS args]")
    return name, words


def start(args: list[str], log: Path, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *args], stdout=log.open("w"), stderr=subprocess.STDOUT, env=env,
                            cwd=REPO, start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def run_sim(sim_params: list[str], peers, peer_sim_time: bool, workdir: Path, tag: str, timeout_s: float) -> dict:
    """One simulator run with its peers in a fresh DDS domain; returns the simulator's summary."""
    env = {**os.environ, "ROS_DOMAIN_ID": str(random.randrange(20, 200)),
           "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST", "PYTHONUNBUFFERED": "1"}
    summary = workdir / f"{tag}.json"
    procs = []
    try:
        for name, (module, *ros_args) in peers:
            sim_time = ["-p", f"use_sim_time:={'true' if peer_sim_time else 'false'}"]
            procs.append(start(["-m", module, "--ros-args", *sim_time, *ros_args], workdir / f"{tag}-{name}.log", env))
        sim = start(["-m", "g1_hardware.sim_node", "--ros-args", "-p", f"final_state_file:={summary}", *sim_params],
                    workdir / f"{tag}-sim.log", env)
        procs.append(sim)
        try:
            sim.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise SystemExit(f"{tag}: the simulator did not finish in {timeout_s} s; logs in {workdir}") from None
        if sim.returncode != 0 or not summary.is_file():
            raise SystemExit(f"{tag}: the simulator failed (exit {sim.returncode}):\n"
                             + (workdir / f"{tag}-sim.log").read_text()[-3000:])
        return json.loads(summary.read_text())
    finally:
        for proc in procs:
            stop(proc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sim-seconds", type=float, default=30.0, help="lockstep run length in sim time")
    ap.add_argument("--runs", type=int, default=3, help="lockstep runs (same seed) for the median and determinism")
    ap.add_argument("--realtime-seconds", type=float, default=10.0, help="real-time mode run length (0: skip)")
    ap.add_argument("--peer", action="append", type=parse_peer, default=None,
                    help="NAME=MODULE [ROS args]; default: command_echo=g1_hardware.command_echo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare-executor", action="store_true",
                    help="also run lockstep with the simulator on a SingleThreadedExecutor")
    args = ap.parse_args()
    peers = args.peer or [parse_peer("command_echo=g1_hardware.command_echo -p wave_amplitude_rad:=0.15 "
                                     "-p feedback_gain:=0.01")]
    names = [name for name, _ in peers]
    workdir = Path(tempfile.mkdtemp(prefix="sim_rtf_"))
    common = ["-p", f"seed:={args.seed}", "-p", "randomize:=true"]

    lockstep = []
    for run in range(args.runs):
        params = [*common, "-p", "mode:=lockstep", "-p", f"duration_s:={args.sim_seconds}",
                  "-p", f"ready_peers:=[{','.join(names)}]"]
        s = run_sim(params, peers, True, workdir, f"lockstep{run}", 60 + 10 * args.sim_seconds)
        lockstep.append(s)
        print(f"lockstep run {run}: {s['sim_time_s']:.1f} s sim in {s['wall_s']:.2f} s wall = "
              f"{s['real_time_factor']:.2f}x real time, command timeouts {s['command_timeouts']}, "
              f"state {s['state_sha256'][:16]}, pelvis {s['pelvis_height_m']:.3f} m")
    rtfs = [s["real_time_factor"] for s in lockstep]

    single_threaded = None
    if args.compare_executor:
        params = [*common, "-p", "mode:=lockstep", "-p", f"duration_s:={args.sim_seconds}", "-p",
                  f"ready_peers:=[{','.join(names)}]", "-p", "executor:=single_threaded"]
        s = run_sim(params, peers, True, workdir, "lockstep-single", 60 + 10 * args.sim_seconds)
        single_threaded = s["real_time_factor"]
        print(f"lockstep, simulator on SingleThreadedExecutor: {single_threaded:.2f}x, "
              f"same state: {s['state_sha256'] == lockstep[0]['state_sha256']}")
    bit_identical = len({s["state_sha256"] for s in lockstep}) == 1 and all(s["deterministic"] for s in lockstep)

    realtime = {}
    if args.realtime_seconds > 0:
        params = [*common, "-p", "mode:=realtime", "-p", "initial_command:=stand",
                  "-p", f"duration_s:={args.realtime_seconds}"]
        realtime = run_sim(params, peers, False, workdir, "realtime", 60 + 3 * args.realtime_seconds)
        print(f"realtime: {realtime['sim_time_s']:.1f} s, 500 Hz step lateness p50 "
              f"{realtime['step_lateness_ms_p50']:.3f} ms, p99 {realtime['step_lateness_ms_p99']:.3f} ms, "
              f"max {realtime['step_lateness_ms_max']:.3f} ms, overruns {realtime['overruns']}")

    result = {
        "peers": names, "sim_seconds": args.sim_seconds, "runs": args.runs,
        "lockstep_rtf": statistics.median(rtfs), "lockstep_rtf_runs": [round(r, 2) for r in rtfs],
        "bit_identical": bit_identical,
        "lockstep_rtf_single_threaded_sim": single_threaded,
        "command_timeouts": sum(s["command_timeouts"] for s in lockstep),
        "realtime_step_lateness_ms_p50": realtime.get("step_lateness_ms_p50"),
        "realtime_step_lateness_ms_p99": realtime.get("step_lateness_ms_p99"),
        "realtime_step_lateness_ms_max": realtime.get("step_lateness_ms_max"),
        "realtime_overruns": realtime.get("overruns"),
        "logs": str(workdir),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
