"""`g1 eval BAG`: tracking metrics from a recorded bag alone -> report.json, report.md, PNG plots.

The bag needs the reference windows, joint states, the simulator's ground truth (root odometry and
key bodies) and the tracking status; commands are used when present. Reference windows are decoded
with numpy (g1_common.window_cdr, 3x faster than rosbags; a window that does not validate, e.g. NaN,
falls back to rosbags so the report still shows it), the other messages with rosbags (twice as fast
as rclpy) into plain dataclasses with the same field names. They are aligned by their tick stamps:
the robot state at tick k+1 is compared with the ``next_frame`` of the reference window of tick k
(the frame the command of tick k aimed for).

Before alignment every message is checked (:func:`validate_messages`): a joint state must name the 29 G1
joints with as many finite values (the policy node's own check, ``conversions.joint_state_to_arrays``),
ground truth and reference windows must be finite and consistent, a command must carry 29 positions and
gains. A message that fails, or a second one with the stamp of a valid one, is dropped and named in the
report (``dropped_messages`` and the events), so one bad message never costs the report or its metrics.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from g1_common import conversions, topics, window_cdr
from g1_common.conversions import MessageError
from g1_description import robot
from g1_tracker_policy.observation import quat_to_rotmat
from g1_tracker_policy.safety import Mode
from motion_server.reference import ReferenceWindowData

from . import metrics as M

REQUIRED_TOPICS = (topics.REFERENCE_WINDOW, topics.JOINT_STATES, topics.GROUND_TRUTH_ODOM,
                   topics.GROUND_TRUTH_KEY_BODIES)


def mode_name(mode: int) -> str:
    """'passive', 'stand', 'track', 'hold' or 'damp' (the TrackingStatus MODE_* values)."""
    try:
        return Mode(mode).name.lower()
    except ValueError:
        return str(mode)


class EvalError(RuntimeError):
    """A bag that cannot be evaluated; the message says what is missing."""


@dataclass
class BagData:
    rec: M.TrackingRecord
    status: dict[str, np.ndarray]
    commands: dict[str, np.ndarray]
    topic_counts: dict[str, int]
    events: list[dict]
    dropped: dict[str, dict] = field(default_factory=dict)  # topic -> {"count": n, "reasons": {reason: n}}


def _quat_rotate(q_wxyz: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Body-frame vectors (N, 3) into the world frame."""
    return np.einsum("nij,nj->ni", quat_to_rotmat(q_wxyz), v)


def _stamp_ns(header) -> int:
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


EVAL_TOPICS = (*REQUIRED_TOPICS, topics.TRACKING_STATUS, topics.JOINT_COMMAND)


def read_bag(bag_path: Path, wanted_topics=EVAL_TOPICS) -> dict[str, list]:
    """{topic: [(stamp_ns, message), ...]} for ``wanted_topics`` (those the bag has)."""
    from rosbags.rosbag2 import Reader

    from . import typesys

    bag_path = Path(bag_path)
    if not (bag_path / "metadata.yaml").is_file():
        raise EvalError(f"{bag_path} is not a rosbag2 directory (no metadata.yaml); "
                        "was the recording interrupted before it closed?")
    out: dict[str, list] = {}
    with Reader(bag_path) as reader:
        present = {c.topic.lstrip("/"): c for c in reader.connections}
        missing = [t for t in REQUIRED_TOPICS if t not in present]
        if missing:
            raise EvalError(f"{bag_path}: the bag lacks topics {missing} needed for evaluation "
                            f"(it has {sorted(present)}); record with `g1 track` or `g1 record`")
        wanted = [c for t, c in present.items() if t in wanted_topics]
        deserialize = typesys.typestore().deserialize_cdr
        with no_cyclic_gc():
            for conn, stamp, data in reader.messages(connections=wanted):
                topic = conn.topic.lstrip("/")
                if topic == topics.REFERENCE_WINDOW:
                    try:
                        msg = window_cdr.decode(data)
                    except MessageError:
                        msg = deserialize(data, conn.msgtype)
                else:
                    msg = deserialize(data, conn.msgtype)
                out.setdefault(topic, []).append((stamp, msg))
    return out


