"""The tracking task (numpy, C-MuJoCo): observation parity with deployment, sampling, rewards."""

from __future__ import annotations

import numpy as np
import pytest
import train_testutil  # noqa: F401  (puts g1_train on sys.path)

from g1_description import robot
from g1_tracker_policy.observation import ObservationBuilder
from motion_server.reference import ReferenceWindowData

from g1_train.config import EnvCfg, MotionCfg, SamplingCfg
from g1_train.env import TrackingEnv
from g1_train.motions import load_motion_set
from g1_train.sampling import AdaptiveSampler


@pytest.fixture(scope="module")
def motions(g1_moves):
    return load_motion_set(MotionCfg(sources=[str(g1_moves / "dance")], max_clips=3))


def _window(env: TrackingEnv, i: int) -> ReferenceWindowData:
    """What the motion server would publish for env i at its current clip time."""
    ref = env.reference()
    return ReferenceWindowData(
        times_s=ref.times_s[i], joint_pos=ref.joint_pos[i], joint_vel=ref.joint_vel[i], root_pos=ref.root_pos[i],
        root_quat_wxyz=ref.root_quat_wxyz[i], root_lin_vel=ref.root_lin_vel[i], root_ang_vel=ref.root_ang_vel[i],
        key_body_pos=ref.key_body_pos[i], future_offsets=tuple(env.obs_cfg.future_offsets))


@pytest.mark.parametrize("reference_terms", [None, ("ref_root_height", "ref_heading_error", "ref_joint_pos_rel",
                                                    "ref_key_body_pos"),
                                             ("ref_root_height", "ref_root_pos_xy", "ref_joint_pos")])
def test_training_observation_equals_deployment_builder(motions, reference_terms):
    """Training's observation for env i == the policy node's ObservationBuilder fed the same state."""
    cfg = EnvCfg(num_envs=3, seed=1)
    if reference_terms:
        cfg.observation.reference_terms = list(reference_terms)
    env = TrackingEnv(cfg, motions)
    builders = [ObservationBuilder(env.obs_cfg) for _ in range(env.num_envs)]
    rng = np.random.default_rng(0)
    compared = 0
    for step in range(12):
        for i, b in enumerate(builders):
            s = env.state
            if env.episode_len[i] == 0:
                b.reset()  # a new episode = a new motion start on the robot
            want = b.build(base_quat_wxyz=s.imu_quat[i], base_ang_vel_body=s.imu_gyro[i], joint_pos=s.joint_pos[i],
                           joint_vel=s.joint_vel[i], last_action=env.action[i], window=_window(env, i),
                           base_pos_world=s.root_pos[i])  # the graph's odometry: ground truth
            np.testing.assert_array_equal(env.obs["policy"][i], want)
            compared += 1
        env.step(rng.normal(0, 0.3, (env.num_envs, 29)))
    assert compared == 36
    assert env.obs["policy"].shape == (3, env.obs_cfg.size)


def test_reference_window_is_clip_frames_ahead(motions):
    env = TrackingEnv(EnvCfg(num_envs=2, seed=2), motions)
    ref = env.reference()
    i = 0
    g = motions.start[env.clip[i]] + env.frame[i] + np.array((1,) + env.obs_cfg.future_offsets)
    g = np.minimum(g, motions.start[env.clip[i]] + motions.length[env.clip[i]] - 1)
    np.testing.assert_allclose(ref.joint_pos[i], motions.joint_pos[g])
    np.testing.assert_allclose(ref.key_body_pos[i], motions.key_body_pos[g])


def test_episode_starts_in_reference_frame_and_falls_without_policy(motions):
    cfg = EnvCfg(num_envs=4, seed=3)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    ref = env.reference(np.array([0]))
    np.testing.assert_allclose(env.state.joint_pos, robot.clip_to_limits(ref.joint_pos[:, 0]), atol=1e-9)
    terminated_any = False
    for _ in range(150):  # 3 s of zero actions (default-pose targets): the dance is lost
        _, reward, terminated, time_out, _ = env.step(np.zeros((4, 29)))
        assert np.all(np.isfinite(reward))
        terminated_any |= bool(terminated.any())
    assert terminated_any


