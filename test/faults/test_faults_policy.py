"""Fault injection on the policy side (issue 12, items 4, 8, 9, 10): real g1_policy (and motion_server)
processes over real Fast DDS; the test plays the robot (and, where said, the motion server) with
test/policy/policy_harness.py. Every command received is checked on arrival (finite, inside the joint
limits, gains >= 0) and again at the end; where the fault must be handled "within one tick", the command
stamped with the tick in which the fault is first visible is already the hold/damping command.
"""

from __future__ import annotations

import json
import time

import numpy as np
import onnx
import pytest
import yaml
from rclpy.duration import Duration

from g1_common import conversions, ticks
from g1_description import robot
from g1_interfaces.msg import JointCommand, ReferenceWindow, TrackingStatus
from g1_tracker_policy import contract as c
from g1_tracker_policy.testing import make_test_policy, standing_window
from policy_fault_helpers import assert_all_commands_sane, is_damping, make_trigger_policy, trigger_window
from policy_harness import Harness, RealtimePublisher, playing
from policy_harness import harness  # noqa: F401  (pytest fixture)

NODE = ("-m", "g1_tracker_policy.node", "--ros-args")
LOCKSTEP = ("-p", "use_sim_time:=true", "-p", "lockstep_input_timeout_s:=0.05", "-p", "stand_ramp_s:=0.1",
            "-p", "track_ramp_s:=0.1")
IDLE = ReferenceWindow.STATE_IDLE


def stand_then_track(h: Harness, k: int, n_track: int = 10) -> int:
    """PASSIVE -> STAND (ramp 0.1 s) -> set_mode track on a playing reference; returns the next tick."""
    for _ in range(3):
        h.lockstep_tick(k, playing())
        k += 1
    assert h.set_mode("stand").success
    for _ in range(10):
        h.lockstep_tick(k, playing())
        k += 1
    resp = h.set_mode("track")
    assert resp.success, resp.message
    for i in range(n_track):
        cmd, st = h.lockstep_tick(k, playing(t=i * robot.CONTROL_PERIOD_S))
        k += 1
    assert st.mode == TrackingStatus.MODE_TRACK, st.watchdog_detail
    return k


def publish_stamped(h: Harness, tick_ns: int, imu: bool = True, window=None) -> None:
    """One well-formed joint_states (+ IMU, + reference) stamped ``tick_ns``, outside the tick protocol."""
    stamp = ticks.stamp_from_ns(tick_ns)
    h.pub_state.publish(conversions.make_joint_state(stamp, h.q.copy(), np.zeros(robot.NUM_JOINTS)))
    if imu:
        from sensor_msgs.msg import Imu
        m = Imu()
        m.header.stamp = stamp
        m.orientation.w = 1.0
        h.pub_imu.publish(m)
    if window is not None:
        h.pub_ref.publish(conversions.window_to_msg(window, stamp, 999))
    for pub in (h.pub_state, h.pub_imu, h.pub_ref):
        assert pub.wait_for_all_acked(Duration(seconds=5))  # in before the next tick's inputs


# --- item 4: huge finite policy outputs ------------------------------------------------------------------

