"""The batch physics backend (``env.backend: batch``, MuJoCo 4's mujoco.batch) against the deployment
simulator (``g1_hardware.sim_core.MujocoG1``, the sim node's core) with the same physics profile, against
one C-MuJoCo MjData per env on a model copy with the same randomised parameters, and per-env
randomisation actually applied.

Tolerances: the backend runs the same MuJoCo on the same model with the same PD arithmetic (the sim
node's formula term by term, or the same actuator parameters), so positions and velocities are
required to agree to 1e-9 (measured: qpos/qvel bit-identical; the IMU quaternion, formed by the
numpy port of mju_mat2Quat, within 2.3e-16) over 50 control steps (1 s) of a standing G1
following moving targets; each comparison also checks how far the state moved, so agreement is not
the trivial agreement of two robots at rest.
"""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import train_testutil  # noqa: F401  (puts g1_train on sys.path)

from g1_description import physics as profiles
from g1_description import robot
from g1_hardware.sim_core import MotorCommand, MujocoG1, SimConfig

from g1_train.config import EnvCfg, MotionCfg
from g1_train.env import RobotStateBatch, TrackingEnv, build_train_model
from g1_train.motions import load_motion_set
from g1_train.physics import delay_in_steps, make_physics, resolve_profile
from g1_train.physics_batch import BatchPhysics

TOL = 1e-9
STEPS = 50
KEYS = list(robot.KEY_BODIES)


def _targets(k: int) -> np.ndarray:
    """Moving joint targets around the default pose (arms and legs swing, ~0.15 rad)."""
    phase = 0.3 * k + np.arange(robot.NUM_JOINTS)
    return robot.DEFAULT_JOINT_POS + 0.15 * np.sin(phase)


def _kp_kd():
    return np.asarray(robot.STAND_KP, dtype=np.float64), np.asarray(robot.STAND_KD, dtype=np.float64)


@pytest.mark.parametrize("profile", sorted(profiles.PROFILES))
@pytest.mark.parametrize("latency", [0, 4])
def test_batch_backend_equals_deployment_simulator(profile, latency):
    """Same start (the sim node's standing reset), same targets, same gains, same action latency:
    every env of the batch follows the sim node's core exactly, step by step."""
    prof = profiles.get_profile(profile)
    sim = MujocoG1(SimConfig(physics_profile=profile, action_latency_steps=latency))
    n = 3
    phys = BatchPhysics(build_train_model(0.0, profile), n, KEYS, randomised=False, profile=profile)
    q0, v0 = sim.data.qpos.copy(), sim.data.qvel.copy()
    phys.reset_envs(np.arange(n), np.tile(q0, (n, 1)), np.tile(v0, (n, 1)))
    kp, kd = _kp_kd()
    delay = np.full(n, int(delay_in_steps(latency, prof)))
    state = RobotStateBatch.empty(n, len(KEYS))
    prev = np.tile(q0[7:], (n, 1))
    sim.command = MotorCommand.hold(q0[7:], kp, kd)  # active at once (no latency), like the batch's first tick
    sim.step_tick()
    phys.step(prev, prev, delay * 0, np.ones((n, 29)), kp, kd, robot.EFFORT_LIMIT)
    moved = 0.0
    for k in range(STEPS):
        tgt = _targets(k)
        sim.set_command(MotorCommand.hold(tgt, kp, kd))
        sim.step_tick()
        new = np.tile(tgt, (n, 1))
        phys.step(new, prev, delay, np.ones((n, 29)), kp, kd, robot.EFFORT_LIMIT)
        prev = new
        phys.gather(state, np.arange(n))
        for i in range(n):
            np.testing.assert_allclose(state.joint_pos[i], sim.joint_positions, atol=TOL, rtol=0)
            np.testing.assert_allclose(state.joint_vel[i], sim.joint_velocities, atol=TOL, rtol=0)
            np.testing.assert_allclose(state.root_pos[i], sim.data.qpos[:3], atol=TOL, rtol=0)
            np.testing.assert_allclose(state.root_quat[i], sim.data.qpos[3:7], atol=TOL, rtol=0)
            np.testing.assert_allclose(state.root_lin_vel[i], sim.data.qvel[:3], atol=TOL, rtol=0)
        imu, gt = sim.imu(), sim.ground_truth()
        np.testing.assert_allclose(state.imu_quat[0], imu.quat_wxyz, atol=TOL, rtol=0)
        np.testing.assert_allclose(state.imu_gyro[0], imu.angular_velocity, atol=TOL, rtol=0)
        np.testing.assert_allclose(state.key_body_pos[0], gt.key_body_positions, atol=TOL, rtol=0)
        moved = max(moved, float(np.abs(sim.joint_positions - q0[7:]).max()))
    assert moved > 0.1  # the robot really moved (targets swing by 0.15 rad)
    assert sim.data.qpos[2] > 0.6  # and stayed up: contacts were part of the comparison
    if prof.pd == profiles.PD_ACTUATOR:  # torque clamped by forcerange = the effort limit, like the drivers
        assert np.all(np.abs(sim.last_torque) <= robot.EFFORT_LIMIT + 1e-9)


