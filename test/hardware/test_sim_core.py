"""The ROS-free MuJoCo G1 core: standing reset, motor PD, command validation, latency, push, IMU,
randomisation and determinism."""

from __future__ import annotations

import numpy as np
import pytest

from g1_description import robot
from g1_hardware.sim_core import (CommandError, MotorCommand, MujocoG1, Randomization, SimConfig,
                                  validate_command)

FIELDS = ("position", "velocity", "kp", "kd", "effort")


def stand_fields(**override):
    fields = {"position": robot.DEFAULT_JOINT_POS.tolist(), "velocity": [0.0] * 29,
              "kp": robot.STAND_KP.tolist(), "kd": robot.STAND_KD.tolist(), "effort": [0.0] * 29}
    fields.update(override)
    return fields


@pytest.fixture
def warnings():
    return []


@pytest.fixture
def sim(warnings):
    return MujocoG1(warn=warnings.append)


def test_standing_reset_puts_the_feet_flat_on_the_floor_at_the_described_height(sim):
    feet = sim._foot_contact_geoms()
    bottoms = sim.data.geom_xpos[feet, 2] - sim.model.geom_size[feet, 0]
    assert bottoms.min() == pytest.approx(0.0, abs=1e-9)
    assert bottoms.max() < 0.003, "feet not flat: a contact sphere is more than 3 mm above the floor"
    assert sim.data.qpos[2] == pytest.approx(robot.DEFAULT_ROOT_HEIGHT_M, abs=5e-4)
    np.testing.assert_array_equal(sim.joint_positions, robot.DEFAULT_JOINT_POS)


def test_stand_gains_hold_the_robot_up_and_the_imu_reads_gravity(sim):
    sim.set_command(MotorCommand.hold(robot.DEFAULT_JOINT_POS))
    for _ in range(150):  # 3 s: the realistic gains collapse within 2-4 s, the stand gains must not
        sim.step_tick()
    gt, imu = sim.ground_truth(), sim.imu()
    assert gt.position[2] > robot.DEFAULT_ROOT_HEIGHT_M - 0.02
    assert imu.linear_acceleration == pytest.approx([0, 0, 9.81], abs=0.3)  # specific force, up
    assert abs(imu.quat_wxyz[0]) > 0.999 and np.abs(imu.angular_velocity).max() < 0.05
    assert gt.key_body_positions.shape == (len(robot.KEY_BODIES), 3)
    assert gt.key_body_positions[0] == pytest.approx(gt.position)  # pelvis is the first key body


def test_damping_lets_the_robot_sink(sim):
    for _ in range(100):  # the initial command is damping, as on the robot
        sim.step_tick()
    assert sim.data.qpos[2] < robot.DEFAULT_ROOT_HEIGHT_M - 0.2


def test_pd_torque_is_the_motor_law_clipped_to_effort_limits(sim):
    q_des = robot.DEFAULT_JOINT_POS + 0.05
    sim.set_command(MotorCommand(q_des, np.full(29, 0.1), robot.KP.copy(), robot.KD.copy(), np.full(29, 0.5)))
    sim.step_physics()
    expected = robot.KP * 0.05 + robot.KD * 0.1 + 0.5  # the robot starts at rest in the default pose
    np.testing.assert_allclose(sim.last_torque, expected, rtol=1e-12)
    sim.set_command(MotorCommand(q_des + 2.0, np.zeros(29), np.full(29, 500.0), np.zeros(29), np.zeros(29)))
    sim.step_physics()
    assert np.all(np.abs(sim.last_torque) <= robot.EFFORT_LIMIT + 1e-12)
    assert np.any(np.abs(sim.last_torque) == robot.EFFORT_LIMIT)


