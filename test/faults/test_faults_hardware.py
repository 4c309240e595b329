"""Fault injection against the hardware side, real nodes over DDS: the G1 driver against the fake G1
(which speaks the robot's own protocol and measures what it is sent), the real-time simulator, and
`g1 track` losing its simulator. Each test asserts what reaches the robot: every frame finite and within
limits, damping after a fault, and for whole runs a valid bag and a report that names the event.

Figures (damping latencies) are printed for the README's fault table, not asserted against tight
bounds: this machine is shared and loaded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool

from g1_common import topics
from hw_fault_helpers import (FakeRobot, StandCommands, assert_lowcmds_sane, kill_child, log_text,  # noqa: F401
                              probe, rclpy_context)
from unitree_hg.msg import LowCmd

MODE_MACHINE = 5
#: what the driver logs when its joint_command stream goes stale (damping until commands resume)
COMMAND_STALL_LOG = "no joint_command for >"
LOWCMD_READER = QoSProfile(depth=2, reliability=ReliabilityPolicy.BEST_EFFORT)  # newest frames only
FAKE = ("-m", "g1_hardware.fake_g1", "--ros-args", "-p", f"mode_machine:={MODE_MACHINE}")
# lowstate_timeout_s 0.25 s rather than 0.1: the fake G1 is a Python 500 Hz loop on a shared 2-core
# machine, where a 100 ms stall is not a fault of the link. The loss test measures against this value.
LOWSTATE_TIMEOUT_S = 0.25
DRIVER = ("-m", "g1_hardware.g1_driver", "--ros-args", "-p", "allow_arming:=true",
          "-p", f"accepted_mode_machines:=[{MODE_MACHINE}]", "-p", f"lowstate_timeout_s:={LOWSTATE_TIMEOUT_S}")


def arm(probe, on: bool = True):
    return probe.call(SetBool, topics.DRIVER_ARM, SetBool.Request(data=on), timeout_s=30.0)


def driver_on_fake_robot(node_processes, probe):
    """The driver against the fake G1, both up, the stand commands reaching the driver: (recorded lowcmd
    frames, driver process, FakeRobot, StandCommands)."""
    lowcmds = probe.record(LowCmd, "lowcmd", LOWCMD_READER)
    states = probe.record(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    node_processes.start(*FAKE, name="fake_g1")
    driver = node_processes.start(*DRIVER, name="g1_driver")
    robot = FakeRobot(probe)
    commands = StandCommands(probe)
    probe.spin_until(lambda: robot.latest is not None and len(states) > 5, 30.0, "the fake G1 through the driver")
    commands.send_until(lambda: commands.pub.get_subscription_count() > 0, 10.0, "the driver's command reader")
    return lowcmds, driver, robot, commands


def test_driver_survives_arm_calls_whose_outcome_changes(node_processes, probe):
    """Issue 12 item 1: refused then accepted (and accepted then refused) arm calls. rclpy refuses to
    change a logger call site's severity; the driver died on the second call and lowcmd stopped."""
    lowcmds = probe.record(LowCmd, "lowcmd", LOWCMD_READER)
    driver = node_processes.start(*DRIVER, name="g1_driver")
    commands = StandCommands(probe)
    refused = arm(probe)  # no robot yet: no lowstate
    assert not refused.success and "no lowstate" in refused.message, refused.message
    states = probe.record(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    fake = node_processes.start(*FAKE, name="fake_g1")
    robot = FakeRobot(probe)
    probe.spin_until(lambda: robot.latest is not None and len(states) > 5, 30.0, "the fake G1 through the driver")
    commands.send_until(lambda: commands.pub.get_subscription_count() > 0, 10.0, "the driver's command reader")
    accepted = arm(probe)
    assert accepted.success, accepted.message
    assert driver.poll() is None, f"the driver died on an accepted arm call after a refused one:\n" \
                                  f"{log_text(node_processes, driver)}"
    commands.send_until(lambda: robot.latest["kp_sum"] > 1000, 15.0, "the robot to run the stand gains")
    assert arm(probe, False).success
    node_processes.stop(fake)  # lowstate gone: the next arm call is refused again
    probe.spin_for(LOWSTATE_TIMEOUT_S + 0.3)
    again = arm(probe)
    assert not again.success and "no lowstate" in again.message, again.message
    n = len(lowcmds)
    probe.spin_for(0.5)
    assert driver.poll() is None and len(lowcmds) > n, "the driver stopped sending after an arm call"
    last = lowcmds[-1]  # disarmed after having actuated: damping, never silence
    assert all(c.kp == 0 for c in last.motor_cmd) and all(c.kd > 0 for c in last.motor_cmd[:29])
    assert_lowcmds_sane(lowcmds)
    assert "Traceback" not in log_text(node_processes, driver)


def test_driver_refuses_nan_state_and_damps_on_nan_mode_machine_change_and_lowstate_loss(node_processes, probe):
    """Issue 12 item 2: a NaN joint reading passed every limit comparison at arming; while armed, NaN
    state, a changed mode_machine (echoed, still actuating) and a lost lowstate kept stiff commands going.
    Each fault must end in damping frames that the robot accepts, and the driver stays disarmed."""
    lowcmds, driver, robot, commands = driver_on_fake_robot(node_processes, probe)

    # arming on a NaN reading is refused, naming the joint
    robot.inject(nan_joint="left_knee_joint")
    probe.spin_for(0.3)
    refused = arm(probe)
    assert not refused.success and "left_knee_joint" in refused.message and "NaN" in refused.message, refused.message
    robot.inject(nan_joint="")
    figures = {}

    def armed_then(fault: dict, name: str, restore: dict | None = None) -> None:
        settle_s = 0.3
        for attempt in range(3):
            probe.spin_for(settle_s)
            stalls = log_text(node_processes, driver).count(COMMAND_STALL_LOG)
            result = arm(probe)
            assert result.success, f"{name}: {result.message}"
            commands.send_until(lambda: robot.latest["kp_sum"] > 1000, 15.0,
                                f"{name}: the robot to run the stand gains")
            robot.inject(commands, **fault)
            # the policy keeps commanding: a disarmed driver must not pass any of it on
            commands.send_until(lambda: robot.latest["damping_after_ms"] is not None, 10.0,
                                f"{name}: damping frames accepted by the robot")
            commands.send_for(0.6)
            status = robot.latest
            # This test's own command stream stalled past command_timeout_s (a loaded machine: CI once saw
            # it 12 ms after a lowstate-loss injection): the driver damped for that, as it must, and went
            # stiff again when the commands came back, so the fault's damping was not what got measured.
            # Measure the phase again; a driver that goes stiff after a fault without such a stall fails.
            early = "silence_s" in fault and status["damping_after_ms"] < LOWSTATE_TIMEOUT_S * 1e3 * 0.9
            if (log_text(node_processes, driver).count(COMMAND_STALL_LOG) > stalls and attempt < 2
                    and (status["stiff_after_damping"] or early)):
                print(f"{name}: the test's commands stalled past command_timeout_s; measuring again")
                if restore:
                    robot.inject(**restore)
                settle_s = 0.3 + fault.get("silence_s", 0.0)  # arming needs lowstate back
                continue
            break
        assert status["stiff_after_damping"] == 0, f"{name}: stiff frames after damping: {status}"
        assert status["kd_min"] > 0 and status["kp_sum"] == 0, status
        figures[name] = round(status["damping_after_ms"], 1)
        if restore:
            robot.inject(**restore)

    armed_then({"nan_joint": "right_hip_roll_joint"}, "NaN joint reading", restore={"nan_joint": ""})
    armed_then({"mode_machine": MODE_MACHINE + 1}, "mode_machine change", restore={"mode_machine": MODE_MACHINE})
    armed_then({"silence_s": 1.5}, "lowstate loss")
    probe.spin_for(1.5)
    commands.send_for(0.5)  # lowstate is back: still disarmed, still damping
    assert robot.latest["stiff_after_damping"] == 0 and robot.latest["kp_sum"] == 0, robot.latest
    assert figures["lowstate loss"] >= LOWSTATE_TIMEOUT_S * 1e3 * 0.9, figures  # not before the timeout
    assert robot.latest["nonfinite_frames"] == 0 and robot.latest["out_of_limit_frames"] == 0, robot.latest
    assert_lowcmds_sane(lowcmds)
    log = log_text(node_processes, driver)
    for text in ("NaN", "mode_machine changed", "no lowstate"):
        assert text in log, f"{text!r} not in the driver log:\n{log}"
    assert driver.poll() is None and "Traceback" not in log, log
    print(f"driver damping after the fault (ms, measured by the fake G1): {figures}")


def test_driver_stays_damped_when_a_lost_command_stream_comes_back(node_processes, probe):
    """The driver went stiff again the moment joint_command resumed after any gap, however long: a policy
    restarted after the robot sagged under seconds of damping snapped it onto its target. Now a gap past
    command_loss_fault_s (0.5 s) is a latched fault: the returning commands reach the robot only after
    g1_driver/arm is called again."""
    lowcmds, driver, robot, commands = driver_on_fake_robot(node_processes, probe)
    assert arm(probe).success
    commands.send_until(lambda: robot.latest["kp_sum"] > 1000, 15.0, "the robot to run the stand gains")
    robot.inject(commands)  # no fault: marks the moment the commands stop
    probe.spin_until(lambda: "command_loss_fault_s" in log_text(node_processes, driver), 5.0,
                     "the command-loss fault")  # the policy is gone for > 0.5 s
    stopped = robot.latest
    assert stopped["damping_after_ms"] is not None, stopped
    # The measurement starts at the fault, not at the last command: on a loaded machine the driver may
    # damp (100 ms) and then take a command that was queued before the stream stopped (that is refused
    # now if stamped > command_max_age_s earlier; a CI run saw one 6 ms after the damping): the fault
    # latch is about the commands that come back afterwards.
    robot.inject()
    log_at_fault = len(log_text(node_processes, driver))
    commands.send_for(1.0)  # the policy comes back
    status = robot.latest
    assert status["damping_after_ms"] is not None and status["stiff_after_damping"] == 0, status
    assert status["kp_sum"] == 0 and status["kd_min"] > 0, status
    log = log_text(node_processes, driver)
    assert "joint_command resumed" not in log[log_at_fault:], log
    assert arm(probe).success  # re-armed: fresh commands actuate again, stale ones do not
    robot.inject()
    commands.stamp_age_s = 0.3  # stamped 300 ms ago (> command_max_age_s): as if they sat in a queue
    commands.send_for(0.4)
    assert robot.latest["damping_after_ms"] is not None and robot.latest["stiff_after_damping"] == 0, robot.latest
    assert "command_max_age_s" in log_text(node_processes, driver)
    commands.stamp_age_s = 0.0
    commands.send_until(lambda: robot.latest["kp_sum"] > 1000, 15.0, "the stand gains after re-arming")
    assert_lowcmds_sane(lowcmds)
    assert robot.latest["nonfinite_frames"] == 0 and robot.latest["out_of_limit_frames"] == 0, robot.latest
    assert driver.poll() is None and "Traceback" not in log_text(node_processes, driver)
    print(f"driver damping after the command stream stopped: {stopped['damping_after_ms']:.0f} ms")


def test_realtime_sim_damps_like_the_robot_when_commands_stop(node_processes, probe):
    """Issue 12 item 5: the real-time simulator held the last stiff target forever once the policy
    died, while the real driver damps after command_timeout_s (0.1 s). Now the sim does the same."""
    from nav_msgs.msg import Odometry

    from g1_common import conversions
    from g1_description import robot as g1
    from g1_hardware.sim_core import COMMAND_TIMEOUT_S

    states = probe.record(JointState, topics.JOINT_STATES, topics.CONTROL_QOS)
    odom = probe.record(Odometry, topics.GROUND_TRUTH_ODOM, topics.CONTROL_QOS)
    sim = node_processes.start("-m", "g1_hardware.sim_node", "--ros-args", "-p", "mode:=realtime",
                               "-p", "initial_command:=stand", name="rt-sim")
    commands = StandCommands(probe)
    probe.spin_until(lambda: len(states) > 5 and commands.pub.get_subscription_count() > 0, 30.0, "the simulator")
    commands.send_for(1.5)
    last_command_s = commands.last_sent_s  # the policy "dies" here
    n = len(states)
    probe.spin_for(3.0)
    assert sim.poll() is None

    def stamp_s(msg):
        return msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9

    _, _, tau_standing = conversions.joint_state_to_arrays(states[n - 1])
    assert np.abs(tau_standing).max() > 10.0, "the stand command was not holding the robot"
    # damping: kp = 0, so the torque is kd * (0 - dq): near zero at its onset, the robot still at rest
    after = [m for m in states[n:] if stamp_s(m) > last_command_s]
    onset = next((m for m in after if np.abs(conversions.joint_state_to_arrays(m)[2]).max() < 2.0), None)
    assert onset is not None, "the simulator kept the stiff target after the commands stopped"
    latency_ms = (stamp_s(onset) - last_command_s) * 1e3
    # Not before the timeout: the sim times out from the last command it *received*; on a loaded machine
    # the last one or two best-effort commands published before the stop can be lost (CI once measured
    # 86 ms from the last publish), so the bound allows two 20 ms command periods of slack.
    assert latency_ms >= COMMAND_TIMEOUT_S * 1e3 - 45.0, f"damped {latency_ms:.0f} ms after the last command"
    assert odom[-1].pose.pose.position.z < g1.DEFAULT_ROOT_HEIGHT_M - 0.2, "the damped robot did not sink"
    log = log_text(node_processes, sim)
    assert f"no joint_command for > {COMMAND_TIMEOUT_S} s: damping" in log, log
    print(f"real-time sim: damping {latency_ms:.0f} ms after the last command (timeout {COMMAND_TIMEOUT_S} s)")


def _track(out: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "g1_bringup.cli", "track", "--out", str(out), "--quiet",
                             "--baseline", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"})


def _wait_for_log(proc, path: Path, text: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not (path.is_file() and text in path.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{text!r} not in {path} within {timeout_s} s"
        time.sleep(0.1)


def _finish(proc, timeout_s: float = 120.0) -> tuple[int, str]:
    try:
        _, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # what a user would do: the fault must survive it
        _, stderr = proc.communicate(timeout=60)
        raise AssertionError(f"g1 track hung ({timeout_s} s) after the fault:\n{stderr[-3000:]}") from None
    return proc.returncode, stderr


def _valid_bag_and_report(out: Path) -> dict:
    from rosbags.rosbag2 import Reader

    with Reader(out / "bag") as reader:  # closed: metadata.yaml written, readable
        assert reader.message_count > 0
    report = json.loads((out / "report.json").read_text())
    assert report["commands"]["all_finite"] and report["commands"]["within_joint_limits"]
    return report


def test_track_ends_with_a_failure_when_the_simulator_dies(tmp_path):
    """Issue 12 item 7: `g1 track` hung when the simulator died (lockstep and real time) and Ctrl-C lost
    the event. It must end by itself, non-zero, with a closed bag and a report naming the death.
    Lockstep: `--inject kill@1.0:g1_sim` (hung forever: the status stamps stop, so "3 s after the kill"
    never came). Real time: the simulator killed from outside (SIGKILL), as a crash would."""
    results = {}
    for mode, args in (("lockstep", ("--inject", "kill@1.0:g1_sim")), ("realtime", ("--realtime",))):
        out = tmp_path / mode
        proc = _track(out, *args, "--duration", "30")
        _wait_for_log(proc, out / "logs" / "g1_policy.log", "STAND -> TRACK")
        if mode == "realtime":
            time.sleep(1.0)
            kill_child(proc.pid, "g1_hardware.sim_node")
        killed = time.monotonic()
        code, stderr = _finish(proc)
        results[mode] = round(time.monotonic() - killed, 1)
        assert code == 1, f"{mode}: exit code {code}:\n{stderr[-3000:]}"
        assert "the run failed: g1_sim died (killed by SIGKILL" in stderr, stderr[-3000:]
        report = _valid_bag_and_report(out)
        run = report["run"]
        assert run["outcome"].startswith("g1_sim died (killed by SIGKILL") and run["failed"], run
        assert any(e["event"].startswith("g1_sim died") for e in run["events"]), run["events"]
        assert "g1_sim died (killed by SIGKILL" in (out / "report.md").read_text()
    print(f"g1 track ended (s after the simulator's death, incl. evaluation): {results}")


def test_lockstep_report_names_what_ended_the_run_after_the_policy_dies(tmp_path):
    """Issue 12 item 12b: after the policy died in lockstep the report said "the simulator reached the
    run duration". It must name what ended the run."""
    out = tmp_path / "policy_killed"
    proc = _track(out, "--inject", "kill@1.0:g1_policy")
    code, stderr = _finish(proc, 180.0)
    report = _valid_bag_and_report(out)
    outcome = report["run"]["outcome"]
    assert "duration" not in outcome and "g1_policy" in outcome, outcome
    assert "injected kill of g1_policy" in [e["event"] for e in report["run"]["events"]]
    print(f"policy killed in lockstep: exit {code}, outcome {outcome!r}")


def test_track_is_isolated_on_dds_by_default(tmp_path, g1_moves_dir):
    """Issue 12 item 3: with no ROS_* variables `g1 track` ran on domain 0 with subnet discovery, and a
    stray default node received every joint_command. Now: domain SIM_DOMAIN_ID, localhost discovery,
    both reported; a default node hears nothing of the run (a listener on the run's domain does: the
    control). The run plays a uniquely named clip so that other runs on this shared machine do not count."""
    import shutil

    from g1_bringup.graph import SIM_DOMAIN_ID
    from hw_fault_helpers import STRAY_LISTENER, without_ros_settings

    motion = f"isolation_probe_{os.getpid()}"
    clip = tmp_path / f"{motion}.csv"
    shutil.copy(g1_moves_dir / "karate" / "M_ShortMove14.csv", clip)
    env = without_ros_settings()
    listen_s = "120"  # or until told to stop, after the run
    listeners = [subprocess.Popen([sys.executable, "-c", STRAY_LISTENER, listen_s, motion], stdout=subprocess.PIPE,
                                  text=True, env=e) for e in (env, {**env, "ROS_DOMAIN_ID": str(SIM_DOMAIN_ID)})]
    out = tmp_path / "default_dds"
    try:
        time.sleep(3.0)  # the listeners are up before the graph
        # real time, not lockstep: a 4 s lockstep run is over in well under a second of wall time, which a
        # listener on a loaded machine may not even have discovered yet (seen in CI: 0 statuses heard)
        code, stderr = _finish(_track(out, "--motion", str(clip), "--stand-s", "1.0", "--duration", "6",
                                      "--realtime", env=env))
        assert code == 0, stderr[-3000:]
    finally:
        time.sleep(1.0)
        for listener in listeners:
            listener.terminate()
        stray, control = [json.loads(p.communicate(timeout=120)[0].strip() or "{}") for p in listeners]
    assert stray["run_statuses"] == 0, f"a default ROS 2 node heard the run: {stray}"
    assert control["run_statuses"] > 20, f"the control listener on domain {SIM_DOMAIN_ID} heard too little: {control}"
    assert f"ROS_DOMAIN_ID={SIM_DOMAIN_ID} (default), ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (default)" in stderr
    report = _valid_bag_and_report(out)
    assert report["run"]["dds"]["ROS_DOMAIN_ID"] == {"value": str(SIM_DOMAIN_ID), "source": "default"}
    print(f"default DDS: a domain-0 node heard {stray}, a domain-{SIM_DOMAIN_ID} listener {control}")


def test_dds_settings_respect_the_users_variables():
    from g1_bringup.graph import GraphOptions, dds_settings, tracking_graph

    mine = dds_settings("sim", {"ROS_DOMAIN_ID": "5", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"})
    assert mine.env == {"ROS_DOMAIN_ID": "5", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert {v["source"] for v in mine.report.values()} == {"environment"}
    robot = {n.name: n.env for n in tracking_graph(GraphOptions(hardware="robot"), {})}
    assert robot["g1_driver"] == {"ROS_DOMAIN_ID": "0", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    assert robot["g1_policy"] == {"ROS_DOMAIN_ID": "0", "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    assert "FASTDDS_DEFAULT_PROFILES_FILE" in dds_settings("robot", {}).notes[0]


def test_shipped_fastdds_profile_confines_udp_to_its_interfaces(tmp_path):
    """Issue 12 item 3, real-robot path: the example profile (g1_hardware/config/fastdds_robot_interface.xml)
    is one Fast DDS parses and applies. As shipped (lo + eth0) two SUBNET participants talk; the same file
    with only interfaces this machine lacks (and no shared memory) cannot: the whitelist is in force."""
    from g1_description.paths import package_share
    from hw_fault_helpers import exchanged

    profile = package_share("g1_hardware") / "config" / "fastdds_robot_interface.xml"
    env = {**os.environ, "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET", "FASTDDS_DEFAULT_PROFILES_FILE": str(profile)}
    got, err = exchanged(env)
    assert got > 30, f"the shipped profile stopped a local talker and listener: {got}\n{err}"
    text = profile.read_text().replace("<interface>lo</interface>", "<interface>g1nosuch0</interface>")
    text = text.replace("<interface>eth0</interface>", "<interface>g1nosuch1</interface>")
    text = text.replace("<transport_id>g1_shm</transport_id>\n        </userTransports>", "</userTransports>")
    assert text.count("g1_shm") == 1 and "g1nosuch1" in text, "the test's edit of the profile no longer applies"
    elsewhere = tmp_path / "elsewhere.xml"
    elsewhere.write_text(text)
    got, err = exchanged({**env, "FASTDDS_DEFAULT_PROFILES_FILE": str(elsewhere)})
    assert got == 0 and "whitelist" in err, f"traffic outside the whitelisted interfaces: {got}\n{err}"


def test_an_error_inside_the_driver_ends_in_damping_not_in_a_dead_driver(node_processes, probe):
    """Issue 12 item 1, in general: any exception in the driver's callbacks or its writer loop must end
    in damping frames that keep coming. The real driver node runs here in the test process so that
    errors can be planted in it (its command handling, then its frame builder); the robot is the fake G1."""
    import threading

    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import Parameter

    from g1_hardware.g1_driver import G1Driver

    node_processes.start(*FAKE, name="fake_g1")
    driver = G1Driver(parameter_overrides=[
        Parameter("allow_arming", value=True), Parameter("accepted_mode_machines", value=[MODE_MACHINE]),
        # 1 s: in this process the driver shares the GIL with the probe, and this test is not about lowstate loss
        Parameter("lowstate_timeout_s", value=1.0)])
    executor = SingleThreadedExecutor()
    executor.add_node(driver)
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            executor.spin_once(0.05)
    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        robot = FakeRobot(probe)
        commands = StandCommands(probe)
        probe.spin_until(lambda: robot.latest is not None and driver.core.lowstate_time is not None, 30.0,
                         "the fake G1's lowstate at the driver")
        commands.send_until(lambda: commands.pub.get_subscription_count() > 0, 10.0, "the driver's command reader")
        for planted in ("command", "writer"):
            assert arm(probe).success
            commands.send_until(lambda: robot.latest["kp_sum"] > 1000, 15.0,
                                f"{planted}: the stand gains (driver faults: {driver.core.faults})")
            core = driver.core
            if planted == "command":
                def broken(*args):
                    raise RuntimeError("planted fault in command handling")
                core.on_command = broken
            else:
                original, calls = core.next_frame, []

                def broken(now):  # fails once, then works again
                    calls.append(now)
                    if len(calls) == 1:
                        raise RuntimeError("planted fault in the writer")
                    return original(now)
                core.next_frame = broken
            robot.inject(commands)  # an empty fault: only starts the fake G1's damping clock
            commands.send_until(lambda: robot.latest["damping_after_ms"] is not None, 10.0,
                                f"{planted}: damping frames at the robot")
            commands.send_for(0.5)
            assert robot.latest["stiff_after_damping"] == 0 and robot.latest["kp_sum"] == 0, robot.latest
            assert spinner.is_alive() and driver._writer.is_alive(), "the driver died of the planted fault"
            assert not core.armed
            for attr in ("on_command", "next_frame"):  # the planted instance attributes go: the real methods
                core.__dict__.pop(attr, None)
            print(f"planted error in the driver's {planted}: damping after {robot.latest['damping_after_ms']:.0f} ms")
        assert robot.latest["nonfinite_frames"] == 0 and robot.latest["out_of_limit_frames"] == 0
    finally:
        stop.set()
        spinner.join(5.0)
        executor.shutdown()
        driver.destroy_node()


def test_ctrl_c_after_a_fault_keeps_the_fault_in_the_report(tmp_path):
    """Issue 12 item 7: a user who pressed Ctrl-C while `g1 track` waited after a fault lost the fault:
    the report said only "interrupted by Ctrl-C". The policy is killed (lockstep), then Ctrl-C comes
    while the graph is quiet: both must be in the report, and the bag closed."""
    from hw_fault_helpers import child_pids

    out = tmp_path / "ctrl_c_after_fault"
    proc = _track(out, "--inject", "kill@1.0:g1_policy")
    _wait_for_log(proc, out / "logs" / "g1_policy.log", "STAND -> TRACK")
    deadline = time.monotonic() + 60
    while any("g1_tracker_policy.node" in cmd for cmd in child_pids(proc.pid).values()):
        assert time.monotonic() < deadline and proc.poll() is None, "the injected kill did not happen"
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    code, stderr = _finish(proc)
    assert code == 0, stderr[-3000:]
    report = _valid_bag_and_report(out)
    events = [e["event"] for e in report["run"]["events"]]
    assert "injected kill of g1_policy" in events and "interrupted by Ctrl-C" in events, events
    assert report["run"]["outcome"] == "interrupted by Ctrl-C"