def test_domain_randomisation_differs_per_env(motions):
    """C-MuJoCo backend (per-env model copies, the one with terrain); the batch backend's per-env fields
    are checked in test_physics_batch.py."""
    cfg = EnvCfg(num_envs=3, seed=4, backend="mujoco")
    cfg.randomization.terrain_height_m = 0.03
    env = TrackingEnv(cfg, motions)
    assert len({float(m.geom_friction[0, 0]) for m in env.models}) == 3
    assert len({tuple(np.round(m.opt.gravity, 6)) for m in env.models}) == 3
    assert env.models[0].nhfield == 1 and np.ptp(env.models[0].hfield_data) > 0
    assert np.ptp(env.strength) > 0 and env.delay.max() <= 10


def test_gmt_adaptive_sampling_formulas(motions):
    s = AdaptiveSampler(motions, SamplingCfg(max_segment_s=4.0, max_offset_s=1.0), np.random.default_rng(0), 0.02)
    assert np.allclose(s.completion, 10.0)
    np.testing.assert_allclose(s.error_threshold(np.arange(motions.num_clips)), 0.6)
    # segments never exceed 4 s and cover each clip from start to end
    assert np.all((s.seg_last - s.seg_first) * 0.02 <= 4.0 + 1e-9)
    for c in range(motions.num_clips):
        segs = np.flatnonzero(s.seg_clip == c)
        assert s.seg_first[segs].min() == 0 and s.seg_last[segs].max() == motions.length[c] - 1
    # successes on clip 0 lower its completion level, threshold and sampling probability
    p0 = s.clip_probabilities()[0]
    for _ in range(300):
        s.update(np.array([0]), np.array([True]), np.array([0.05]))
    assert s.completion[0] == 1.0
    np.testing.assert_allclose(s.error_threshold(np.array([0])), 0.25)
    assert s.sampling_level()[0] == pytest.approx((0.05 / 0.15) ** 5)
    assert s.clip_probabilities()[0] < p0
    # periodic re-cutting moves the cut points
    before = s.seg_first.copy()
    s.rng = np.random.default_rng(123)
    s.cut_segments()
    assert len(before) != len(s.seg_first) or not np.array_equal(before, s.seg_first)


def test_diversity_balance_equalises_clusters(motions):
    s = AdaptiveSampler(motions, SamplingCfg(diversity_clusters=2), np.random.default_rng(0), 0.02)
    mass = np.bincount(s.cluster, weights=s.balance)
    np.testing.assert_allclose(mass, mass[0])


def test_stand_start_clip_is_the_motion_servers_blend_in_from_standing(g1_moves):
    """A stand-start clip = what motion_server's ReferencePlayer publishes when the clip is played from
    the default standing pose (the deployment start of `g1 track`), and its episodes start at rest there."""
    from motion_server.importers import import_motion
    from motion_server.player import Pose, ReferencePlayer
    from motion_server.reference import WindowState

    clip = g1_moves / "bonus" / "B_HandsUp.csv"
    ms = load_motion_set(MotionCfg(sources=[str(clip)], stand_start_s=1.0, stand_start_blend_s=2.0))
    assert ms.names == ["B_HandsUp", "B_HandsUp@stand_start"]
    s, n = ms.start[1], ms.length[1]
    assert n == round(3.0 / robot.CONTROL_PERIOD_S)
    # frames == the player's "next frame" of each tick's window, independently recomputed here
    player = ReferencePlayer(blend_in_s=2.0)
    player.set_robot_pose(Pose.default_standing())
    player.play(import_motion(clip).motion)
    states = []
    for k in range(n):
        w = player.window(k * robot.CONTROL_PERIOD_S)
        states.append(w.state)
        np.testing.assert_allclose(ms.joint_pos[s + k], w.joint_pos[0], atol=1e-5)
        np.testing.assert_allclose(ms.root_pos[s + k], w.root_pos[0], atol=1e-5)
        np.testing.assert_allclose(ms.key_body_pos[s + k], w.key_body_pos[0], atol=1e-5)
    assert states[0] == WindowState.BLEND_IN and states[-1] == WindowState.PLAYING
    # it starts (to within one tick of the smoothstep) in the standing pose, at rest
    np.testing.assert_allclose(ms.joint_pos[s], robot.DEFAULT_JOINT_POS, atol=1e-3)
    assert ms.root_pos[s, 2] == pytest.approx(robot.DEFAULT_ROOT_HEIGHT_M, abs=1e-4)
    assert np.abs(ms.joint_vel[s]).max() < 0.05 and np.abs(ms.root_lin_vel[s]).max() < 0.05
    # an episode of that clip starts the robot in the standing pose (reference state initialisation)
    cfg = EnvCfg(num_envs=2, seed=0)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, ms)
    env.sampler.completion[:] = [1.0, 10.0]  # sample the stand-start clip only
    env.sampler.max_kp_error[0] = 0.0
    env.reset(np.ones(2, dtype=bool))
    assert np.all(env.clip == 1) and np.all(env.frame == 0)
    np.testing.assert_allclose(env.state.joint_pos, np.tile(robot.DEFAULT_JOINT_POS, (2, 1)), atol=1e-3)


