"""Benchmark motion_server: publish-period jitter at 50 Hz, CPU per window, lockstep throughput.

Starts the node as its own process (as deployed) on a private DDS domain and plays a G1-Moves clip on
loop (blend-in, playing, re-anchored loop seams: the normal work).

Real time (``--duration`` s), figures:
- publish period jitter: |stamp_k - stamp_{k-1} - 20 ms| of the window stamps (taken by the node at each
  deadline wake-up: the loop's own timing), and of the arrival times here (adds DDS delivery);
- baseline: the same jitter of a bare sleep-until-deadline loop run alongside, in its own process: what
  the machine allows at the moment (this project's 2-core machines are shared);
- CPU per window: the node process's user+system CPU time over the run / windows published;
- compute per window: ReferencePlayer.window + message conversion, timed in this process.
Lockstep (``--lockstep-ticks``): a second node with use_sim_time; this process publishes joint_states
stamped t_k and waits for the window stamped t_k, as the simulator and policy do: windows/s and CPU.

Usage: .venv/bin/python bench/motion_server.py [--duration 20] [--lockstep-ticks 1000]
Last line: a JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# This file is named like the package it measures: drop bench/ from the path so imports find the package.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randrange(100, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"

import numpy as np  # noqa: E402
import rclpy  # noqa: E402
from rclpy.node import Node  # noqa: E402

from g1_common import conversions, ticks, topics  # noqa: E402
from g1_description import robot  # noqa: E402
from g1_interfaces.msg import ReferenceWindow  # noqa: E402
from g1_interfaces.srv import PlayMotion  # noqa: E402
from motion_server.importers import import_motion  # noqa: E402
from motion_server.library import MotionLibrary  # noqa: E402
from motion_server.player import ReferencePlayer  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
G1_MOVES = Path(os.environ.get("G1_SHARED_DIR", REPO.parent / "shared")) / "data" / "motions" / "g1_moves"

_BASELINE = """
import json, sys, time
import numpy as np
period, n = 20_000_000, int(float(sys.argv[1]) * 50)
deadline, wake = time.monotonic_ns(), []
for _ in range(n):
    deadline += period
    remaining = deadline - time.monotonic_ns()
    if remaining > 0:
        time.sleep(remaining * 1e-9)
    wake.append(time.monotonic_ns())
print(json.dumps(float(np.percentile(np.abs(np.diff(wake) * 1e-6 - 20.0), 99))))
"""


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process and its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(values_ms: np.ndarray) -> dict:
    return {"median": float(np.median(values_ms)), "p99": float(np.percentile(values_ms, 99)),
            "max": float(np.max(values_ms))}


class Server:
    """motion_server in its own process, and this process's peer node talking to it."""

    def __init__(self, library: MotionLibrary, tmp: Path, use_sim_time: bool):
        self.log = tmp / f"motion_server{'_lockstep' if use_sim_time else ''}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "motion_server.node", "--ros-args", "-p", f"library:={library.root}",
             "-p", f"use_sim_time:={'true' if use_sim_time else 'false'}"],
            stdout=self.log.open("w"), stderr=subprocess.STDOUT)
        self.node = Node("motion_server_bench")
        self.received: list[tuple[int, int, int]] = []  # (arrival ns, stamp ns, state)
        self.node.create_subscription(ReferenceWindow, topics.REFERENCE_WINDOW, self._on_window, topics.CONTROL_QOS)

    def _on_window(self, msg: ReferenceWindow) -> None:
        self.received.append((time.monotonic_ns(), ticks.stamp_to_ns(msg.header.stamp), msg.state))

    def play(self, name: str) -> None:
        client = self.node.create_client(PlayMotion, topics.PLAY_MOTION)
        if not client.wait_for_service(timeout_sec=20.0):
            raise SystemExit(f"motion_server did not come up; log: {self.log}")
        future = client.call_async(PlayMotion.Request(name=name, loop=True))
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=10.0)
        print(f"play: {future.result().message}")

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            rclpy.spin_once(self.node, timeout_sec=0.05)

    def close(self) -> None:
        self.node.destroy_node()
        self.proc.terminate()
        self.proc.wait(10)