def test_huge_policy_output_mid_track_holds_in_the_same_tick(harness, node_processes, tmp_path):
    """A policy that suddenly outputs 1e6 (finite): before, the command was clipped to the joint limits
    and sent with stiff gains (the robot was thrown over in 0.12 s). Now the command of that very tick
    holds the last sane target, the status says CONTROLLER_FAULT, and the policy is not resumed."""
    art = make_trigger_policy(tmp_path / "trigger.onnx")
    node_processes.start(*NODE, *LOCKSTEP, "-p", f"policy_path:={art.path}", "-p", "auto_track:=true",
                         name="g1_policy")
    harness.wait_ready()
    k = stand_then_track(harness, 0)
    cmd, st = harness.lockstep_tick(k, playing(t=0.3))
    k += 1
    assert cmd.source == JointCommand.SOURCE_POLICY  # the trigger policy is tracking like the baseline
    sane = np.asarray(cmd.position)
    cmd, st = harness.lockstep_tick(k, trigger_window(t=0.32))  # the policy's action is now 1e6
    k += 1
    assert st.mode == TrackingStatus.MODE_HOLD and st.watchdog == TrackingStatus.WATCHDOG_CONTROLLER_FAULT, \
        (st.mode_name, st.watchdog_detail)
    assert "controller fault" in st.watchdog_detail and "outside its range" in st.watchdog_detail
    assert cmd.source == JointCommand.SOURCE_SAFETY
    np.testing.assert_allclose(cmd.position, sane, atol=1e-6)   # the last sane target, not the clipped 1e6
    np.testing.assert_allclose(cmd.kp, robot.STAND_KP, rtol=1e-6)
    for i in range(20):  # the fault stays, a new play follows: never the policy again without an operator
        cmd, st = harness.lockstep_tick(k, trigger_window(t=0.34 + i * 0.02) if i < 10 else playing(name="m2"))
        k += 1
        assert st.mode == TrackingStatus.MODE_HOLD and cmd.source == JointCommand.SOURCE_SAFETY
        np.testing.assert_allclose(cmd.position, sane, atol=1e-6)
    assert_all_commands_sane(harness.commands)


# --- item 8: real-time stamps after a state loss -----------------------------------------------------------

def test_realtime_statuses_after_a_state_loss_carry_advancing_stamps(harness, node_processes):
    """Before, every tick after the joint states stopped carried the last state's stamp (thousands of
    statuses with one stamp: HOLD and DAMP indistinguishable). Now they carry the node's clock."""
    node_processes.start(*NODE, "-p", "mode_on_start:=stand", "-p", "stand_ramp_s:=0.3", "-p", "realtime_priority:=0",
                         name="g1_policy")
    with RealtimePublisher(harness, window_fn=lambda: playing()) as pub:
        harness.wait_ready()
        harness.spin_until(lambda: harness.statuses and harness.statuses[-1][1].mode == TrackingStatus.MODE_STAND,
                           15.0, "STAND")
        pub.publish_state = False
        time.sleep(0.05)
        n_before = len(harness.statuses)
        harness.spin_until(lambda: any(s.mode == TrackingStatus.MODE_DAMP for _, s in harness.statuses[n_before:]),
                           10.0, "DAMP after the joint states stopped")
        n_damp = len(harness.statuses)
        harness.spin_until(lambda: len(harness.statuses) > n_damp + 10, 5.0, "statuses in DAMP")
    after = [s for _, s in harness.statuses[n_before:] if s.mode in (TrackingStatus.MODE_HOLD, TrackingStatus.MODE_DAMP)]
    assert any(s.mode == TrackingStatus.MODE_HOLD for s in after) and any(s.mode == TrackingStatus.MODE_DAMP for s in after)
    stamps = [ticks.stamp_to_ns(s.header.stamp) for s in after]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "HOLD/DAMP statuses must not share or reuse stamps"
    last_state_stamp = max(ticks.stamp_to_ns(s.header.stamp) for _, s in harness.statuses[:n_before])
    assert stamps[-1] - last_state_stamp > 0.5e9  # they advance with time (DAMP comes > 500 ms later)
    cmd_stamps = [ticks.stamp_to_ns(m.header.stamp) for _, m in harness.commands[-10:]]
    assert all(b > a for a, b in zip(cmd_stamps, cmd_stamps[1:]))  # the commands (damping) likewise
    assert_all_commands_sane(harness.commands)


# --- item 9: lockstep stamps -----------------------------------------------------------------------------

