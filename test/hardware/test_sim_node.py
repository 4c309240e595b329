"""The simulator node over real DDS: lockstep standing, bit-identical reruns, the readiness handshake,
command timeouts, bad commands and the services, each with g1_sim running as its own process."""

from __future__ import annotations

import time

import numpy as np
import pytest
from geometry_msgs.msg import Vector3
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, JointState
from std_srvs.srv import SetBool

from g1_common import conversions, ticks, topics
from g1_description import robot
from g1_interfaces.msg import JointCommand
from g1_interfaces.srv import PushRobot, ResetSim, StepSim
from hardware_helpers import log_text, read_summary, wait_for_exit

SIM = ("-m", "g1_hardware.sim_node", "--ros-args")
ECHO = ("-m", "g1_hardware.command_echo", "--ros-args", "-p", "use_sim_time:=true")


def run_lockstep(node_processes, tmp_path, name: str, duration_s: float, *sim_params: str, echo_params=()):
    """Start the command-echo peer and g1_sim in lockstep; wait for the sim to finish; return its summary."""
    summary = tmp_path / f"{name}.json"
    node_processes.start(*ECHO, *echo_params, name=f"{name}-echo")
    sim = node_processes.start(*SIM, "-p", "ready_peers:=[command_echo]", "-p", f"duration_s:={duration_s}",
                               "-p", f"final_state_file:={summary}", *sim_params, name=f"{name}-sim")  # later -p wins
    return sim, summary


def test_lockstep_holds_the_default_pose_for_10_s_of_sim_time(node_processes, probe, tmp_path):
    odom = probe.record(Odometry, topics.GROUND_TRUTH_ODOM, topics.CONTROL_QOS)
    imu = probe.record(Imu, topics.IMU, topics.CONTROL_QOS)
    # The probe joins the readiness handshake like a recorder does, so no tick happens before it listens.
    sim, summary_path = run_lockstep(node_processes, tmp_path, "stand", 10.0,
                                     "-p", f"ready_peers:=[command_echo,{probe.node.get_name()}]")
    probe.spin_until(lambda: probe.node.count_publishers(topics.GROUND_TRUTH_ODOM) > 0
                     and probe.node.count_publishers(topics.IMU) > 0, 30.0, "the simulator's publishers")
    probe.say_ready()
    probe.spin_until(lambda: sim.poll() is not None, 60.0, "the 10 s lockstep run to finish")
    assert sim.returncode == 0, log_text(node_processes, sim)
    summary = read_summary(summary_path)
    assert summary["ticks"] == 500 and summary["command_timeouts"] == 0 and summary["deterministic"]
    assert summary["pelvis_height_m"] > robot.DEFAULT_ROOT_HEIGHT_M - 0.03
    assert len(odom) > 50, "the ground truth topic carried too few messages"
    assert min(m.pose.pose.position.z for m in odom) > robot.DEFAULT_ROOT_HEIGHT_M - 0.03
    stamps = [ticks.stamp_to_tick(m.header.stamp) for m in odom]
    assert None not in stamps and stamps == sorted(stamps) and stamps[-1] <= 499, "stamps not on the tick grid"
    quat, _, accel = conversions.imu_to_arrays(imu[-1])
    assert abs(quat[0]) > 0.99 and accel[2] == pytest.approx(9.81, abs=0.5)
    print(f"lockstep stand: RTF {summary['real_time_factor']:.1f}x")


@pytest.mark.parametrize("profile", ["drivers_500hz", "actuator_200hz"])
def test_lockstep_reruns_are_bit_identical(node_processes, tmp_path, profile):
    # Randomised model, action latency, and commands that depend on the tick and on the exact state they
    # answer: a command paired with the wrong tick, or a lost tick, changes the final state.
    params = ("-p", "randomize:=true", "-p", "seed:=7", "-p", "action_latency_steps:=3",
              "-p", f"physics_profile:={profile}")
    echo = ("-p", "wave_amplitude_rad:=0.15", "-p", "feedback_gain:=0.01")
    results = []
    for run in range(2):
        sim, path = run_lockstep(node_processes, tmp_path, f"det{run}", 3.5, *params, echo_params=echo)
        assert wait_for_exit(sim, 60.0) == 0, log_text(node_processes, sim)
        results.append(read_summary(path))
        node_processes.stop_all()
    a, b = results
    assert a["ticks"] == b["ticks"] == 175 and a["deterministic"] and b["deterministic"]
    assert a["physics_profile"] == profile
    assert a["state_sha256"] == b["state_sha256"]
    assert a["joint_positions"] == b["joint_positions"]
    shoulder = robot.JOINT_INDEX["left_shoulder_pitch_joint"]  # the wave is at -0.15 rad at t = 3.5 s
    assert a["joint_positions"][shoulder] < robot.DEFAULT_JOINT_POS[shoulder] - 0.1, \
        "the arm wave did not reach the robot: the test would not see a mispaired command"
    assert a["pelvis_height_m"] > robot.DEFAULT_ROOT_HEIGHT_M - 0.03


