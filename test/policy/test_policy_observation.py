"""The shared observation builder: layout, heading-frame invariance, batching, history."""

import numpy as np
import pytest

from g1_description import robot
from g1_tracker_policy import observation as ob
from g1_tracker_policy.testing import standing_window

ALL_REF_TERMS = ("ref_root_height", "ref_roll_pitch", "ref_lin_vel_heading", "ref_yaw_rate", "ref_heading_error",
                 "ref_root_pos_xy", "ref_joint_pos", "ref_key_body_pos")


def quat_mul(a, b):
    w1, x1, y1, z1 = np.moveaxis(a, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(b, -1, 0)
    return np.stack([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2], -1)


def random_quat(rng, shape=()):
    q = rng.normal(size=(*shape, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def random_inputs(rng, n, f, k):
    return dict(
        base_quat_wxyz=random_quat(rng, (n,)), base_ang_vel_body=rng.normal(size=(n, 3)),
        joint_pos=rng.normal(size=(n, 29)), joint_vel=rng.normal(size=(n, 29)), last_action=rng.normal(size=(n, 29)),
        ref_root_pos=rng.normal(size=(n, f, 3)), ref_root_quat_wxyz=random_quat(rng, (n, f)),
        ref_root_lin_vel=rng.normal(size=(n, f, 3)), ref_root_ang_vel=rng.normal(size=(n, f, 3)),
        ref_joint_pos=rng.normal(size=(n, f, 29)), ref_key_body_pos=rng.normal(size=(n, f, k, 3)),
        base_pos_world=rng.normal(size=(n, 3)))


def test_default_layout_sizes_and_slices_are_contiguous():
    cfg = ob.ObservationConfig()
    lay = cfg.layout()
    assert lay.proprio_frame_size == 3 + 3 + 29 + 29 + 29
    assert lay.reference_frame_size == 1 + 2 + 3 + 1 + 29
    assert lay.num_reference_frames == 1 + len(cfg.future_offsets)
    assert lay.size == cfg.history_length * 93 + lay.num_reference_frames * 36 == cfg.size
    stop = 0
    for t in lay.terms:
        assert t.start == stop and t.size == cfg.term_size(t.name)
        stop = t.start + t.size
    assert stop == lay.size
    assert lay.find("ref_joint_pos", 3).start == lay.reference_slice.start + 3 * 36 + 7
    assert lay.find("joint_vel", 1).start == 93 + 35


def test_config_round_trips_through_json_and_rejects_unknown_terms():
    cfg = ob.ObservationConfig(history_length=3, reference_terms=ALL_REF_TERMS, future_offsets=(1, 10, 20))
    back = ob.ObservationConfig.from_dict(cfg.to_dict())
    assert back == cfg and back.size == cfg.size
    assert cfg.term_size("ref_key_body_pos") == 3 * len(robot.KEY_BODIES)
    with pytest.raises(ob.ObservationError, match="unknown proprioception term 'foot_contact'"):
        ob.ObservationConfig(proprio_terms=("foot_contact",))
    bad = cfg.to_dict()
    bad["layout"]["size"] += 6
    with pytest.raises(ob.ObservationError, match="stored layout size"):
        ob.ObservationConfig.from_dict(bad)


@pytest.mark.parametrize("gravity_term", ["projected_gravity", "roll_pitch"])
def test_rotating_the_world_about_z_leaves_the_observation_unchanged(gravity_term):
    cfg = ob.ObservationConfig(proprio_terms=("base_ang_vel", gravity_term, "joint_pos_rel", "joint_vel", "last_action"),
                               reference_terms=ALL_REF_TERMS, history_length=2, future_offsets=(1, 5, 10))
    rng = np.random.default_rng(1)
    n, f, k = 8, cfg.num_reference_frames, len(cfg.key_body_names)
    x = random_inputs(rng, n, f, k)
    obs_a = ob.compute_observation(cfg, ob.ProprioHistory(cfg, n), **x)
    for yaw in (0.7, -2.9, np.pi):
        qz = np.array([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])
        rz = ob.quat_to_rotmat(qz)
        y = dict(x)
        y["base_quat_wxyz"] = quat_mul(qz, x["base_quat_wxyz"])
        y["ref_root_quat_wxyz"] = quat_mul(qz, x["ref_root_quat_wxyz"])
        for key in ("ref_root_pos", "ref_root_lin_vel", "ref_root_ang_vel", "ref_key_body_pos", "base_pos_world"):
            y[key] = x[key] @ rz.T
        obs_b = ob.compute_observation(cfg, ob.ProprioHistory(cfg, n), **y)
        np.testing.assert_allclose(obs_a, obs_b, atol=2e-5)
    # ... and a rotation about x does change it (the test can fail)
    qx = np.array([np.cos(0.2), np.sin(0.2), 0, 0])
    y = dict(x, base_quat_wxyz=quat_mul(qx, x["base_quat_wxyz"]))
    assert not np.allclose(obs_a, ob.compute_observation(cfg, ob.ProprioHistory(cfg, n), **y), atol=1e-3)


def test_root_position_term_is_the_reference_offset_in_the_robot_heading_frame():
    cfg = ob.ObservationConfig(reference_terms=("ref_root_height", "ref_root_pos_xy"), history_length=1,
                               future_offsets=(5,))
    assert cfg.needs_odometry and not ob.ObservationConfig().needs_odometry
    rng = np.random.default_rng(3)
    x = random_inputs(rng, 4, cfg.num_reference_frames, len(cfg.key_body_names))
    yaw = 0.5
    x["base_quat_wxyz"] = np.tile([np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)], (4, 1))
    obs = ob.compute_observation(cfg, ob.ProprioHistory(cfg, 4), **x)
    lay = cfg.layout()
    for f in range(2):
        got = obs[:, lay.find("ref_root_pos_xy", f).slice]
        d = x["ref_root_pos"][:, f] - x["base_pos_world"]
        want = np.stack([np.cos(yaw) * d[:, 0] + np.sin(yaw) * d[:, 1], -np.sin(yaw) * d[:, 0] + np.cos(yaw) * d[:, 1]], 1)
        np.testing.assert_allclose(got, want, atol=1e-5)
    # translating the whole world changes nothing
    shift = np.array([3.0, -7.0, 0.0])
    y = dict(x, ref_root_pos=x["ref_root_pos"] + shift, base_pos_world=x["base_pos_world"] + shift,
             ref_key_body_pos=x["ref_key_body_pos"] + shift)
    np.testing.assert_allclose(obs, ob.compute_observation(cfg, ob.ProprioHistory(cfg, 4), **y), atol=1e-5)
    # ... and without a position the observation refuses, never a silent zero
    with pytest.raises(ob.ObservationError, match="needs the robot's world position"):
        ob.compute_observation(cfg, ob.ProprioHistory(cfg, 4), **dict(x, base_pos_world=None))


def test_batched_equals_one_environment_at_a_time():
    cfg = ob.ObservationConfig(history_length=3, reference_terms=ALL_REF_TERMS, future_offsets=(1, 5))
    rng = np.random.default_rng(2)
    n, f, k = 5, cfg.num_reference_frames, len(cfg.key_body_names)
    hist = ob.ProprioHistory(cfg, n)
    singles = [ob.ProprioHistory(cfg, 1) for _ in range(n)]
    for _ in range(4):
        x = random_inputs(rng, n, f, k)
        batched = ob.compute_observation(cfg, hist, **x)
        for i in range(n):
            one = ob.compute_observation(cfg, singles[i], **{key: v[i:i + 1] for key, v in x.items()})
            np.testing.assert_array_equal(batched[i], one[0])


def test_history_is_newest_first_and_filled_on_reset():
    cfg = ob.ObservationConfig(history_length=3)
    hist = ob.ProprioHistory(cfg, 2)
    p = cfg.proprio_frame_size
    hist.push(np.full((2, p), 1.0))
    np.testing.assert_array_equal(hist.buffer[0], np.ones((3, p)))  # first push fills the whole history
    hist.push(np.full((2, p), 2.0))
    hist.reset(np.array([False, True]))
    hist.push(np.full((2, p), 3.0))
    np.testing.assert_array_equal(hist.buffer[0, :, 0], [3.0, 2.0, 1.0])
    np.testing.assert_array_equal(hist.buffer[1, :, 0], [3.0, 3.0, 3.0])


def test_builder_uses_the_reference_window_and_checks_offsets():
    cfg = ob.ObservationConfig()
    builder = ob.ObservationBuilder(cfg)
    w = standing_window(yaw_rad=0.4)
    obs = builder.build(base_quat_wxyz=[1, 0, 0, 0], base_ang_vel_body=[0, 0, 0.4], joint_pos=robot.DEFAULT_JOINT_POS,
                        joint_vel=np.zeros(29), last_action=np.zeros(29), window=w)
    lay = cfg.layout()
    assert obs.shape == (cfg.size,) and obs.dtype == np.float32
    np.testing.assert_allclose(obs[lay.find("ref_joint_pos", 0).slice], robot.DEFAULT_JOINT_POS, atol=1e-6)
    np.testing.assert_allclose(obs[lay.find("ref_root_height", 4).slice], [robot.DEFAULT_ROOT_HEIGHT_M], atol=1e-6)
    np.testing.assert_allclose(obs[lay.find("base_ang_vel", 0).slice], [0, 0, 0.1], atol=1e-6)  # scale 0.25
    np.testing.assert_allclose(obs[lay.find("projected_gravity", 0).slice], [0, 0, -1], atol=1e-6)
    np.testing.assert_allclose(obs[lay.find("joint_pos_rel", 0).slice], 0, atol=1e-6)
    with pytest.raises(ob.ObservationError, match="future_offsets"):
        builder.build(base_quat_wxyz=[1, 0, 0, 0], base_ang_vel_body=[0, 0, 0], joint_pos=robot.DEFAULT_JOINT_POS,
                      joint_vel=np.zeros(29), last_action=np.zeros(29), window=standing_window(future_offsets=(1, 2)))


def test_prepared_windows_give_bit_identical_observations():
    """The node precomputes the window-only reference terms when a window arrives; the tick then only
    computes the robot-dependent ones. Same numbers as computing everything in the tick."""
    cfg = ob.ObservationConfig(reference_terms=ALL_REF_TERMS)
    rng = np.random.default_rng(4)
    plain, prepared = ob.ObservationBuilder(cfg), ob.ObservationBuilder(cfg)
    windows = [standing_window(yaw_rad=float(y), joint_pos=robot.DEFAULT_JOINT_POS + rng.normal(0, 0.1, 29),
                               root_xy=tuple(rng.normal(0, 1, 2))) for y in rng.uniform(-3, 3, 6)]
    for w in windows:
        w.root_lin_vel[:] = rng.normal(0, 0.5, w.root_lin_vel.shape)  # heading-dependent terms must differ
    for i, w in enumerate(windows):
        prepared.prepare(w)
        if i + 1 < len(windows):
            prepared.prepare(windows[i + 1])  # lockstep: the next window arrives before this tick runs
        state = dict(base_quat_wxyz=random_quat(rng), base_ang_vel_body=rng.normal(0, 1, 3),
                     joint_pos=robot.DEFAULT_JOINT_POS + rng.normal(0, 0.2, 29), joint_vel=rng.normal(0, 1, 29),
                     last_action=rng.normal(0, 1, 29), window=w, base_pos_world=rng.normal(0, 1, 3))
        a, b = plain.build(**state), prepared.build(**state)
        np.testing.assert_array_equal(a, b)
        assert any(st is not None for win, st in prepared._prepared if win is w)  # the cache was really used
    with pytest.raises(ob.ObservationError, match="future_offsets"):
        prepared.prepare(standing_window(future_offsets=(1, 2)))
