"""Unitree low-level protocol: the CRC against independent implementations, the LowCmd_ layout, and the
driver's safety logic (arming, timeout -> damping) without DDS."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from g1_description import robot
from hardware_helpers import unitree_crc32_core
from g1_hardware.sim_core import CommandError, MotorCommand
from g1_hardware.unitree_lowlevel import (LOWCMD_STRUCT, Decimator, DriverConfig, DriverCore, LowCmdFrame,
                                          crc32_core, crc_of_packed)


def crc32_mpeg2(data: bytes) -> int:
    """The catalogue's CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no xorout)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


def test_catalogue_check_value():
    assert crc32_mpeg2(b"123456789") == 0x0376E6E7  # published check value of CRC-32/MPEG-2


def test_table_crc_equals_the_sdk_bit_loop_and_mpeg2_of_the_byte_swapped_words():
    rng = np.random.default_rng(0)
    for n in (1, 2, 7, 250):
        words = rng.integers(0, 2**32, n, dtype=np.uint64).tolist()
        expected = unitree_crc32_core(words)
        assert crc32_core(words) == expected
        assert crc32_mpeg2(struct.pack(f">{n}I", *words)) == expected
    assert crc32_core([]) == 0xFFFFFFFF


def test_lowcmd_layout_matches_the_sdk_struct():
    """mode_pr@0, mode_machine@1, motor_cmd[i]@4+28i (mode, pad3, q dq tau kp kd, reserve), reserve@984."""
    frame = LowCmdFrame.from_command(MotorCommand.hold(robot.DEFAULT_JOINT_POS), mode_machine=5)
    packed = frame.pack()
    assert len(packed) == LOWCMD_STRUCT.size == 1000  # 1004-byte struct minus the crc word
    assert packed[0] == 0 and packed[1] == 5
    i = 3  # left knee
    mode, q, dq, tau, kp, kd = struct.unpack_from("<B3x5f", packed, 4 + 28 * i)
    assert (mode, q, kp, kd) == (1, pytest.approx(robot.DEFAULT_JOINT_POS[i]), pytest.approx(robot.STAND_KP[i]),
                                 pytest.approx(robot.STAND_KD[i]))
    assert struct.unpack_from("<B3x5fI", packed, 4 + 28 * 29) == (0, 0.0, 0.0, 0.0, 0.0, 0.0, 0)  # unused slot
    assert frame.crc() == unitree_crc32_core(struct.unpack("<250I", packed))


def driver(**overrides) -> DriverCore:
    config = dict(allow_arming=True, accepted_mode_machines=(5,))
    config.update(overrides)
    core = DriverCore(DriverConfig(**config))
    core.on_lowstate(5, robot.DEFAULT_JOINT_POS.copy(), now=0.0)
    return core


def stand(core: DriverCore, now: float):
    fields = dict(position=robot.DEFAULT_JOINT_POS, velocity=np.zeros(29), kp=robot.STAND_KP,
                  kd=robot.STAND_KD, effort=np.zeros(29))
    return core.on_command(robot.JOINT_NAMES, fields, now)


@pytest.mark.parametrize("overrides, lowstate, why", [
    (dict(allow_arming=False), None, "allow_arming is false"),
    (dict(accepted_mode_machines=()), None, "mode_machine 5, not in accepted"),
    (dict(dof_variant="g1_23dof"), None, "dof_variant"),
    ({}, (5, np.full(29, 3.5)), "outside the G1-29 limits"),
    ({}, "stale", "no lowstate"),
])
def test_arming_is_refused_with_a_reason(overrides, lowstate, why):
    core = driver(**overrides)
    now = 0.01
    if lowstate == "stale":
        now = 1.0
    elif lowstate is not None:
        core.on_lowstate(*lowstate, now=0.0)
    ok, message = core.arm(now)
    assert not ok and why in message
    assert core.next_frame(now) is None, "a driver that was never armed sends nothing"