def as_window(window) -> ReferenceWindowData:
    """A reference window of :func:`read_bag` as ReferenceWindowData (validated; MessageError if not)."""
    return window if isinstance(window, ReferenceWindowData) else conversions.msg_to_window(window)


def _next_frame(window) -> tuple:
    """(time_s, joint_pos, root_pos, root_quat_wxyz, root_lin_vel, root_ang_vel, key_body_pos (K*3,)) of
    the window's next frame, from either form :func:`read_bag` returns (as recorded, NaN included)."""
    if isinstance(window, ReferenceWindowData):
        return (window.times_s[0], window.joint_pos[0], window.root_pos[0], window.root_quat_wxyz[0],
                window.root_lin_vel[0], window.root_ang_vel[0], window.key_body_pos[0].reshape(-1))
    f = window.next_frame
    q = f.root_orientation
    return (f.time_s, f.joint_positions, [f.root_position.x, f.root_position.y, f.root_position.z],
            [q.w, q.x, q.y, q.z], [f.root_linear_velocity.x, f.root_linear_velocity.y, f.root_linear_velocity.z],
            [f.root_angular_velocity.x, f.root_angular_velocity.y, f.root_angular_velocity.z],
            np.asarray(f.key_body_positions, dtype=np.float64).reshape(-1))


@contextlib.contextmanager
def no_cyclic_gc():
    """No cyclic garbage collection inside: while hundreds of thousands of (acyclic) message objects
    pile up, each collection walks all of them (1.3 s of a 2 s evaluation of a 60 s run, measured with
    bench/eval_speed.py). Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _by_tick(items: list, period_ns: int) -> dict[int, object]:
    return {stamp // period_ns: msg for stamp, msg in items if stamp % period_ns == 0}


def _nearest(items: list, targets_ns: np.ndarray, tolerance_ns: int) -> dict[int, object]:
    """{i: the message whose stamp is nearest targets_ns[i]} for the targets within tolerance."""
    if not items:
        return {}
    items = sorted(items, key=lambda x: x[0])
    stamps = np.array([s for s, _ in items], dtype=np.int64)
    j = np.minimum(np.searchsorted(stamps, targets_ns), len(stamps) - 1)  # first stamp >= target (or last)
    before = np.maximum(j - 1, 0)
    j = np.where(np.abs(stamps[before] - targets_ns) <= np.abs(stamps[j] - targets_ns), before, j)  # ties: earlier
    return {i: items[jj][1] for i, jj in enumerate(j) if abs(int(stamps[jj]) - int(targets_ns[i])) <= tolerance_ns}


# --- message validation ------------------------------------------------------------------------------

#: Events listed per topic for dropped messages; the rest are counted in ``dropped_messages``.
MAX_DROP_EVENTS_PER_TOPIC = 10


def _check_joint_state(msg):
    """The joint positions in SDK order, by the policy node's own check (names, lengths, NaN/inf)."""
    q, _, _ = conversions.joint_state_to_arrays(msg)
    return q


def _check_odometry(msg) -> np.ndarray:
    """(13,): position, orientation wxyz, linear and angular velocity (child frame) of a finite pose."""
    p, o = msg.pose.pose.position, msg.pose.pose.orientation
    lin, ang = msg.twist.twist.linear, msg.twist.twist.angular
    out = np.array([p.x, p.y, p.z, o.w, o.x, o.y, o.z, lin.x, lin.y, lin.z, ang.x, ang.y, ang.z])
    if not np.all(np.isfinite(out)):
        raise MessageError(f"{topics.GROUND_TRUTH_ODOM}: pose or twist contains NaN or inf")
    if np.dot(out[3:7], out[3:7]) < 1e-6:
        raise MessageError(f"{topics.GROUND_TRUTH_ODOM}: orientation is a zero quaternion")
    return out


