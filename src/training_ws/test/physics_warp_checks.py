"""MuJoCo-Warp backend checks: run in the training venv by test_physics_backends.py (not collected directly;
warp is installed only there). Warp runs on the CPU here, the same kernels a GPU runs.

Parity tolerances: C MuJoCo (float64) vs MuJoCo-Warp (float32), same start, same actions, 5 control steps
(50 physics steps). Two regimes, measured here:
- ``nominal`` (no randomisation; this draw has no mesh-mesh contact): pure float32 rounding. Max errors:
  positions 4e-7 m, quaternions 2e-7, root linear velocity 4e-7 m/s, angular velocity / gyro 3e-6 rad/s,
  joint positions 6e-7 rad, joint velocities 1.1e-5 rad/s (the stiff PD turns rounding into velocity).
  Tolerances TOL: about 5-10x those.
- ``randomised`` (friction, mass, CoM, gravity, motor strength, 0-20 ms delay, a push): this draw starts one
  robot with its left shoulder 7 mm inside the torso (a mesh-mesh self-contact, 3 contact points). C MuJoCo
  and MuJoCo-Warp compute mesh-mesh contacts with different convex-collision code, so the contact points
  differ slightly: measured max 7e-5 m key bodies, 4e-4 rad joint positions, 6e-4 rad/s angular velocity,
  0.021 rad/s joint velocities (the other three robots stay at float32 level). Tolerances TOL_CONTACT:
  about 5x those.
Each comparison is checked against how far the state actually moved (>= 20x the tolerance), so a backend
that did not step, stepped the wrong joints or ignored the PD/delay/push would fail.
"""

from __future__ import annotations

import numpy as np
import pytest
import train_testutil  # noqa: F401  (puts g1_train on sys.path)
import warp as wp

from g1_train.config import EnvCfg, MotionCfg
from g1_train.env import TrackingEnv
from g1_train.motions import load_motion_set

STEPS = 5
TOL = {"root_pos": 2e-6, "root_quat": 2e-6, "root_lin_vel": 4e-6, "root_ang_vel": 2e-5, "imu_quat": 2e-6,
       "imu_gyro": 2e-5, "joint_pos": 5e-6, "joint_vel": 1e-4, "key_body_pos": 2e-6}
TOL_CONTACT = {"root_pos": 2e-5, "root_quat": 6e-5, "root_lin_vel": 5e-4, "root_ang_vel": 3e-3, "imu_quat": 6e-5,
               "imu_gyro": 3e-3, "joint_pos": 2e-3, "joint_vel": 0.1, "key_body_pos": 4e-4}
MOVES = ("root_pos", "joint_pos", "joint_vel", "key_body_pos")  # fields that must change over the steps


@pytest.fixture(scope="module")
def motions(g1_moves):
    return load_motion_set(MotionCfg(sources=[str(g1_moves / "dance")], max_clips=3))


def _cfg(backend: str, randomised: bool, **kw) -> EnvCfg:
    cfg = EnvCfg(num_envs=4, seed=5, backend=backend, **kw)
    cfg.randomization.enabled = randomised
    cfg.randomization.terrain_height_m = 0.0       # per-world terrain: not in MuJoCo-Warp 4.0.0
    cfg.randomization.push_interval_s = (0.03, 0.08)  # a push within the compared steps
    return cfg


@pytest.fixture(scope="module")
def envs(motions):
    """(C, warp) env pairs, built once: the first warp env compiles the kernels on a cold cache."""
    return {r: (TrackingEnv(_cfg("mujoco", r), motions), TrackingEnv(_cfg("warp", r), motions))
            for r in (False, True)}


def _compare(c: TrackingEnv, w: TrackingEnv) -> dict[str, float]:
    return {f: float(np.abs(getattr(c.state, f) - getattr(w.state, f)).max()) for f in TOL}