@pytest.mark.parametrize("case, fields, names, reason", [
    ("nan", stand_fields(position=[float("nan")] + [0.0] * 28), robot.JOINT_NAMES, "NaN"),
    ("wrong length", stand_fields(kp=[1.0] * 28), robot.JOINT_NAMES, "expected 29 values"),
    ("unknown joint", stand_fields(), ("left_tail_joint",) + robot.JOINT_NAMES[1:], "unknown joint names"),
])
def test_unusable_commands_are_rejected_with_a_reason_and_the_previous_command_kept(
        sim, warnings, case, fields, names, reason):
    with pytest.raises(CommandError, match=reason):
        validate_command(names, fields)
    before = sim.command
    assert sim.apply_command(names, fields) is False
    sim.step_tick()
    assert sim.command is before, f"{case}: the previous command must stay active"
    assert any(reason in w and "rejected" in w for w in warnings)


def test_out_of_range_values_are_clipped_with_a_reason(warnings, sim):
    position = robot.DEFAULT_JOINT_POS.copy()
    position[3] = 5.0  # knee far beyond its upper limit
    kp = robot.STAND_KP.copy()
    kp[0] = 1e6
    command, notes = validate_command(robot.JOINT_NAMES, stand_fields(position=position, kp=kp))
    assert command.position[3] == robot.JOINT_UPPER[3] and command.kp[0] == 500.0
    assert any("left_knee_joint=5" in n for n in notes) and any("kp outside" in n for n in notes)
    assert sim.apply_command(robot.JOINT_NAMES, stand_fields(position=position))
    assert any("beyond joint limits" in w for w in warnings)


def test_commands_in_any_joint_order_are_mapped_to_sdk_order():
    order = list(reversed(robot.JOINT_NAMES))
    fields = {f: list(reversed(v)) for f, v in stand_fields().items()}
    command, _ = validate_command(order, fields)
    np.testing.assert_array_equal(command.position, robot.DEFAULT_JOINT_POS)


def test_action_latency_delays_a_command_by_whole_physics_steps():
    sim = MujocoG1(SimConfig(action_latency_steps=3))
    hold = MotorCommand.hold(robot.DEFAULT_JOINT_POS)
    sim.set_command(hold)
    for _ in range(3):
        sim.step_physics()
        assert sim.command is not hold
    sim.step_physics()
    assert sim.command is hold


def test_push_adds_a_world_frame_velocity_kick(sim):
    sim.reset_standing(yaw_rad=np.pi / 2)
    sim.push([0.5, 0.0, 0.0], [0.0, 0.0, 1.0])
    assert sim.data.qvel[:3] == pytest.approx([0.5, 0, 0])
    assert sim.ground_truth().linear_velocity == pytest.approx([0, -0.5, 0], abs=1e-12)  # pelvis frame
    assert sim.data.qvel[3:6] == pytest.approx([0, 0, 1.0])  # yaw rate is the same in both frames


def test_randomisation_is_seeded():
    cfg = lambda seed: SimConfig(seed=seed, randomization=Randomization(enabled=True))  # noqa: E731
    a, b, c = MujocoG1(cfg(1)), MujocoG1(cfg(1)), MujocoG1(cfg(2))
    np.testing.assert_array_equal(a.model.body_mass, b.model.body_mass)
    np.testing.assert_array_equal(a.motor_strength, b.motor_strength)
    assert not np.array_equal(a.model.body_mass, c.model.body_mass)
    assert not np.array_equal(a.model.geom_friction, MujocoG1().model.geom_friction)
    assert 0.9 <= a.motor_strength.min() and a.motor_strength.max() <= 1.1


def test_same_inputs_give_bit_identical_states():
    def run():
        sim = MujocoG1(SimConfig(seed=4, action_latency_steps=2, randomization=Randomization(enabled=True)))
        for k in range(50):
            q = robot.DEFAULT_JOINT_POS + 0.1 * np.sin(0.1 * k) - 0.01 * sim.joint_velocities
            sim.set_command(MotorCommand.hold(q))
            sim.step_tick()
            if k == 20:
                sim.push([0.3, 0.1, 0.0])
        return sim.state_bytes()
    assert run() == run()