def _check_key_bodies(msg) -> tuple[tuple[str, ...], np.ndarray]:
    """(names, positions (K, 3)) of a message with one finite position per name."""
    if len(msg.names) != len(msg.positions):
        raise MessageError(f"{topics.GROUND_TRUTH_KEY_BODIES}: {len(msg.names)} names but "
                           f"{len(msg.positions)} positions")
    pos = np.array([[p.x, p.y, p.z] for p in msg.positions], dtype=np.float64).reshape(-1, 3)
    if not np.all(np.isfinite(pos)):
        raise MessageError(f"{topics.GROUND_TRUTH_KEY_BODIES}: a position contains NaN or inf")
    return tuple(msg.names), pos


def _check_command(msg):
    """A command must carry 29 positions and gains; NaN values stay (the report's command check counts them)."""
    if len(msg.position) != robot.NUM_JOINTS or len(msg.kp) != robot.NUM_JOINTS:
        raise MessageError(f"{topics.JOINT_COMMAND}: {len(msg.position)} positions and {len(msg.kp)} kp, "
                           f"expected {robot.NUM_JOINTS} each")
    return msg


#: topic -> (check returning what the evaluation uses or raising MessageError, one message per stamp?)
_CHECKS = {
    topics.JOINT_STATES: (_check_joint_state, True),
    topics.GROUND_TRUTH_ODOM: (_check_odometry, True),
    topics.GROUND_TRUTH_KEY_BODIES: (_check_key_bodies, True),
    topics.REFERENCE_WINDOW: (as_window, True),
    topics.JOINT_COMMAND: (_check_command, False),  # real time: ticks without a new state repeat its stamp
}


def validate_messages(raw: dict[str, list]) -> tuple[dict[str, list], list[tuple[str, int, str]]]:
    """(the messages the evaluation can use, [(topic, stamp_ns, reason), ...] of those dropped).

    Joint states come back as SDK-order position arrays, reference windows as ReferenceWindowData. Of
    several valid messages with one stamp on a stamp-aligned topic the first is kept (the recorder logs
    in arrival order) and the others are dropped as duplicates: which one counted must not depend on
    the order of a dictionary."""
    clean: dict[str, list] = {}
    dropped: list[tuple[str, int, str]] = []
    for topic, items in raw.items():
        check, one_per_stamp = _CHECKS.get(topic, (None, False))
        if check is None:
            clean[topic] = items
            continue
        kept, seen = [], set()
        for stamp, msg in items:
            try:
                value = check(msg)
            except (MessageError, ValueError, TypeError) as exc:
                dropped.append((topic, stamp, str(exc)))
                continue
            if one_per_stamp:
                if stamp in seen:
                    dropped.append((topic, stamp, "duplicate stamp: a valid message with this stamp came first"))
                    continue
                seen.add(stamp)
            kept.append((stamp, value))
        clean[topic] = kept
    return clean, dropped


def _drop_report(dropped: list[tuple[str, int, str]], origin_ns: int) -> tuple[dict[str, dict], list[dict]]:
    """({topic: {"count", "reasons"}}, events): every dropped message counted, the first few per topic
    listed as events with their time, the rest summed up in one event."""
    summary: dict[str, dict] = {}
    events = []
    for topic, stamp, reason in sorted(dropped, key=lambda d: (d[1], d[0])):
        entry = summary.setdefault(topic, {"count": 0, "reasons": {}})
        entry["count"] += 1
        entry["reasons"][reason] = entry["reasons"].get(reason, 0) + 1
        if entry["count"] <= MAX_DROP_EVENTS_PER_TOPIC:
            events.append({"t_s": (stamp - origin_ns) / 1e9, "event": f"dropped {topic}: {reason}"})
    for topic, entry in summary.items():
        if entry["count"] > MAX_DROP_EVENTS_PER_TOPIC:
            last = max(s for t, s, _ in dropped if t == topic)
            events.append({"t_s": (last - origin_ns) / 1e9,
                           "event": f"dropped {topic}: {entry['count'] - MAX_DROP_EVENTS_PER_TOPIC} more messages "
                                    "(see dropped_messages)"})
    return summary, events