def real_time(library: MotionLibrary, name: str, tmp: Path, duration_s: float) -> dict:
    server = Server(library, tmp, use_sim_time=False)
    try:
        server.play(name)
        server.spin_for(1.0)  # discovery, first windows
        server.received.clear()
        baseline = subprocess.Popen([sys.executable, "-c", _BASELINE, str(duration_s)], stdout=subprocess.PIPE,
                                    text=True)
        cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        server.spin_for(duration_s)
        cpu1, wall = cpu_seconds(server.proc.pid), time.monotonic() - t0
        baseline_p99_ms = json.loads(baseline.communicate(timeout=30)[0])
    finally:
        server.close()
    arrivals, stamps, states = (np.array(c) for c in zip(*server.received))
    windows = len(stamps)
    stamp_jitter = percentiles(np.abs(np.diff(stamps) * 1e-6 - 20.0))
    arrival_jitter = percentiles(np.abs(np.diff(arrivals) * 1e-6 - 20.0))
    print(f"real time: {windows} windows in {wall:.1f} s = {windows / wall:.2f} Hz "
          f"(states seen: {sorted(set(states.tolist()))})")
    print("  publish period jitter |period - 20 ms| (node stamps): median {median:.3f} ms, p99 {p99:.3f} ms, "
          "max {max:.3f} ms".format(**stamp_jitter))
    print("  arrival period jitter (incl. DDS delivery):          median {median:.3f} ms, p99 {p99:.3f} ms, "
          "max {max:.3f} ms".format(**arrival_jitter))
    print(f"  baseline, a bare sleep-until-deadline loop alongside: p99 {baseline_p99_ms:.3f} ms")
    print(f"  node CPU {(cpu1 - cpu0) / wall * 100:.1f} % of one core = "
          f"{(cpu1 - cpu0) / windows * 1e3:.3f} ms CPU per published window")
    return {"rate_hz": round(windows / wall, 3),
            "publish_period_jitter_p99_ms": round(stamp_jitter["p99"], 4),
            "baseline_sleep_loop_jitter_p99_ms": round(baseline_p99_ms, 4),
            "arrival_period_jitter_p99_ms": round(arrival_jitter["p99"], 4),
            "cpu_per_window_ms": round((cpu1 - cpu0) / windows * 1e3, 4),
            "node_cpu_percent": round((cpu1 - cpu0) / wall * 100, 2)}


