"""Fault injection on the data side: malformed, non-finite and duplicated messages in a recorded bag.

Each bag is written with the project's own recorder writer (``BagRecorder``: rosbag2 directory, MCAP
storage, the exact CDR bytes a subscription would receive). The evaluator must never crash on such a
bag: it drops what it cannot use, names every dropped message in the report (JSON and markdown), and
computes the metrics from the valid messages only, so they stay finite and equal to those of the clean
bag where the bad messages only duplicated good ones.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rclpy.serialization import serialize_message

from g1_common import conversions, ticks, topics, window_cdr
from g1_description import robot

N_TICKS = 150  # 3 s at 50 Hz


def _window(k: int):
    """The reference window stamped at tick k: a slow sine on every joint, the robot standing."""
    from motion_server.reference import DEFAULT_FUTURE_OFFSETS, ReferenceWindowData, WindowState

    offsets = np.array((0, *DEFAULT_FUTURE_OFFSETS))
    t = (k + 1 + offsets) * robot.CONTROL_PERIOD_S
    f, nk = len(offsets), len(robot.KEY_BODIES)
    joint_pos = np.asarray(robot.DEFAULT_JOINT_POS) + 0.1 * np.sin(t)[:, None]
    key_bodies = np.tile(np.linspace(0.0, 1.0, nk * 3).reshape(nk, 3), (f, 1, 1)) + np.array([0, 0, 0.1])
    return ReferenceWindowData(
        times_s=t, joint_pos=joint_pos, joint_vel=0.1 * np.cos(t)[:, None] * np.ones((f, 29)),
        root_pos=np.tile([0.0, 0.0, 0.75], (f, 1)), root_quat_wxyz=np.tile([1.0, 0, 0, 0], (f, 1)),
        root_lin_vel=np.zeros((f, 3)), root_ang_vel=np.zeros((f, 3)), key_body_pos=key_bodies,
        motion_name="sine", clip_time_s=float(t[0]), clip_duration_s=N_TICKS * robot.CONTROL_PERIOD_S,
        state=WindowState.PLAYING)


def _robot_q(k: int) -> np.ndarray:
    """The measured joints at tick k: the reference of tick k with a known 0.02 rad lag on each joint."""
    return np.asarray(robot.DEFAULT_JOINT_POS) + 0.1 * np.sin(k * robot.CONTROL_PERIOD_S) + 0.02


def _odom(k: int):
    from nav_msgs.msg import Odometry

    msg = Odometry()
    msg.header.stamp = ticks.stamp_from_tick(k)
    msg.pose.pose.position.z = 0.74
    msg.pose.pose.orientation.w = 1.0
    return msg


def _key_bodies(k: int, positions: np.ndarray | None = None):
    from geometry_msgs.msg import Point

    from g1_interfaces.msg import KeyBodyPositions

    window = _window(k - 1)
    pos = window.key_body_pos[0] + 0.01 if positions is None else positions
    msg = KeyBodyPositions(names=list(robot.KEY_BODIES),
                           positions=[Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in pos])
    msg.header.stamp = ticks.stamp_from_tick(k)
    return msg


def _status(k: int):
    from g1_interfaces.msg import TrackingStatus

    msg = TrackingStatus(mode=TrackingStatus.MODE_TRACK, mode_name="track", controller="test:synthetic", tick=k)
    msg.header.stamp = ticks.stamp_from_tick(k)
    return msg


def _joint_state(k: int, q=None, names=None):
    msg = conversions.make_joint_state(ticks.stamp_from_tick(k), _robot_q(k) if q is None else q, np.zeros(29))
    if names is not None:
        msg.name = list(names)
    return msg


def write_bag(path: Path, extra: list[tuple[str, object, bool]] = (), skip_states: tuple[int, ...] = ()) -> Path:
    """A complete lockstep bag of N_TICKS ticks; ``extra`` = (topic, message, before_the_good_one) injected
    at the message's own stamp; ``skip_states`` = ticks without a good joint state."""
    from g1_bringup.recorder import DEFAULT_TOPICS, BagRecorder

    recorder = BagRecorder(path, dict(DEFAULT_TOPICS))
    by_stamp: dict[int, list] = {}
    for topic, msg, first in extra:
        by_stamp.setdefault(ticks.stamp_to_ns(msg.header.stamp), []).append((topic, msg, first))

    def put(topic, msg):
        recorder.write(topic, serialize_message(msg), ticks.stamp_to_ns(msg.header.stamp))

    for k in range(N_TICKS):
        stamp = ticks.tick_to_ns(k)
        injected = by_stamp.get(stamp, [])
        for topic, msg, first in injected:
            if first:
                put(topic, msg)
        if k not in skip_states:
            put(topics.JOINT_STATES, _joint_state(k))
        put(topics.GROUND_TRUTH_ODOM, _odom(k))
        put(topics.GROUND_TRUTH_KEY_BODIES, _key_bodies(k))
        recorder.write(topics.REFERENCE_WINDOW, window_cdr.encode(_window(k), stamp), stamp)
        put(topics.TRACKING_STATUS, _status(k))
        for topic, msg, first in injected:
            if not first:
                put(topic, msg)
    recorder.close()
    return path