def _reference_step(model: mujoco.MjModel, data: mujoco.MjData, prof, target, kp, kd, strength):
    """One control tick of one env on its own MjModel copy (the loop mujoco.batch must equal)."""
    if prof.pd == profiles.PD_ACTUATOR:
        model.actuator_gainprm[:, 0] = strength * kp
        model.actuator_biasprm[:, 1] = -(strength * kp)
        model.actuator_biasprm[:, 2] = -(strength * kd)
        data.ctrl[:] = target
        for _ in range(prof.substeps):
            mujoco.mj_step(model, data)
    else:
        for _ in range(prof.substeps):
            tau = strength * (kp * (target - data.qpos[7:]) - kd * data.qvel[6:])
            data.ctrl[:] = np.clip(tau, -robot.EFFORT_LIMIT, robot.EFFORT_LIMIT)
            mujoco.mj_step(model, data)


@pytest.mark.parametrize("profile", sorted(profiles.PROFILES))
def test_per_env_randomisation_is_applied(profile):
    """Envs 0 and 1 share parameters, 2 has other friction, 3 other torso mass / CoM, 4 other gravity,
    5 other motor strength. Same start and targets: 0 == 1 exactly, every other env diverges from 0, and
    each env equals a C-MuJoCo MjData on a model copy with its parameters (and mj_setConst)."""
    prof = profiles.get_profile(profile)
    base = build_train_model(0.0, profile)
    n = 6
    phys = BatchPhysics(base, n, KEYS, randomised=True, profile=profile)
    friction = np.array([0.8, 0.8, 0.2, 0.8, 0.8, 0.8])
    mass_add = np.array([0.0, 0.0, 0.0, 3.0, 0.0, 0.0])
    com = np.zeros((n, 3))
    com[3] = [0.03, -0.02, 0.01]
    gravity = np.tile([0.0, 0.0, -9.81], (n, 1))
    gravity[4] = 9.81 * np.array([np.sin(0.05), 0.0, -np.cos(0.05)])
    strength = np.ones((n, 29))
    strength[5] = 0.9
    phys.randomise(np.arange(n), friction, mass_add, com, gravity)
    sim = MujocoG1(SimConfig(physics_profile=profile))  # the standing start of the sim node
    q0, v0 = sim.data.qpos.copy(), sim.data.qvel.copy()
    phys.reset_envs(np.arange(n), np.tile(q0, (n, 1)), np.tile(v0, (n, 1)))
    refs = []
    torso = base.body("torso_link").id
    for i in range(n):
        m = build_train_model(0.0, profile)
        m.geom_friction[:, 0] = friction[i]
        m.body_mass[torso] += mass_add[i]
        m.body_ipos[torso] += com[i]
        m.opt.gravity[:] = gravity[i]
        d = mujoco.MjData(m)
        mujoco.mj_setConst(m, d)
        d.qpos[:], d.qvel[:] = q0, v0
        mujoco.mj_forward(m, d)
        refs.append((m, d))
    kp, kd = _kp_kd()
    zero = np.zeros(n, dtype=np.int64)
    for k in range(STEPS):
        tgt = np.tile(_targets(k), (n, 1))
        phys.step(tgt, tgt, zero, strength, kp, kd, robot.EFFORT_LIMIT)
        for i, (m, d) in enumerate(refs):
            _reference_step(m, d, prof, tgt[i], kp, kd, strength[i])
    qpos, qvel = phys.qpos.copy(), phys.qvel.copy()
    for i, (m, d) in enumerate(refs):
        np.testing.assert_allclose(qpos[i], d.qpos, atol=TOL, rtol=0, err_msg=f"env {i}")
        np.testing.assert_allclose(qvel[i], d.qvel, atol=TOL, rtol=0, err_msg=f"env {i}")
    np.testing.assert_array_equal(qpos[0], qpos[1])
    for i in range(2, n):
        assert np.abs(qpos[i] - qpos[0]).max() > 1e-4, f"env {i} did not diverge from env 0"
    np.testing.assert_array_equal(phys.batch.expanded("body_mass")[3, torso], base.body_mass[torso] + 3.0)