def test_lockstep_names_the_peers_that_never_said_ready(node_processes, tmp_path):
    sim = node_processes.start(*SIM, "-p", "ready_peers:=[command_echo,g1_tracker_policy]", "-p",
                               "ready_timeout_s:=3.0", name="missing-sim")
    node_processes.start(*ECHO, name="missing-echo")
    assert wait_for_exit(sim, 30.0) == 1
    log = log_text(node_processes, sim)
    assert "['g1_tracker_policy'] did not say ready" in log, log


def test_unknown_physics_profile_is_named(node_processes):
    sim = node_processes.start(*SIM, "-p", "physics_profile:=fast", name="profile-sim")
    assert wait_for_exit(sim, 30.0) != 0
    log = log_text(node_processes, sim)
    assert "physics profile 'fast': expected one of ['actuator_200hz', 'drivers_500hz']" in log, log


def test_lockstep_command_timeout_damps_and_flags_the_run(node_processes, tmp_path):
    path = tmp_path / "timeout.json"
    sim = node_processes.start(*SIM, "-p", "lockstep_command_timeout_s:=0.05", "-p", "duration_s:=0.1",
                               "-p", f"final_state_file:={path}", name="timeout-sim")
    assert wait_for_exit(sim, 30.0) == 0
    summary, log = read_summary(path), log_text(node_processes, sim)
    assert summary["command_timeouts"] == 5 and not summary["deterministic"]
    assert "no joint_command stamped for tick 0 within 0.05 s: damping" in log, log


def _command(position=None, names=robot.JOINT_NAMES, **fields) -> JointCommand:
    msg = conversions.make_joint_command(ticks.stamp_from_ns(0), robot.DEFAULT_JOINT_POS if position is None
                                         else position, robot.STAND_KP, robot.STAND_KD)
    msg.joint_names = list(names)
    for name, values in fields.items():
        setattr(msg, name, [float(v) for v in values])
    return msg