def test_lockstep_input_stamped_far_ahead_or_back_is_rejected_and_tracking_goes_on(harness, node_processes):
    """One well-formed joint_states + IMU + reference stamped ~6 h ahead used to run as a tick of its own;
    every real tick after it was 'old' and dropped: the policy froze. A stamp of 0 after tick 20 is time
    going back. Both are now rejected with a log line and a note in the status; every tick still gets
    exactly its command."""
    node_processes.start(*NODE, *LOCKSTEP, name="g1_policy")
    harness.wait_ready()
    k = stand_then_track(harness, 0)
    far = ticks.tick_to_ns(k + 1_000_000)
    publish_stamped(harness, far, window=playing())
    notes = []
    for i in range(5):
        cmd, st = harness.lockstep_tick(k, playing(t=0.2 + i * 0.02), timeout_s=5.0)
        k += 1
        assert st.mode == TrackingStatus.MODE_TRACK and cmd.source == JointCommand.SOURCE_BASELINE
        notes.append(st.watchdog_detail)
    assert any("rejected joint_states" in n and "ticks ahead" in n for n in notes), notes
    publish_stamped(harness, 0)  # time going back
    notes = []
    for i in range(5):
        cmd, st = harness.lockstep_tick(k, playing(t=0.4 + i * 0.02), timeout_s=5.0)
        k += 1
        assert st.mode == TrackingStatus.MODE_TRACK
        notes.append(st.watchdog_detail)
    assert any("rejected joint_states" in n and "never goes back" in n for n in notes), notes
    stamps = [ticks.stamp_to_ns(m.header.stamp) for _, m in harness.commands]
    assert stamps == [ticks.tick_to_ns(i) for i in range(k)]  # one command per tick, in order, none bogus
    assert_all_commands_sane(harness.commands)


def test_lockstep_stamp_zero_neither_resets_motion_server_nor_leaves_track_on_idle(
        harness, node_processes, tmp_path, g1_moves_dir):
    """The real motion_server in lockstep plays B_HandsUp to the real policy node; one joint_states
    stamped 0 used to reset motion_server to IDLE while the policy kept tracking the IDLE reference.
    Now motion_server rejects it (log line) and the clip plays on."""
    from motion_server.importers import import_motion
    from motion_server.library import MotionLibrary

    library = MotionLibrary(tmp_path / "library")
    library.add(import_motion(g1_moves_dir / "bonus" / "B_HandsUp.csv").motion)
    params = {"library": str(library.root), "use_sim_time": True, "autoplay": "B_HandsUp", "autoplay_at_s": 0.4,
              "blend_in_s": 0.5, "odom_topic": "", "publish_visualization": False}
    path = tmp_path / "motion_server.yaml"
    path.write_text(yaml.safe_dump({"motion_server": {"ros__parameters": params}}))
    ms = node_processes.start("-m", "motion_server.node", "--ros-args", "--params-file", str(path), name="motion_server")
    node_processes.start(*NODE, *LOCKSTEP, "-p", "mode_on_start:=stand", "-p", "auto_track:=true",
                         "-p", "stand_ramp_s:=0.3", "-p", "lockstep_input_timeout_s:=2.0", name="g1_policy")
    harness.wait_ready()
    harness.wait_ready("motion_server")
    # both nodes must have matched the harness's clock and joint_states publishers before tick 0: a tick
    # published while discovery is still under way reaches only one of them and the lockstep stalls
    harness.spin_until(lambda: harness.pub_clock.get_subscription_count() >= 2
                       and harness.pub_state.get_subscription_count() >= 2, 20.0,
                       "motion_server and g1_policy subscribed to /clock and joint_states")
    k = 0
    while k < 60:  # 1.2 s: standing, then the clip's blend-in, tracked
        cmd, st = harness.lockstep_tick(k)
        k += 1
    assert st.mode == TrackingStatus.MODE_TRACK and st.active_motion == "B_HandsUp", (st.mode_name, st.watchdog_detail)
    publish_stamped(harness, 0)
    clip_times = []
    for _ in range(40):
        cmd, st = harness.lockstep_tick(k)
        k += 1
        assert st.mode == TrackingStatus.MODE_TRACK and st.active_motion == "B_HandsUp", \
            (k, st.mode_name, st.active_motion, st.watchdog_detail)
        clip_times.append(st.clip_time_s)
    assert all(b > a for a, b in zip(clip_times, clip_times[1:]))  # playback went on
    assert ms.poll() is None
    assert_all_commands_sane(harness.commands)
    log = (tmp_path / "motion_server-0.log").read_text()
    assert "rejected" in log and "never goes back" in log, log[-2000:]