def test_reference_action_base_makes_a_zero_action_the_pass_through_baseline(motions):
    """env.action_base reference_next_frame: the PD target is the window's first frame + scale * action
    (clipped to the joint limits), exactly what the policy node computes for an artifact with action_base
    reference_next_frame."""
    from g1_tracker_policy import contract
    from g1_tracker_policy.controllers import PassthroughController

    cfg = EnvCfg(num_envs=3, seed=4, action_base=contract.ACTION_BASE_REFERENCE)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    rng = np.random.default_rng(1)
    for step in range(3):
        windows = [_window(env, i) for i in range(env.num_envs)]
        action = np.zeros((3, 29)) if step == 0 else rng.normal(0, 0.3, (3, 29))
        env.step(action)
        for i, w in enumerate(windows):
            if env.episode_len[i] == 0:
                continue  # reset: the target was re-initialised
            baseline = PassthroughController().compute(None, w, np.zeros(29)).position
            np.testing.assert_allclose(env.target[i], robot.clip_to_limits(baseline + cfg.action_scale * action[i]),
                                       atol=1e-12)
    with pytest.raises(ValueError, match="env.action_base 'pose'"):
        TrackingEnv(EnvCfg(num_envs=1, action_base="pose"), motions).step(np.zeros((1, 29)))


def test_targets_past_the_joint_limits_are_applied_as_the_policy_node_applies_them(motions):
    """The policy node's safety clips every position target to the joint limits before the robot, so a
    policy trained without the clip learned targets past them that deployment never executes (the
    averaged G1-Moves student: ankle pitch up to 0.85 rad past its limit; of its 16 training clips, from
    the start and from the stand, it completed 11 unclipped and 1 with the node's clip). The env applies
    what the node would send."""
    from g1_tracker_policy.safety import Command, Source, sanitize_command

    cfg = EnvCfg(num_envs=2, seed=4)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    action = np.zeros((2, 29))
    action[0] = 10.0  # every target far past the upper limits
    action[1] = -10.0
    commanded = env.action_base() + env.action_scale * action
    env.step(action)
    zeros = np.zeros(29)
    for i in range(2):
        sent, fixes = sanitize_command(Command(commanded[i], zeros, env.kp, env.kd, zeros, Source.POLICY))
        assert fixes and "joint limits" in fixes[0]
        np.testing.assert_allclose(env.target[i], sent.position, atol=1e-12)
    assert np.all(env.target <= robot.JOINT_UPPER) and np.all(env.target >= robot.JOINT_LOWER)


def test_pd_gains_are_the_descriptions(motions):
    from g1_train.env import pd_gains

    cfg = EnvCfg(num_envs=1, gains="stand")
    np.testing.assert_array_equal(pd_gains(cfg)[0], robot.STAND_KP)
    np.testing.assert_array_equal(pd_gains(cfg)[1], robot.STAND_KD)
    np.testing.assert_array_equal(pd_gains(EnvCfg())[0], robot.KP)
    cfg.randomization.enabled = False
    np.testing.assert_array_equal(TrackingEnv(cfg, motions).kp, robot.STAND_KP)
    with pytest.raises(ValueError, match="env.gains"):
        pd_gains(EnvCfg(gains="soft"))