def _wait_for_log(node_processes, proc, text: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log_text(node_processes, proc):
        assert proc.poll() is None, f"the simulator died:\n{log_text(node_processes, proc)}"
        assert time.monotonic() < deadline, f"{text!r} not logged:\n{log_text(node_processes, proc)}"
        time.sleep(0.05)


def test_realtime_waits_for_its_peers_before_any_physics(node_processes, probe):
    """realtime_wait_for_peers: no state and no physics until the peers said ready and a command
    publisher is matched; then 50 Hz states from the initial (standing) pose."""
    states = probe.record(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    odom = probe.record(Odometry, topics.GROUND_TRUTH_ODOM, topics.CONTROL_QOS)
    sim = node_processes.start(*SIM, "-p", "mode:=realtime", "-p", "realtime_wait_for_peers:=true",
                               "-p", f"ready_peers:=[{probe.node.get_name()}]", name="rt-wait-sim")
    probe.spin_until(lambda: probe.node.count_publishers(topics.JOINT_STATES) > 0, 30.0, "the sim's publishers")
    probe.spin_for(1.5)
    assert not states and sim.poll() is None, "the simulator ran before its peer was ready"
    pub = probe.node.create_publisher(JointCommand, topics.JOINT_COMMAND, topics.CONTROL_QOS)
    probe.say_ready()
    probe.spin_until(lambda: len(states) > 10, 30.0, "joint_states once the peer is ready")
    _wait_for_log(node_processes, sim, "realtime: peers ready")
    # physics starts from the standing pose, not from a robot that already fell while waiting
    assert odom[0].pose.pose.position.z > robot.DEFAULT_ROOT_HEIGHT_M - 0.03
    assert pub.get_subscription_count() > 0


def test_realtime_rejects_bad_commands_with_reasons_and_serves_pause_step_push_reset(node_processes, probe):
    states = probe.record(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    odom = probe.record(Odometry, topics.GROUND_TRUTH_ODOM, topics.CONTROL_QOS)
    pub = probe.node.create_publisher(JointCommand, topics.JOINT_COMMAND, topics.CONTROL_QOS)
    sim = node_processes.start(*SIM, "-p", "mode:=realtime", "-p", "initial_command:=stand", name="rt-sim")
    probe.spin_until(lambda: len(states) > 5 and pub.get_subscription_count() > 0, 30.0, "joint_states")

    wrist_too_far = robot.DEFAULT_JOINT_POS.copy()
    wrist_too_far[robot.JOINT_INDEX["left_wrist_yaw_joint"]] = 3.0
    bad = [
        (_command(position=[np.nan] + [0.0] * 28), "NaN or inf for ['left_hip_pitch_joint']"),
        (_command(kp=[50.0] * 28), "joint_command.kp: expected 29 values"),
        (_command(names=("head_joint",) + robot.JOINT_NAMES[1:]), "unknown joint names ['head_joint']"),
        (_command(position=wrist_too_far), "left_wrist_yaw_joint=3"),
    ]
    for msg, reason in bad:
        pub.publish(msg)
        _wait_for_log(node_processes, sim, reason)
    n = len(states)
    deadline = time.monotonic() + 5.0
    while len(states) <= n + 10:  # a stand command at 50 Hz, like a policy (the sim damps when commands stop)
        assert time.monotonic() < deadline, "no joint_states after the bad commands"
        pub.publish(_command())
        probe.spin_for(0.02)
    _, _, tau = conversions.joint_state_to_arrays(states[-1])  # the stand command still drives the motors
    assert np.abs(tau).max() > 1.0 and odom[-1].pose.pose.position.z > robot.DEFAULT_ROOT_HEIGHT_M - 0.03

    assert probe.call(SetBool, topics.SIM_PAUSE, SetBool.Request(data=True)).success
    probe.spin_for(0.3)
    n = len(states)
    probe.spin_for(0.3)
    assert len(states) == n, "the paused simulator kept publishing"
    step = probe.call(StepSim, topics.SIM_STEP, StepSim.Request(ticks=5))
    assert step.success
    probe.spin_until(lambda: len(states) >= n + 5, 5.0, "5 stepped ticks")
    probe.spin_for(0.3)
    assert len(states) == n + 5
    assert probe.call(SetBool, topics.SIM_PAUSE, SetBool.Request(data=False)).success

    push = probe.call(PushRobot, topics.SIM_PUSH, PushRobot.Request(linear_velocity=Vector3(x=0.6)))
    assert push.success
    n = len(odom)
    v_before = odom[-1].twist.twist.linear.x
    probe.spin_until(lambda: len(odom) > n + 5, 5.0, "odometry after the push")
    # Real time: contact friction and the damping gains brake the body within the 20 ms tick before the
    # first odometry message, so the peak is well below the 0.6 m/s change (0.295 m/s was seen on CI). The
    # body may still be settling before the push (-0.117 m/s seen on CI): the peak must be forward as well,
    # which braking from a backward drift alone cannot give.
    peak = max(m.twist.twist.linear.x for m in odom[n:])
    assert abs(v_before) < 0.2 and peak - v_before > 0.2 and peak > 0.1, (v_before, peak)

    reset = probe.call(ResetSim, topics.SIM_RESET, ResetSim.Request(pose="keyframe:no_such_key"))
    assert not reset.success and "no keyframe 'no_such_key'" in reset.message
    assert probe.call(ResetSim, topics.SIM_RESET, ResetSim.Request(pose="stand")).success
    n = len(odom)
    probe.spin_until(lambda: len(odom) > n + 1, 5.0, "odometry after the reset")
    p = odom[n + 1].pose.pose.position  # the message after the reset
    assert abs(p.x) < 0.02 and p.z == pytest.approx(robot.DEFAULT_ROOT_HEIGHT_M, abs=0.01)
    assert sim.poll() is None