def test_tracking_env_batch_equals_c_mujoco_without_randomisation(g1_moves):
    """Whole TrackingEnv, same seed and actions, drivers_500hz profile: the batch backend and the C-MuJoCo
    backend give the same observations, rewards and terminations."""
    motions = load_motion_set(MotionCfg(sources=[str(g1_moves / "dance")], max_clips=2))
    envs = []
    for backend in ("mujoco", "batch"):
        cfg = EnvCfg(num_envs=3, seed=3, backend=backend, physics_profile="drivers_500hz")
        cfg.randomization.enabled = False
        envs.append(TrackingEnv(cfg, motions))
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.normal(0, 0.3, (3, 29))
        oc, rc, tc, _, _ = envs[0].step(a)
        ob, rb, tb, _, _ = envs[1].step(a)
        np.testing.assert_allclose(ob["policy"], oc["policy"], atol=1e-5, rtol=0)  # float32 observations
        np.testing.assert_allclose(rb, rc, atol=1e-5, rtol=0)
        np.testing.assert_array_equal(tb, tc)
    np.testing.assert_allclose(envs[1].state.joint_pos, envs[0].state.joint_pos, atol=TOL, rtol=0)


def test_batch_refuses_terrain_and_profiles_are_checked():
    cfg = EnvCfg(num_envs=2, backend="batch")
    cfg.randomization.terrain_height_m = 0.03
    with pytest.raises(ValueError, match="terrain_height_m: 0.*env.backend: mujoco"):
        make_physics(cfg, build_train_model(0.03, "actuator_200hz"), KEYS)
    with pytest.raises(ValueError, match="env.backend mujoco simulates only.*drivers_500hz"):
        resolve_profile(EnvCfg(backend="mujoco", physics_profile="actuator_200hz"))
    with pytest.raises(robot.DescriptionError, match="physics profile 'fast'.*actuator_200hz"):
        resolve_profile(EnvCfg(physics_profile="fast"))
    assert resolve_profile(EnvCfg()).name == "actuator_200hz" and resolve_profile(EnvCfg(backend="mujoco")).name \
        == "drivers_500hz"
    # a model of the other profile is refused by the backend
    with pytest.raises(ValueError, match="timestep"):
        BatchPhysics(build_train_model(0.0, "drivers_500hz"), 1, KEYS, False, "actuator_200hz")
    phys = make_physics(EnvCfg(num_envs=2), build_train_model(0.0, "actuator_200hz"), KEYS)
    assert isinstance(phys, BatchPhysics) and phys.batch.nsim == 2


def test_delay_is_converted_to_profile_steps():
    fast, slow = profiles.get_profile("actuator_200hz"), profiles.get_profile("drivers_500hz")
    d = np.arange(11)  # 0..20 ms in 2 ms units
    np.testing.assert_array_equal(delay_in_steps(d, slow), d)
    np.testing.assert_array_equal(delay_in_steps(d, fast), [0, 0, 1, 1, 2, 2, 2, 3, 3, 4, 4])
    assert delay_in_steps(np.array([30]), fast)[0] == 4  # at most one control tick