def lockstep(library: MotionLibrary, name: str, tmp: Path, num_ticks: int) -> dict:
    """Drive the node as the simulator does: joint_states stamped t_k, wait for the window stamped t_k."""
    server = Server(library, tmp, use_sim_time=True)
    pub = server.node.create_publisher(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    zeros = np.zeros(robot.NUM_JOINTS)

    def tick(k: int) -> None:
        stamp_ns = ticks.tick_to_ns(k)
        pub.publish(conversions.make_joint_state(ticks.stamp_from_ns(stamp_ns), robot.DEFAULT_JOINT_POS, zeros))
        deadline = time.monotonic() + 5.0
        while not (server.received and server.received[-1][1] == stamp_ns):
            if time.monotonic() > deadline:
                raise SystemExit(f"lockstep: no window for tick {k}; log: {server.log}")
            rclpy.spin_once(server.node, timeout_sec=0.01)

    try:
        server.play(name)
        while server.node.count_subscribers(topics.JOINT_STATES) == 0:
            rclpy.spin_once(server.node, timeout_sec=0.05)
        for k in range(1, 51):  # warm-up: discovery settled, request applied
            tick(k)
        cpu0, t0 = cpu_seconds(server.proc.pid), time.monotonic()
        for k in range(51, 51 + num_ticks):
            tick(k)
        cpu1, wall = cpu_seconds(server.proc.pid), time.monotonic() - t0
    finally:
        server.close()
    print(f"lockstep: {num_ticks} ticks in {wall:.2f} s = {num_ticks / wall:.0f} windows/s "
          f"({num_ticks / wall / 50:.1f}x real time, round trip through this process included); "
          f"node CPU {(cpu1 - cpu0) / num_ticks * 1e3:.3f} ms per window")
    return {"lockstep_windows_per_s": round(num_ticks / wall, 1),
            "lockstep_cpu_per_window_ms": round((cpu1 - cpu0) / num_ticks * 1e3, 4)}


def compute_cost(library: MotionLibrary, name: str, num_ticks: int = 1000) -> dict:
    """The per-tick work without DDS: the player's window, and the two ways to put it on the wire and
    read it back - rclpy message objects (window_to_msg + serialize_message / deserialize_message +
    msg_to_window) versus the numpy CDR codec the nodes use (g1_common.window_cdr)."""
    from rclpy.serialization import deserialize_message, serialize_message

    from g1_common import window_cdr
    from g1_interfaces.msg import ReferenceWindow

    player = ReferencePlayer()
    player.play(library.load(name), loop=True)
    ms = {k: [] for k in ("player", "rclpy_encode", "rclpy_decode", "cdr_encode", "cdr_decode")}
    msg = None
    for k in range(num_ticks):
        t0 = time.perf_counter()
        window = player.window(k * robot.CONTROL_PERIOD_S)
        t1 = time.perf_counter()
        msg = conversions.window_to_msg(window, ticks.stamp_from_tick(k), k, out=msg)
        raw = serialize_message(msg)
        t2 = time.perf_counter()
        conversions.msg_to_window(deserialize_message(raw, ReferenceWindow))
        t3 = time.perf_counter()
        raw = window_cdr.encode(window, ticks.tick_to_ns(k), k)
        t4 = time.perf_counter()
        window_cdr.decode(raw)
        t5 = time.perf_counter()
        for key, dt in zip(ms, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            ms[key].append(dt * 1e3)
    med = {k: float(np.median(v)) for k, v in ms.items()}
    print(f"compute per window (in-process, medians): player {med['player']:.3f} ms; on the wire and back: "
          f"rclpy messages {med['rclpy_encode']:.3f} + {med['rclpy_decode']:.3f} ms, numpy CDR codec "
          f"{med['cdr_encode']:.3f} + {med['cdr_decode']:.3f} ms "
          f"({(med['rclpy_encode'] + med['rclpy_decode']) / (med['cdr_encode'] + med['cdr_decode']):.1f}x less)")
    return {"player_per_window_median_ms": round(med["player"], 4),
            "rclpy_encode_median_ms": round(med["rclpy_encode"], 4),
            "rclpy_decode_median_ms": round(med["rclpy_decode"], 4),
            "cdr_encode_median_ms": round(med["cdr_encode"], 4), "cdr_decode_median_ms": round(med["cdr_decode"], 4)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=20.0, help="real-time seconds to record")
    parser.add_argument("--lockstep-ticks", type=int, default=1000, help="lockstep ticks to drive (0: skip)")
    parser.add_argument("--clip", default="karate/M_ShortMove14.csv", help="G1-Moves clip to play (looped)")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="motion_bench_"))
    library = MotionLibrary(tmp / "library")
    name = library.add(import_motion(G1_MOVES / args.clip).motion).stem
    print(f"clip {name}, ROS_DOMAIN_ID={os.environ['ROS_DOMAIN_ID']}, logs in {tmp}")
    rclpy.init()
    try:
        figures = real_time(library, name, tmp, args.duration)
        if args.lockstep_ticks > 0:
            figures |= lockstep(library, name, tmp, args.lockstep_ticks)
    finally:
        rclpy.shutdown()
    figures |= compute_cost(library, name)
    print(json.dumps({"bench": "motion_server", **figures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