def test_reset_to_an_explicit_pose_keeps_time_running(sim):
    sim.step_tick()
    t = sim.sim_time_s
    q = robot.DEFAULT_JOINT_POS.copy()
    q[15] = 1.0
    sim.reset_to([0.0, 0.0, 1.2], [1, 0, 0, 0], q)
    assert sim.sim_time_s == t and sim.joint_positions[15] == 1.0 and sim.data.qpos[2] == 1.2
    with pytest.raises(ValueError, match="norm"):
        sim.reset_to([0, 0, 1], [0, 0, 0, 0], q)


def test_driver_and_simulator_share_the_command_timeout():
    """One rule for "commands stopped -> damping": the driver's and the real-time sim's parameter files
    carry the value of sim_core.COMMAND_TIMEOUT_S, which both nodes use as their default."""
    import yaml

    from g1_description.paths import package_share
    from g1_hardware import g1_driver, sim_node
    from g1_hardware.sim_core import COMMAND_TIMEOUT_S

    config = package_share("g1_hardware") / "config"
    driver = yaml.safe_load((config / "driver.yaml").read_text())["g1_driver"]["ros__parameters"]
    sim = yaml.safe_load((config / "sim.yaml").read_text())["g1_sim"]["ros__parameters"]
    assert driver["command_timeout_s"] == sim["command_timeout_s"] == COMMAND_TIMEOUT_S
    assert g1_driver.PARAMETERS["command_timeout_s"] == sim_node.PARAMETERS["command_timeout_s"] == COMMAND_TIMEOUT_S


# --- physics profiles (g1_description.physics) -------------------------------------------------------

FAST = "actuator_200hz"


def test_actuator_profile_runs_the_same_motor_law_in_mujoco():
    """actuator_200hz: the PD in MuJoCo position actuators gives the drivers' torque, clamped the same way."""
    sim = MujocoG1(SimConfig(physics_profile=FAST))
    assert sim.model.opt.timestep == 0.005 and sim.profile.substeps == 4
    q_des = robot.DEFAULT_JOINT_POS + 0.05
    sim.set_command(MotorCommand(q_des, np.full(29, 0.1), robot.KP.copy(), robot.KD.copy(), np.full(29, 0.5)))
    sim.step_physics()
    np.testing.assert_allclose(sim.last_torque, robot.KP * 0.05 + robot.KD * 0.1 + 0.5, rtol=1e-9)
    sim.set_command(MotorCommand(q_des + 2.0, np.zeros(29), np.full(29, 500.0), np.zeros(29), np.zeros(29)))
    sim.step_physics()
    assert np.all(np.abs(sim.last_torque) <= robot.EFFORT_LIMIT + 1e-12)
    assert np.any(np.abs(sim.last_torque) == pytest.approx(robot.EFFORT_LIMIT))


def test_actuator_profile_stands_on_stand_gains_and_ticks_in_four_steps():
    """The stand the policy node commands must hold at 5 ms steps too (with implicitfast it did not: the
    wrists, shoulders and ankles oscillated and the robot fell within ~4 s; the profile uses Euler)."""
    sim = MujocoG1(SimConfig(physics_profile=FAST))
    sim.set_command(MotorCommand.hold(robot.DEFAULT_JOINT_POS))
    for _ in range(250):  # 5 s
        sim.step_tick()
    assert sim.physics_step_count == 1000 and sim.sim_time_s == pytest.approx(5.0)
    assert sim.ground_truth().position[2] > robot.DEFAULT_ROOT_HEIGHT_M - 0.02
    assert np.abs(sim.joint_velocities).max() < 0.05


def test_latency_is_rounded_to_the_profiles_steps_and_unknown_profiles_are_named():
    sim = MujocoG1(SimConfig(physics_profile=FAST, action_latency_steps=3))  # 6 ms -> one 5 ms step
    hold = MotorCommand.hold(robot.DEFAULT_JOINT_POS)
    sim.set_command(hold)
    sim.step_physics()
    assert sim.command is not hold
    sim.step_physics()
    assert sim.command is hold
    with pytest.raises(robot.DescriptionError, match="physics profile 'fast'.*actuator_200hz.*drivers_500hz"):
        MujocoG1(SimConfig(physics_profile="fast"))