def test_configs_parse_and_unknown_keys_are_named(tmp_path):
    from g1_train.config import ConfigError, load_config
    from train_testutil import WS

    for name in ("multi_clip.yaml", "smoke.yaml", "default_policy.yaml", "residual_policy.yaml", "general.yaml",
                 "study_ppo.yaml", "study_ppo_improved.yaml", "study_sac.yaml"):
        cfg = load_config(WS / "configs" / name, ["env.num_envs=3"])
        assert cfg.env.num_envs == 3 and cfg.teacher.kind == "moe"
    bad = tmp_path / "bad.yaml"
    bad.write_text("env:\n  num_envz: 4\n")
    with pytest.raises(ConfigError, match="env.*num_envz"):
        load_config(bad)


def test_a_config_variant_names_only_what_it_changes(tmp_path):
    """``base:``: mappings merge key by key, lists and scalars replace, relative to the variant's folder."""
    from g1_train.config import ConfigError, load_config
    from train_testutil import WS

    six, eight = (load_config(WS / "configs" / n) for n in ("experts_g1moves.yaml", "experts_g1moves8.yaml"))
    assert list(eight.env.experts)[:6] == list(six.env.experts) and len(eight.env.experts) == 8
    assert len(eight.env.motions.sources) == 8 and eight.name == "experts_g1moves8"
    assert eight.student == six.student and eight.env.observation == six.env.observation  # inherited
    assert eight.env.sampling.diversity_clusters == 8 and eight.env.sampling.max_segment_s == six.env.sampling.max_segment_s
    r6, r8 = six.env.randomization, eight.env.randomization
    assert (r8.init_root_xy_m, r8.init_yaw_rad, r6.init_root_xy_m) == (0.05, 0.2, 0.0) and r8.friction == r6.friction
    (tmp_path / "sub").mkdir()
    (tmp_path / "base.yaml").write_text("env:\n  num_envs: 7\n  rewards: {root_pos_xy: 0.3}\n")
    (tmp_path / "sub" / "v.yaml").write_text("base: ../base.yaml\nenv:\n  rewards: {joint_pos: 0.9}\n")
    v = load_config(tmp_path / "sub" / "v.yaml", ["env.rewards.root_pos_xy=0.1"])
    assert (v.env.num_envs, v.env.rewards.root_pos_xy, v.env.rewards.joint_pos) == (7, 0.1, 0.9)
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml.*no such file"):
        load_config(tmp_path / "c.yaml")


def test_root_position_reward_penalises_world_drift(motions):
    """root_pos_xy rewards the world-frame pelvis position (what g1 eval's E_mpkpe measures); the
    key-body term is pelvis-relative and cannot see a robot that tracks the pose while sliding away."""
    from g1_train.env import reward_terms, tracking_errors

    cfg = EnvCfg(num_envs=2, seed=0)
    cfg.randomization.enabled = False
    cfg.rewards.root_pos_xy = 0.5
    env = TrackingEnv(cfg, motions)
    ref = env.reference()
    s = env.state
    shift = ref.root_pos[:, 0, :2] - s.root_pos[:, :2]
    s.root_pos[:, :2] += shift
    s.key_body_pos[:, :, :2] += shift[:, None]
    before = tracking_errors(s, ref)
    s.root_pos[1, 0] += 0.3  # env 1 slides 0.3 m in x, everything else equal
    s.key_body_pos[1, :, 0] += 0.3
    e = tracking_errors(s, ref)
    np.testing.assert_allclose(e["key_body_sq"], before["key_body_sq"], atol=1e-12)  # blind to the slide
    r = reward_terms(cfg, s, ref, e, np.zeros((2, 29)), np.zeros((2, 29)))
    assert r["root_pos_xy"][0] == pytest.approx(0.5)
    assert r["root_pos_xy"][1] == pytest.approx(0.5 * np.exp(-1.0))  # 0.3 m at sigma 0.3 m