def _align_ticks(raw: dict[str, list]):
    """Per-tick inputs: (states, refs, odoms, bodies, times_s, origin_ns), dicts keyed by tick.

    Lockstep bags: every stamp is on the control-tick grid and ticks match exactly; the reference of
    tick k is the window stamped t_(k-1) (its next frame is the pose for t_k). Real-time bags (the robot,
    or ``g1 track --realtime``): tick k is the k-th joint state, time 0 the first joint state or status
    (whichever came first); ground truth is
    the message at (nearest to) the joint state's stamp - the simulator stamps them together - and the
    reference the window nearest one period earlier, as in lockstep."""
    from g1_common.ticks import CONTROL_PERIOD_NS as P

    for topic in REQUIRED_TOPICS:
        if not raw.get(topic):
            raise EvalError(f"the bag has no valid {topic} messages (the topic was recorded but never published, "
                            "or every message was dropped as invalid: did the simulator or robot driver start? "
                            "see the run's logs/)")
    state_items = sorted(raw[topics.JOINT_STATES], key=lambda x: x[0])
    if all(s % P == 0 for s, _ in state_items):
        windows = _by_tick(raw[topics.REFERENCE_WINDOW], P)
        states = _by_tick(state_items, P)
        refs = {k: windows[k - 1] for k in states if k - 1 in windows}
        odoms = _by_tick(raw[topics.GROUND_TRUTH_ODOM], P)
        bodies = _by_tick(raw[topics.GROUND_TRUTH_KEY_BODIES], P)
        return states, refs, odoms, bodies, {k: k * P / 1e9 for k in states}, 0
    stamps = np.array([s for s, _ in state_items], dtype=np.int64)
    status = raw.get(topics.TRACKING_STATUS) or [(int(stamps[0]), None)]
    origin = min(int(stamps[0]), min(s for s, _ in status))  # the run starts with the first of them
    states = {k: m for k, (_, m) in enumerate(state_items)}
    refs = _nearest(raw[topics.REFERENCE_WINDOW], stamps - P, P)
    odoms = _nearest(raw[topics.GROUND_TRUTH_ODOM], stamps, P // 2)
    bodies = _nearest(raw[topics.GROUND_TRUTH_KEY_BODIES], stamps, P // 2)
    return states, refs, odoms, bodies, {k: (int(stamps[k]) - origin) / 1e9 for k in states}, origin


def build_record(raw: dict[str, list]) -> BagData:
    from g1_common.ticks import CONTROL_PERIOD_NS

    dt = CONTROL_PERIOD_NS / 1e9
    counts = {t: len(v) for t, v in raw.items()}
    raw, dropped = validate_messages(raw)
    states, refs, odoms, bodies, times_s, origin_ns = _align_ticks(raw)
    ticks = sorted(k for k in states if k in refs and k in odoms and k in bodies)
    if not ticks:
        raise EvalError("no tick has a joint state, ground truth and the previous tick's reference window: "
                        "the bag's stamps are not on the control-tick grid, or the topics never overlap")
    first_window = refs[ticks[0]]
    key_names = tuple(first_window.key_body_names)
    body_names = list(bodies[ticks[0]][0])
    missing = [n for n in key_names if n not in body_names]
    if missing:
        raise EvalError(f"ground-truth key bodies lack {missing} that the reference carries")
    body_idx = [body_names.index(n) for n in key_names]

    def arr(f):
        return np.array([f(k) for k in ticks], dtype=np.float64)

    nxt = {k: _next_frame(refs[k]) for k in ticks}

    def nf(i):
        return np.array([nxt[k][i] for k in ticks], dtype=np.float64)

    odom = arr(lambda k: odoms[k])  # (N, 13), see _check_odometry
    root_quat = odom[:, 3:7]
    # nav_msgs/Odometry: twist is expressed in the child (pelvis) frame; metrics use world frame.
    lin_body, ang_body = odom[:, 7:10], odom[:, 10:13]
    rec = M.TrackingRecord(
        t_s=np.array([times_s[k] for k in ticks], dtype=np.float64),
        dt_s=dt,
        motion_name=[refs[k].motion_name for k in ticks],
        clip_time_s=nf(0),
        clip_duration_s=arr(lambda k: refs[k].clip_duration_s),
        playing=np.array([refs[k].state == 2 for k in ticks]),
        ref_joint_pos=nf(1),
        ref_root_pos=nf(2),
        ref_root_quat=nf(3),
        ref_root_lin_vel=nf(4),
        ref_root_ang_vel=nf(5),
        ref_key_body_pos=nf(6).reshape(len(ticks), -1, 3),
        joint_pos=arr(lambda k: states[k]),
        root_pos=odom[:, 0:3],
        root_quat=root_quat,
        root_lin_vel=_quat_rotate(root_quat, lin_body),
        root_ang_vel=_quat_rotate(root_quat, ang_body),
        key_body_pos=arr(lambda k: bodies[k][1][body_idx]),
        key_body_names=key_names,
    )
    status = _status_arrays(raw.get(topics.TRACKING_STATUS, []), origin_ns)
    commands = _command_arrays(raw.get(topics.JOINT_COMMAND, []), origin_ns)
    drop_summary, drop_events = _drop_report(dropped, origin_ns)
    events = sorted(_events(status) + drop_events, key=lambda e: e["t_s"])  # stable: status events first
    return BagData(rec, status, commands, counts, events, drop_summary)


def _status_arrays(items: list, origin_ns: int = 0) -> dict[str, np.ndarray]:
    if not items:
        return {}
    return {
        "t_s": np.array([(s - origin_ns) / 1e9 for s, _ in items]),
        "mode": np.array([m.mode for _, m in items]),
        "watchdog": np.array([m.watchdog for _, m in items]),
        "detail": [m.watchdog_detail for _, m in items],
        "controller": [m.controller for _, m in items],
        "tick_latency_ms": np.array([m.tick_latency_ms for _, m in items]),
        "observation_ms": np.array([m.observation_ms for _, m in items]),
        "inference_ms": np.array([m.inference_ms for _, m in items]),
        "publish_ms": np.array([m.publish_ms for _, m in items]),
        "period_jitter_ms": np.array([m.period_jitter_ms for _, m in items]),
        "overruns": np.array([m.overruns for _, m in items]),
    }


def _command_arrays(items: list, origin_ns: int = 0) -> dict[str, np.ndarray]:
    if not items:
        return {}
    return {
        "t_s": np.array([(s - origin_ns) / 1e9 for s, _ in items]),
        "position": np.array([list(m.position) for _, m in items], dtype=np.float64),
        "kp": np.array([list(m.kp) for _, m in items], dtype=np.float64),
        "source": np.array([m.source for _, m in items]),
    }


#: a flood of badly stamped inputs is summarised after this many events
MAX_REJECTION_EVENTS = 10


def _events(status: dict) -> list[dict]:
    """Mode changes and watchdog trips, in time order: what happened during the run."""
    events = []
    if not status:
        return events
    prev_mode, prev_wd, rejections = None, 0, 0
    for i, t in enumerate(status["t_s"]):
        mode, wd = int(status["mode"][i]), int(status["watchdog"][i])
        if mode != prev_mode:
            events.append({"t_s": float(t), "event": f"mode -> {mode_name(mode)}"})
            prev_mode = mode
        if wd != prev_wd and wd != 0:
            events.append({"t_s": float(t), "event": f"watchdog: {status['detail'][i] or wd}"})
        elif "rejected " in status["detail"][i]:  # inputs the policy node refused for their stamp
            rejections += 1
            if rejections <= MAX_REJECTION_EVENTS:
                events.append({"t_s": float(t), "event": f"input rejected: {status['detail'][i]}"})
        prev_wd = wd
    if rejections > MAX_REJECTION_EVENTS:
        events.append({"t_s": float(status["t_s"][-1]),
                       "event": f"{rejections - MAX_REJECTION_EVENTS} more ticks with rejected inputs"})
    return events


def control_rate_hz(status_t_s: np.ndarray) -> float | None:
    """Ticks per second from the tracking status stamps. A status carries the stamp of the joint state
    its tick answered, so ticks that found no new state repeat a stamp: inside the run they are ticks and
    count; after the last new state (the simulator or robot stopped) they would only inflate the rate
    (a real-time run read 58 Hz for a 50 Hz loop), so the span ends at the last stamp that advanced."""
    t = np.asarray(status_t_s, dtype=np.float64)
    advanced = np.nonzero(np.diff(t) > 0)[0]
    if advanced.size == 0:
        return None
    last = int(advanced[-1]) + 1  # the last status whose stamp is newer than its predecessor's
    return float(last / (t[last] - t[0]))


def _percentile(x: np.ndarray, q: float) -> float | None:
    return float(np.percentile(x, q)) if len(x) else None


def summarise(data: BagData, bag_path: Path) -> dict:
    result = M.compute_metrics(data.rec)
    per_tick = result.pop("_per_tick")
    report = {
        "bag": str(bag_path),
        "overall": result["overall"],
        "per_clip": result["per_clip"],
        "controller": (data.status["controller"][-1] if data.status else None),
        "events": data.events,
        "dropped_messages": data.dropped,
        "topic_counts": data.topic_counts,
        "timing": {},
    }
    if data.status:
        s = data.status
        report["timing"] = {
            "tick_latency_ms_median": _percentile(s["tick_latency_ms"], 50),
            "tick_latency_ms_p99": _percentile(s["tick_latency_ms"], 99),
            "inference_ms_median": _percentile(s["inference_ms"], 50),
            "period_jitter_ms_p99": _percentile(s["period_jitter_ms"], 99),
            "overruns": int(s["overruns"][-1]),
            "control_rate_hz": control_rate_hz(s["t_s"]),
        }
    if data.commands:
        pos = data.commands["position"]
        report["commands"] = {
            "count": int(len(pos)),
            "all_finite": bool(np.all(np.isfinite(pos))),
            "within_joint_limits": bool(np.all((pos >= robot.JOINT_LOWER - 1e-5) & (pos <= robot.JOINT_UPPER + 1e-5))),
        }
    report["_per_tick"] = per_tick
    return report


def _fmt(v, digits=3):
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def markdown(report: dict) -> str:
    o = report["overall"]
    lines = ["# Tracking report", "", f"Bag: `{report['bag']}`  ", f"Controller: `{report['controller']}`", ""]
    if report["controller"] and str(report["controller"]).startswith("baseline"):
        lines += ["> This run used a **baseline** controller (reference pass-through), not a trained tracker: "
                  "its numbers are the bar a policy must beat.", ""]
    lines += ["## Overall", "", "| metric | value |", "|---|---|"]
    for key in ("clips", "success_rate", "completion", "E_mpkpe_mm", "E_mpjpe_rad", "E_vel_mps", "E_yaw_vel_rads",
                "key_body_root_relative_mm", "E_root_xy_mm", "E_yaw_rad", "joint_jerk_rads3"):
        lines.append(f"| {key} | {_fmt(o.get(key))} |")
    lines += ["", "## Per clip", "",
              "| motion | duration s | success | completion | E_mpkpe mm | E_root_xy mm (at start) | E_yaw rad | "
              "E_mpjpe rad | E_vel m/s | E_yaw_vel rad/s | termination |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for c in report["per_clip"]:
        lines.append(f"| {c['motion']} | {_fmt(c['duration_s'], 2)} | {_fmt(c['success'])} | "
                     f"{_fmt(c['completion'])} | {_fmt(c['E_mpkpe_mm'], 1)} | {_fmt(c.get('E_root_xy_mm'), 1)} "
                     f"({_fmt(c.get('root_xy_at_start_mm'), 1)}) | {_fmt(c.get('E_yaw_rad'))} | "
                     f"{_fmt(c['E_mpjpe_rad'])} | {_fmt(c['E_vel_mps'])} | {_fmt(c['E_yaw_vel_rads'])} | "
                     f"{c['termination'] or '–'} |")
    if report["timing"]:
        lines += ["", "## Timing", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report["timing"].items()]
    if report.get("commands"):
        lines += ["", "## Commands", "", "| check | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in report["commands"].items()]
    if report.get("dropped_messages"):
        lines += ["", "## Dropped messages", "",
                  "Messages the evaluation could not use (malformed, NaN/inf, or a second one with the same stamp); "
                  "the metrics are computed without them.", "", "| topic | dropped | reasons |", "|---|---|---|"]
        for topic, d in report["dropped_messages"].items():
            reasons = "; ".join(f"{r} ({n})" for r, n in list(d["reasons"].items())[:5])
            lines.append(f"| {topic} | {d['count']} | {reasons.replace('|', '/')} |")
    if report["events"]:
        lines += ["", "## Events", ""] + [f"- t = {e['t_s']:.2f} s: {e['event']}" for e in report["events"][:50]]
    lines += ["", "## Plots", "", "![errors](errors.png)", "", "![root path](root_path.png)", "",
              "![joint errors](joint_errors.png)", ""]
    return "\n".join(lines)


def plot(data: BagData, per_tick: dict, out_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rec, paths = data.rec, []
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True)
    for ax, (key, label) in zip(axes, [("mpkpe_mm", "E_mpkpe (mm)"), ("mpjpe_rad", "E_mpjpe (rad)"),
                                       ("height_err_m", "root height error (m)"),
                                       ("orientation_err_rad", "up-axis error (rad)")]):
        ax.plot(rec.t_s, per_tick[key], lw=1)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        shade = np.where(rec.playing, 1, 0)
        ax.fill_between(rec.t_s, 0, 1, where=shade > 0, transform=ax.get_xaxis_transform(), alpha=0.08,
                        color="green", label="playing")
    axes[2].axhline(M.HEIGHT_TERMINATION_M, color="r", ls="--", lw=0.8)
    axes[3].axhline(M.ORIENTATION_TERMINATION_RAD, color="r", ls="--", lw=0.8)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle("Tracking error over time (shaded: clip playing; dashed: termination thresholds)")
    fig.tight_layout()
    paths.append(out_dir / "errors.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 6))
    ax.plot(rec.ref_root_pos[:, 0], rec.ref_root_pos[:, 1], label="reference", lw=2, alpha=0.7)
    ax.plot(rec.root_pos[:, 0], rec.root_pos[:, 1], label="robot", lw=1.2)
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.legend()
    ax.grid(alpha=0.3)
    ax.set_title("Root path, reference vs actual")
    paths.append(out_dir / "root_path.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 6))
    im = ax.imshow(per_tick["joint_abs_err_rad"].T, aspect="auto", origin="lower", cmap="magma",
                   extent=[rec.t_s[0], rec.t_s[-1], -0.5, robot.NUM_JOINTS - 0.5], vmin=0, vmax=0.5)
    ax.set_yticks(range(robot.NUM_JOINTS))
    ax.set_yticklabels([n.replace("_joint", "") for n in robot.JOINT_NAMES], fontsize=6)
    ax.set_xlabel("time (s)")
    fig.colorbar(im, ax=ax, label="|q - q_ref| (rad)")
    ax.set_title("Per-joint tracking error over time")
    fig.tight_layout()
    paths.append(out_dir / "joint_errors.png")
    fig.savefig(paths[-1], dpi=90)
    plt.close(fig)
    return paths


def _json_default(o):
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(type(o))


def evaluate_bag(bag_path: Path, out_dir: Path, plots: bool = True) -> dict:
    """Evaluate ``bag_path`` and write report.json, report.md and plots into ``out_dir``.

    Files are written into a temporary directory first and moved into place only when everything
    succeeded, so a failed evaluation never leaves a half-written report that looks valid.
    """
    bag_path, out_dir = Path(bag_path), Path(out_dir)
    with no_cyclic_gc():  # the messages live until the record is built
        data = build_record(read_bag(bag_path))
    report = summarise(data, bag_path)
    per_tick = report.pop("_per_tick")
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".eval-") as tmp:
        tmp = Path(tmp)
        files = plot(data, per_tick, tmp) if plots else []
        (tmp / "report.md").write_text(markdown(report))
        (tmp / "report.json").write_text(json.dumps(report, indent=2, default=_json_default))
        for f in [*files, tmp / "report.md", tmp / "report.json"]:  # report.json last: it marks completion
            os.replace(f, out_dir / f.name)
    return report