def test_track_refused_with_no_motion_and_an_idle_reference_mid_track_holds_then_damps(harness, node_processes):
    """`set_mode track` with nothing playing is refused with a message; a reference that turns IDLE while
    tracking (motion_server reset or restarted) is never tracked: HOLD in that tick, DAMP once it has been
    IDLE for reference_lost_ms (1 s), as the reference watchdogs do."""
    node_processes.start(*NODE, *LOCKSTEP, name="g1_policy")
    harness.wait_ready()
    idle = standing_window(state=IDLE, motion_name="")
    k = 0
    for _ in range(3):
        harness.lockstep_tick(k, idle)
        k += 1
    assert harness.set_mode("stand").success
    for _ in range(10):
        harness.lockstep_tick(k, idle)
        k += 1
    resp = harness.set_mode("track")
    assert not resp.success and "no motion playing" in resp.message, resp.message
    cmd, st = harness.lockstep_tick(k, idle)
    k += 1
    assert st.mode == TrackingStatus.MODE_STAND

    k = stand_then_track(harness, k)
    cmd, st = harness.lockstep_tick(k, idle)
    first_idle = k
    k += 1
    assert st.mode == TrackingStatus.MODE_HOLD and "IDLE" in st.watchdog_detail and cmd.source == JointCommand.SOURCE_SAFETY
    while True:
        cmd, st = harness.lockstep_tick(k, idle)
        idle_s = (k - first_idle) * robot.CONTROL_PERIOD_S
        k += 1
        if st.mode == TrackingStatus.MODE_DAMP:
            break
        assert st.mode == TrackingStatus.MODE_HOLD and idle_s < 1.0 + 1e-9, (idle_s, st.watchdog_detail)
    assert 1.0 - 1e-9 <= idle_s <= 1.0 + robot.CONTROL_PERIOD_S + 1e-9  # the first tick past 1 s
    assert st.watchdog == TrackingStatus.WATCHDOG_REFERENCE_LOST and is_damping(cmd)
    assert_all_commands_sane(harness.commands)


# --- item 10: a malformed artifact -----------------------------------------------------------------------

@pytest.mark.parametrize("field,value", [("contract_version", "abc"), ("provenance", "a string")])
def test_malformed_artifact_is_refused_naming_the_field_and_the_node_stays_up(harness, node_processes, tmp_path,
                                                                            field, value):
    """Before, the loader raised a bare ValueError and the node died at start-up (no commands at all)."""
    art = make_test_policy("mlp", tmp_path / "good.onnx")
    model = onnx.load(str(art.path))
    for p in model.metadata_props:
        if p.key == c.PREFIX + field:
            p.value = json.dumps(value)
    onnx.save(model, str(tmp_path / "bad.onnx"))
    node_processes.start(*NODE, *LOCKSTEP, "-p", f"policy_path:={tmp_path / 'bad.onnx'}", name="g1_policy")
    harness.wait_ready()
    for k in range(5):
        cmd, st = harness.lockstep_tick(k, playing())
    assert st.controller.startswith(f"none (refused: policy artifact field '{field}'"), st.controller
    assert st.mode == TrackingStatus.MODE_PASSIVE and is_damping(cmd)
    assert_all_commands_sane(harness.commands)


# --- item 4 in MuJoCo: does the robot stay up? -------------------------------------------------------------