def test_effort_over_kp_action_scale_is_per_joint_and_drives_the_targets(motions):
    """env.action_scale_mode effort_over_kp: scale_j = action_scale * effort_limit_j / kp_j from
    g1_description.robot (BeyondMimic's 0.25 * effort / stiffness), the env's targets use it per joint."""
    from g1_tracker_policy import contract

    from g1_train.env import action_scales

    cfg = EnvCfg(num_envs=2, seed=5, gains="tracking", action_scale_mode="effort_over_kp",
                 action_base=contract.ACTION_BASE_REFERENCE)
    want = 0.25 * robot.EFFORT_LIMIT / robot.KP
    np.testing.assert_allclose(action_scales(cfg), want, rtol=1e-12)
    # BeyondMimic's published G1 values: 7520-14 hip pitch 0.548, 7520-22 knee 0.351, 4010 wrist 0.075
    names = list(robot.JOINT_NAMES)
    for joint, value in (("left_hip_pitch_joint", 0.548), ("left_knee_joint", 0.351),
                         ("left_wrist_yaw_joint", 0.075)):
        assert action_scales(cfg)[names.index(joint)] == pytest.approx(value, abs=1e-3)
    assert np.ptp(action_scales(cfg)) > 0.4  # per joint, not one number
    # with the stand gains the same formula takes the stand kp
    stand = EnvCfg(gains="stand", action_scale_mode="effort_over_kp")
    np.testing.assert_allclose(action_scales(stand), 0.25 * robot.EFFORT_LIMIT / robot.STAND_KP, rtol=1e-12)
    np.testing.assert_array_equal(action_scales(EnvCfg(action_scale=0.3)), np.full(29, 0.3))  # the default: constant
    with pytest.raises(ValueError, match="env.action_scale_mode 'torque'"):
        action_scales(EnvCfg(action_scale_mode="torque"))
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    base = env.action_base().copy()
    action = np.random.default_rng(2).normal(0, 0.5, (2, 29))
    env.step(action)
    np.testing.assert_allclose(env.target, robot.clip_to_limits(base + want * action), atol=1e-12)


def test_anchor_key_body_kernel_is_body_frame(motions):
    """rewards.key_body_frame anchor (BeyondMimic/mjlab): the reference's key bodies placed at the robot's
    pelvis (xy, yaw) and the reference's pelvis height. A robot = the reference moved and turned about z has
    no error in either frame; a robot whose pelvis sinks 0.1 m with the same pose has 0.01 m^2 in the
    anchor frame and none in the heading frame (pelvis-relative)."""
    from g1_train.env import anchor_key_body_sq, reward_terms, tracking_errors

    cfg = EnvCfg(num_envs=3, seed=0)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    ref = env.reference(np.array([0]))
    s = env.state
    # robot state := the reference frame exactly
    s.root_pos[:] = ref.root_pos[:, 0]
    s.root_quat[:] = ref.root_quat_wxyz[:, 0]
    s.key_body_pos[:] = ref.key_body_pos[:, 0]
    np.testing.assert_allclose(anchor_key_body_sq(s, ref), 0.0, atol=1e-12)
    # env 1: the whole reference turned 0.7 rad about z around its pelvis and moved 2 m in x -> still 0
    yaw = 0.7
    rz = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    rel = ref.key_body_pos[1, 0] - ref.root_pos[1, 0]
    s.root_pos[1] = ref.root_pos[1, 0] + [2.0, 0.0, 0.0]
    s.key_body_pos[1] = s.root_pos[1] + rel @ rz.T
    w, x, y, z = ref.root_quat_wxyz[1, 0]
    qz = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])  # qz * q (wxyz)
    s.root_quat[1] = [qz[0] * w - qz[3] * z, qz[0] * x - qz[3] * y, qz[0] * y + qz[3] * x, qz[0] * z + qz[3] * w]
    # env 2: the pelvis (and with it every key body) 0.1 m lower, pose unchanged
    s.root_pos[2, 2] -= 0.1
    s.key_body_pos[2, :, 2] -= 0.1
    anchor = anchor_key_body_sq(s, ref)
    np.testing.assert_allclose(anchor[:2], 0.0, atol=1e-12)
    assert anchor[2] == pytest.approx(0.01, rel=1e-9)
    e = tracking_errors(s, ref)
    np.testing.assert_allclose(e["key_body_sq"], 0.0, atol=1e-12)  # heading frame: blind to the sinking pelvis
    cfg.rewards.key_body_frame = "anchor"
    cfg.rewards.key_body_sigma_m = 0.3
    r = reward_terms(cfg, s, ref, e, np.zeros((3, 29)), np.zeros((3, 29)))
    np.testing.assert_allclose(r["key_body_pos"], [1.0, 1.0, np.exp(-0.01 / 0.09)], rtol=1e-12)
    bad = EnvCfg(num_envs=1)
    bad.rewards.key_body_frame = "torso"
    with pytest.raises(ValueError, match="env.rewards.key_body_frame 'torso'"):
        TrackingEnv(bad, motions)