def test_armed_driver_sends_the_command_then_damping_when_commands_stop():
    core = driver()
    stand(core, 0.0)  # a command from before arming must not actuate
    assert core.next_frame(0.01) is None
    assert core.arm(0.01)[0]
    frame = core.next_frame(0.02)
    assert frame.mode_machine == 5 and np.all(frame.kp == 0) and np.all(frame.kd[:29] > 0)
    stand(core, 0.03)
    frame = core.next_frame(0.05)
    np.testing.assert_allclose(frame.kp[:29], robot.STAND_KP.astype(np.float32))
    assert np.all(frame.mode[:29] == 1) and np.all(frame.mode[29:] == 0)
    assert not core.damping_since_timeout
    core.on_lowstate(5, robot.DEFAULT_JOINT_POS.copy(), now=0.12)  # the robot keeps reporting
    frame = core.next_frame(0.03 + 0.1 + 1e-3)  # 101 ms without a command
    assert np.all(frame.kp == 0) and np.all(frame.kd[:29] > 0) and core.damping_since_timeout
    stand(core, 0.2)
    assert core.next_frame(0.21).kp[0] > 0  # commands resumed
    core.disarm()
    frame = core.next_frame(0.22)
    assert frame is not None and np.all(frame.kp == 0), "after actuating, disarm means damping, not silence"


def test_commands_lost_past_command_loss_fault_s_latch_a_fault():
    """A gap shorter than command_loss_fault_s damps and resumes; a longer one disarms: the robot has
    sagged under the damping by then, and a policy that comes back must not snap it stiff."""
    core = driver(command_loss_fault_s=0.5, lowstate_timeout_s=10.0)
    assert core.arm(0.0)[0]
    stand(core, 0.01)
    assert core.next_frame(0.2).kp[0] == 0 and core.damping_since_timeout  # 0.19 s gap: damping
    stand(core, 0.3)
    assert core.next_frame(0.31).kp[0] > 0 and core.armed  # it came back in time: resumes
    assert core.next_frame(0.8).kp[0] == 0 and core.armed  # 0.5 s gap: still only damping
    frame = core.next_frame(0.81)  # 0.51 s: a fault
    assert np.all(frame.kp == 0) and np.all(frame.kd[:29] > 0) and not core.armed
    (fault,) = core.take_faults()
    assert "no joint_command for 0.510 s" in fault and "g1_driver/arm" in fault, fault
    stand(core, 0.9)
    assert core.next_frame(0.91).kp[0] == 0 and not core.damping_since_timeout, "a returning policy actuated"
    assert core.arm(0.92)[0]
    assert core.next_frame(0.93).kp[0] == 0, "the command from before the new arm call actuated"
    stand(core, 0.94)
    assert core.next_frame(0.95).kp[0] > 0 and core.take_faults() == []


def test_a_stale_command_does_not_end_the_damping():
    """A command that waited in a queue while the driver stalled (its stamp is older than
    command_max_age_s) must not make a robot that went to damping stiff again; a fresh one does. While
    the stream is live a late command is still the newest target and is taken."""
    core = driver(lowstate_timeout_s=10.0)
    assert core.arm(0.0)[0]
    fields = dict(position=robot.DEFAULT_JOINT_POS, velocity=np.zeros(29), kp=robot.STAND_KP,
                  kd=robot.STAND_KD, effort=np.zeros(29))
    with pytest.raises(CommandError, match="command_max_age_s"):  # just armed: nothing fresh yet
        core.on_command(robot.JOINT_NAMES, fields, 0.005, age_s=0.2)
    stand(core, 0.01)
    core.on_command(robot.JOINT_NAMES, fields, 0.05, age_s=0.15)  # live stream, a late command: taken
    assert core.next_frame(0.06).kp[0] > 0
    assert core.next_frame(0.16).kp[0] == 0 and core.damping_since_timeout
    for age in (0.113, -0.2, float("nan")):  # sent 113 ms ago; stamped ahead (clocks differ); no stamp
        with pytest.raises(CommandError, match="does not end the damping"):
            core.on_command(robot.JOINT_NAMES, fields, 0.165, age_s=age)
        assert core.next_frame(0.166).kp[0] == 0, f"a command aged {age} s actuated"
    core.on_command(robot.JOINT_NAMES, fields, 0.17, age_s=0.03)
    assert core.next_frame(0.171).kp[0] > 0
    off = driver(command_max_age_s=0.0, lowstate_timeout_s=10.0)  # 0: no check
    assert off.arm(0.0)[0]
    off.on_command(robot.JOINT_NAMES, fields, 0.01, age_s=5.0)
    assert off.next_frame(0.02).kp[0] > 0