@pytest.mark.parametrize("randomised", [False, True], ids=["nominal", "randomised"])
def test_warp_state_matches_c_mujoco(envs, randomised):
    c, w = envs[randomised]
    start = {f: getattr(c.state, f).copy() for f in MOVES}
    assert max(_compare(c, w).values()) < 1e-6  # same reset: same start (float32 rounding only)
    if randomised:  # the same draws reached both simulators
        np.testing.assert_array_equal(c.friction, w.friction)
        np.testing.assert_allclose(w.physics.m.geom_friction.numpy()[:, 0, 0], c.friction, rtol=1e-6)
        np.testing.assert_allclose(w.physics.m.opt.gravity.numpy(), [m.opt.gravity for m in c.models], rtol=1e-6)
        assert c.delay.max() > 0 and np.ptp(c.strength) > 0
    rng = np.random.default_rng(0)
    worst = dict.fromkeys(TOL, 0.0)
    for _ in range(STEPS):
        a = rng.normal(0, 0.3, (c.num_envs, 29))
        _, rc, tc, oc, _ = c.step(a)
        _, rw, tw, ow, _ = w.step(a)
        np.testing.assert_array_equal(tc, tw)
        np.testing.assert_array_equal(oc, ow)
        np.testing.assert_allclose(rw, rc, atol=1e-4)
        worst = {f: max(worst[f], e) for f, e in _compare(c, w).items()}
    print(f"max |C - warp| over {STEPS} control steps ({'randomised' if randomised else 'nominal'}):", worst)
    tols = TOL_CONTACT if randomised else TOL
    for f, tol in tols.items():
        assert worst[f] < tol, f"{f}: C vs warp {worst[f]:.3g} > tolerance {tol:.3g}"
    for f in MOVES:
        moved = np.abs(getattr(c.state, f) - start[f]).max()
        assert moved > 20 * tols[f], f"{f} moved only {moved:.3g}: the comparison would not catch a difference"


def test_warp_env_observations_and_rewards(envs):
    _, w = envs[True]
    rng = np.random.default_rng(1)
    for _ in range(3):
        obs, reward, terminated, time_out, info = w.step(rng.normal(0, 0.3, (w.num_envs, 29)))
    n = w.num_envs
    assert obs["policy"].shape == (n, w.obs_cfg.size) and obs["policy"].dtype == np.float32
    assert obs["privileged"].ndim == 2 and obs["privileged"].shape[0] == n
    assert obs["policy_context"].shape == (n, w.context_len, w.obs_cfg.size)
    assert reward.shape == (n,) and terminated.shape == (n,) and time_out.shape == (n,)
    for k in ("policy", "privileged", "policy_context"):
        assert np.all(np.isfinite(obs[k])), k
    assert np.all(np.isfinite(reward))
    # per-world model fields really differ (randomisation is not silently shared)
    assert len(np.unique(w.physics.m.body_mass.numpy()[:, w.physics.ids.torso_id])) == n


def test_graph_replay_equals_eager_launches(motions):
    """The captured substep graph (replayed with new targets every step) == launching the kernels."""
    graph, eager = (TrackingEnv(_cfg("warp", True, warp_graph=g), motions) for g in (True, False))
    rng = np.random.default_rng(2)
    for _ in range(3):
        a = rng.normal(0, 0.3, (4, 29))
        graph.step(a)
        eager.step(a)
    assert set(graph.physics._graphs) == {"step", "reset"} and not eager.physics._graphs
    for env in (graph, eager):  # a replayed reset of one world (the first one was captured)
        env.reset(np.array([False, True, False, False]))
        env.step(np.full((4, 29), 0.1))
    for f in TOL:
        np.testing.assert_array_equal(getattr(graph.state, f), getattr(eager.state, f), err_msg=f)


def test_terrain_randomisation_is_refused(motions):
    cfg = _cfg("warp", True)
    cfg.randomization.terrain_height_m = 0.03
    with pytest.raises(ValueError, match="terrain_height_m: 0"):
        TrackingEnv(cfg, motions)


def test_constraint_overflow_is_an_error(motions):
    """Too small a constraint buffer drops constraints: that must stop the run with the key to raise."""
    import mujoco

    from g1_description import robot
    from g1_train.env import build_train_model
    from g1_train.physics_warp import WarpPhysics

    model = build_train_model(0.0)
    lying = np.zeros((1, model.nq))
    lying[0, :7] = [0, 0, 0.12, np.cos(np.pi / 4), 0, np.sin(np.pi / 4), 0]  # on its back on the floor
    lying[0, 7:] = robot.DEFAULT_JOINT_POS
    d = mujoco.MjData(model)
    d.qpos[:] = lying[0]
    mujoco.mj_forward(model, d)
    njmax = 48
    assert d.nefc > njmax  # (C MuJoCo: 189 rows, 40 contacts)
    phys = WarpPhysics(model, 2, motions.key_body_names, randomised=False, device="cpu", njmax=njmax)
    from g1_train.env import RobotStateBatch

    state = RobotStateBatch.empty(2, len(motions.key_body_names))
    phys.reset_envs(np.array([1]), lying, np.zeros((1, model.nv)))
    with pytest.raises(RuntimeError, match="1 of 2 worlds over 48 constraint rows.*env.warp_njmax"):
        phys.gather(state, np.arange(2))


def test_device_names_are_checked():
    from g1_train.physics_warp import resolve_device

    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if wp.is_cuda_available() else "cpu")
    if not wp.is_cuda_available():
        with pytest.raises(ValueError, match="env.warp_device 'cuda:0'"):
            resolve_device("cuda:0")