def test_reset_with_given_episodes_starts_those_clips(motions):
    cfg = EnvCfg(num_envs=3, seed=6)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    clips, first = np.array([2, 0, 1]), np.array([0, 10, 5])
    last = motions.length[clips] - 1
    env.reset(np.ones(3, dtype=bool), episodes=(clips, first, last))
    np.testing.assert_array_equal(env.clip, clips)
    np.testing.assert_array_equal(env.frame, first)
    np.testing.assert_array_equal(env.episode_last, last)
    g = motions.start[clips] + first
    np.testing.assert_allclose(env.state.joint_pos, robot.clip_to_limits(motions.joint_pos[g]), atol=1e-9)
    with pytest.raises(ValueError, match="episodes for 3 envs"):
        env.reset(np.ones(3, dtype=bool), episodes=(clips[:2], first[:2], last[:2]))


def test_reset_pose_range_starts_off_the_reference_with_the_same_body_motion(motions):
    """init_root_xy_m / init_yaw_rad: the pelvis starts up to that far from the reference's and turned about
    the vertical; tilt, height, joints and body-frame velocities are the reference's; 0 = exactly on it."""
    from g1_bringup.metrics import yaw_from_quat
    from g1_tracker_policy.observation import quat_to_rotmat as obs_rot

    cfg = EnvCfg(num_envs=64, seed=8)
    cfg.randomization.init_joint_noise_rad = 0.0
    cfg.randomization.init_root_xy_m, cfg.randomization.init_yaw_rad = 0.15, 0.3
    env = TrackingEnv(cfg, motions)
    ref, s = env.reference(np.array([0])), env.state
    dxy = s.root_pos[:, :2] - ref.root_pos[:, 0, :2]
    dyaw = (yaw_from_quat(s.root_quat) - yaw_from_quat(ref.root_quat_wxyz[:, 0]) + np.pi) % (2 * np.pi) - np.pi
    assert np.abs(dxy).max() <= 0.15 + 1e-6 and np.abs(dxy).max() > 0.1 and np.ptp(dxy[:, 0]) > 0.1
    assert np.abs(dyaw).max() <= 0.3 + 1e-6 and np.abs(dyaw).max() > 0.2
    np.testing.assert_allclose(s.root_pos[:, 2], ref.root_pos[:, 0, 2], atol=1e-6)
    np.testing.assert_allclose(s.joint_pos, robot.clip_to_limits(ref.joint_pos[:, 0]), atol=1e-6)
    up = lambda q: obs_rot(q)[:, :, 2]  # noqa: E731  the body z axis in the world: tilt is unchanged
    np.testing.assert_allclose(up(s.root_quat)[:, 2], up(ref.root_quat_wxyz[:, 0])[:, 2], atol=1e-6)
    body = lambda q, v: np.einsum("nji,nj->ni", obs_rot(q), v)  # noqa: E731  world -> body frame
    np.testing.assert_allclose(body(s.root_quat, s.root_lin_vel), body(ref.root_quat_wxyz[:, 0], ref.root_lin_vel[:, 0]),
                               atol=1e-6)
    np.testing.assert_allclose(body(s.root_quat, s.root_ang_vel), body(ref.root_quat_wxyz[:, 0], ref.root_ang_vel[:, 0]),
                               atol=1e-6)
    cfg.randomization.init_root_xy_m = cfg.randomization.init_yaw_rad = 0.0
    env = TrackingEnv(cfg, motions)
    ref, s = env.reference(np.array([0])), env.state
    np.testing.assert_allclose(s.root_pos, ref.root_pos[:, 0], atol=1e-9)
    np.testing.assert_allclose(s.root_quat, ref.root_quat_wxyz[:, 0], atol=1e-9)