@pytest.mark.parametrize("checks", ["on", "off"])
def test_huge_policy_output_in_mujoco_robot_stays_up_only_with_the_checks(harness, node_processes, tmp_path,
                                                                          checks):
    """g1_sim (MuJoCo, lockstep) + g1_policy with the trigger policy, the test side plays the motion server
    (a standing reference, then from tick TRIGGER one that makes the policy output 1e6). With the checks
    (defaults) the command of the trigger tick already holds and the robot stays upright; with them off
    (action_max_* = 0: today's behaviour before the fix) the stiff clipped targets throw it over."""
    pytest.importorskip("g1_hardware.sim_node")
    from g1_tracker_policy.safety import tilt_rad
    from policy_harness import ReferenceServer

    play_at, trigger, end = 40, 80, 180

    def window(k):
        if k < play_at:
            return standing_window(state=IDLE, motion_name="")
        t = (k - play_at) * robot.CONTROL_PERIOD_S
        return playing(t=t) if k < trigger else trigger_window(t=t)

    art = make_trigger_policy(tmp_path / "trigger.onnx")
    server = ReferenceServer(harness, window)
    off = ("-p", "action_max_beyond_limits_rad:=0.0", "-p", "action_max_step_rad:=0.0",
           "-p", "action_max_offset_rad:=0.0") if checks == "off" else ()
    node_processes.start(*NODE, "-p", "use_sim_time:=true", "-p", f"policy_path:={art.path}", "-p", "mode_on_start:=stand",
                         "-p", "stand_ramp_s:=0.6", "-p", "track_ramp_s:=0.2", "-p", "auto_track:=true", *off,
                         name="g1_policy")
    node_processes.start("-m", "g1_hardware.sim_node", "--ros-args", "-p", "mode:=lockstep",
                         "-p", "ready_peers:=[g1_policy,policy_test_harness]", "-p", "initial_command:=stand",
                         name="g1_sim")
    harness.wait_ready()
    server.say_ready()

    def tick_of(status):
        return ticks.stamp_to_tick(status.header.stamp)
    harness.spin_until(lambda: harness.statuses and tick_of(harness.statuses[-1][1]) >= end, 120.0, f"tick {end}")
    server.wait_for_imu(end)
    by_tick = {tick_of(s): s for _, s in harness.statuses}
    cmd_by_tick = {ticks.stamp_to_tick(m.header.stamp): m for _, m in harness.commands}
    assert by_tick[trigger - 1].mode == TrackingStatus.MODE_TRACK
    assert cmd_by_tick[trigger - 1].source == JointCommand.SOURCE_POLICY
    tilt = {k: max(map(abs, tilt_rad(q))) for k, q in server.imu_by_tick.items() if trigger <= k <= end}
    assert_all_commands_sane(harness.commands)
    if checks == "on":
        st = by_tick[trigger]
        assert st.mode == TrackingStatus.MODE_HOLD and st.watchdog == TrackingStatus.WATCHDOG_CONTROLLER_FAULT
        assert cmd_by_tick[trigger].source == JointCommand.SOURCE_SAFETY
        assert all(by_tick[k].mode == TrackingStatus.MODE_HOLD for k in range(trigger, end + 1))
        assert max(tilt.values()) < 0.2, max(tilt.values())  # upright 2 s after the fault
        print(f"checks on: HOLD in tick {trigger} (the trigger tick); max tilt over 2 s {max(tilt.values()):.3f} rad")
    else:
        assert by_tick[trigger].mode == TrackingStatus.MODE_TRACK  # the clipped 1e6 is sent, stiff
        fell = [k for k in sorted(tilt) if tilt[k] > 1.0]
        assert fell, f"expected the robot to fall without the checks (max tilt {max(tilt.values()):.2f} rad)"
        print(f"checks off: tilt > 1 rad {(fell[0] - trigger) * robot.CONTROL_PERIOD_S:.2f} s after the fault")