def _evaluate(bag: Path, out: Path) -> dict:
    from g1_bringup.evaluation import evaluate_bag

    evaluate_bag(bag, out, plots=False)
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def clean_report(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("clean")
    return _evaluate(write_bag(tmp / "bag"), tmp / "report")


def _bad_states() -> list[tuple[str, object, bool]]:
    """One of each malformed joint state, each sharing a stamp with a good one (before or after it)."""
    nan_q = _robot_q(40)
    nan_q[5] = float("nan")
    short = _joint_state(20)
    short.position = short.position[:20]
    unknown = _joint_state(30, names=["not_a_g1_joint", *robot.JOINT_NAMES[1:]])
    return [(topics.JOINT_STATES, short, True), (topics.JOINT_STATES, unknown, False),
            (topics.JOINT_STATES, _joint_state(40, q=nan_q), False)]


def test_clean_synthetic_bag_gives_the_known_joint_error(clean_report):
    """The reference of the bag: every joint lags its reference by 0.02 rad, key bodies by 10 mm per axis."""
    clip = clean_report["per_clip"][0]
    assert clip["E_mpjpe_rad"] == pytest.approx(0.02, abs=1e-9)
    assert clip["E_mpkpe_mm"] == pytest.approx(10 * math.sqrt(3), abs=1e-6)
    assert clean_report.get("dropped_messages", {}) == {}


def test_malformed_and_nan_joint_states_are_dropped_and_reported(tmp_path, clean_report):
    """A short state, one with an unknown joint name and a NaN one, each next to a good state of the same
    stamp: the report is written, the metrics equal those of the clean bag, every drop is an event."""
    bag = write_bag(tmp_path / "bag", extra=_bad_states())
    out = subprocess.run([sys.executable, "-m", "g1_bringup.cli", "eval", str(bag), "--out",
                          str(tmp_path / "report"), "--no-plots"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    for key, value in clean_report["overall"].items():
        assert report["overall"][key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert report["dropped_messages"]["joint_states"]["count"] == 3
    drops = [e for e in report["events"] if e["event"].startswith("dropped joint_states")]
    assert [round(e["t_s"], 2) for e in drops] == [0.4, 0.6, 0.8]
    text = " | ".join(e["event"] for e in drops)
    assert "expected 29 values" in text and "not_a_g1_joint" in text and "NaN" in text
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## Dropped messages" in md and "not_a_g1_joint" in md and "| joint_states | 3 |" in md


def test_a_nan_state_sharing_a_stamp_with_a_good_one_leaves_e_mpjpe_right(tmp_path, clean_report):
    nan_q = _robot_q(40)
    nan_q[5] = float("nan")
    bag = write_bag(tmp_path / "bag", extra=[(topics.JOINT_STATES, _joint_state(40, q=nan_q), False)])
    report = _evaluate(bag, tmp_path / "report")
    assert report["overall"]["E_mpjpe_rad"] == pytest.approx(clean_report["overall"]["E_mpjpe_rad"], rel=1e-12)
    assert report["per_clip"][0]["E_mpjpe_rad"] == pytest.approx(0.02, abs=1e-9)
    assert report["dropped_messages"]["joint_states"]["reasons"] == {"joint_states.position: contains NaN or inf": 1}


def test_a_tick_whose_only_state_is_malformed_is_left_out_and_metrics_stay_finite(tmp_path):
    short = _joint_state(60)
    short.position = short.position[:10]
    nan_q = _robot_q(61)
    nan_q[:] = float("inf")
    bag = write_bag(tmp_path / "bag", extra=[(topics.JOINT_STATES, short, True),
                                            (topics.JOINT_STATES, _joint_state(61, q=nan_q), True)],
                    skip_states=(60, 61))
    report = _evaluate(bag, tmp_path / "report")
    clip = report["per_clip"][0]
    assert clip["E_mpjpe_rad"] == pytest.approx(0.02, abs=1e-9)
    assert clip["ticks"] == N_TICKS - 1 - 2  # tick 0 has no previous reference; ticks 60, 61 no valid state
    assert all(v is None or math.isfinite(v) for v in report["overall"].values())
    assert report["dropped_messages"]["joint_states"]["count"] == 2


def test_two_valid_states_with_one_stamp_keep_the_first_and_report_the_second(tmp_path, clean_report):
    other = _joint_state(50, q=_robot_q(50) + 1.0)
    bag = write_bag(tmp_path / "bag", extra=[(topics.JOINT_STATES, other, False)])
    report = _evaluate(bag, tmp_path / "report")
    assert report["overall"]["E_mpjpe_rad"] == pytest.approx(clean_report["overall"]["E_mpjpe_rad"], rel=1e-12)
    (event,) = [e for e in report["events"] if "joint_states" in e["event"]]
    assert "duplicate stamp" in event["event"] and event["t_s"] == pytest.approx(1.0)


def test_malformed_ground_truth_window_and_command_do_not_crash_the_evaluation(tmp_path, clean_report):
    """Key bodies with fewer positions than names, NaN odometry, a NaN reference window and a short command,
    each as a duplicate of a good message: dropped, reported, metrics unchanged."""
    from g1_interfaces.msg import ReferenceWindow  # noqa: F401 - the window's type for the fallback decoder

    kb = _key_bodies(70)
    kb.positions = kb.positions[:2]
    odom = _odom(80)
    odom.pose.pose.position.x = float("nan")
    window_msg = conversions.window_to_msg(_window(90), ticks.stamp_from_tick(90))
    window_msg.next_frame.joint_positions[0] = float("nan")
    command = conversions.make_joint_command(ticks.stamp_from_tick(100), np.zeros(29), np.zeros(29), np.zeros(29))
    command.position = command.position[:5]
    good_command = conversions.make_joint_command(ticks.stamp_from_tick(100), np.zeros(29), np.zeros(29),
                                                  np.zeros(29))
    bag = write_bag(tmp_path / "bag", extra=[
        (topics.GROUND_TRUTH_KEY_BODIES, kb, True), (topics.GROUND_TRUTH_ODOM, odom, True),
        (topics.REFERENCE_WINDOW, window_msg, False), (topics.JOINT_COMMAND, command, True),
        (topics.JOINT_COMMAND, good_command, False)])
    report = _evaluate(bag, tmp_path / "report")
    for key, value in clean_report["overall"].items():
        assert report["overall"][key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    dropped = report["dropped_messages"]
    assert {t: d["count"] for t, d in dropped.items()} == {
        "sim/ground_truth/key_bodies": 1, "sim/ground_truth/odom": 1, "reference_window": 1, "joint_command": 1}
    assert report["commands"]["count"] == 1 and report["commands"]["all_finite"]