def test_command_loss_fault_s_below_the_command_timeout_is_refused():
    with pytest.raises(ValueError, match="command_loss_fault_s"):
        driver(command_timeout_s=0.1, command_loss_fault_s=0.05)


@pytest.mark.parametrize("fault, why", [
    ("nan", "NaN/inf readings (joint position of left_knee_joint)"),
    ("imu", "NaN/inf readings (IMU)"),
    ("mode_machine", "mode_machine changed from 5 to 6"),
    ("silence", "no lowstate for 0.150 s"),
])
def test_faults_while_armed_disarm_to_damping_and_stay_disarmed(fault, why):
    core = driver()
    assert core.arm(0.0)[0]
    stand(core, 0.01)
    assert core.next_frame(0.02).kp[0] > 0
    q = robot.DEFAULT_JOINT_POS.copy()
    if fault == "nan":
        q[robot.JOINT_INDEX["left_knee_joint"]] = np.nan
        core.on_lowstate(5, q, 0.03)
    elif fault == "imu":
        core.on_lowstate(5, q, 0.03, {"IMU": [1.0, 0.0, np.inf]})
    elif fault == "mode_machine":
        core.on_lowstate(6, q, 0.03)
    frame = core.next_frame(0.15)
    assert not core.armed and np.all(frame.kp == 0) and np.all(frame.kd[:29] > 0)
    assert frame.mode_machine == (6 if fault == "mode_machine" else 5)  # the robot's current one: it accepts it
    faults = core.take_faults()
    assert len(faults) == 1 and why in faults[0] and "disarmed" in faults[0], faults
    core.on_lowstate(5, robot.DEFAULT_JOINT_POS.copy(), 0.16)
    stand(core, 0.16)  # the policy keeps commanding, the state is fine again: still damping (latched)
    assert np.all(core.next_frame(0.17).kp == 0) and core.take_faults() == []


def test_arming_refuses_nan_readings():
    core = driver()
    q = robot.DEFAULT_JOINT_POS.copy()
    q[0] = np.nan  # NaN passes every limit comparison: refused by its own check
    core.on_lowstate(5, q, 0.0)
    ok, message = core.arm(0.01)
    assert not ok and "left_hip_pitch_joint" in message and core.next_frame(0.02) is None
    core.on_lowstate(5, robot.DEFAULT_JOINT_POS.copy(), 0.03, {"joint velocities": [np.nan]})
    ok, message = core.arm(0.04)
    assert not ok and "joint velocities" in message


def test_driver_rejects_bad_commands_and_keeps_the_previous_one():
    core = driver()
    core.arm(0.0)
    stand(core, 0.0)
    with pytest.raises(CommandError):
        core.on_command(robot.JOINT_NAMES, dict(position=[np.nan] * 29, velocity=[0] * 29, kp=[0] * 29,
                                                kd=[0] * 29, effort=[0] * 29), 0.01)
    assert core.next_frame(0.02).kp[0] == np.float32(robot.STAND_KP[0])


def test_crc_of_packed_reads_little_endian_words():
    assert crc_of_packed(struct.pack("<2I", 1, 2)) == unitree_crc32_core([1, 2])


def test_lowstate_is_decimated_to_the_state_rate_on_its_own_deadline():
    decimator = Decimator(0.02)
    times = np.arange(0, 1.0, 0.002) + np.random.default_rng(1).uniform(0, 0.0005, 500)  # 500 Hz, jittered
    passed = [t for t in times if decimator.take(t)]
    assert len(passed) == 50 and np.all(np.abs(np.diff(passed) - 0.02) < 0.0026)  # within one sample
    assert decimator.take(5.0) and not decimator.take(5.001) and decimator.take(5.0201)  # after a gap
