"""Whole-clip start sampling weighted by failures (sampling.start_sampling: adaptive) and the sampler's
checkpoint state (numpy, main venv)."""

from __future__ import annotations

import numpy as np
import pytest
import train_testutil  # noqa: F401  (puts g1_train on sys.path)

from g1_train.config import EnvCfg, MotionCfg, SamplingCfg
from g1_train.env import TrackingEnv
from g1_train.motions import load_motion_set
from g1_train.sampling import AdaptiveSampler

DT = 0.02


@pytest.fixture(scope="module")
def motions(g1_moves):
    return load_motion_set(MotionCfg(sources=[str(g1_moves / "dance")], max_clips=2))


def _sampler(motions, **kw) -> AdaptiveSampler:
    return AdaptiveSampler(motions, SamplingCfg(start_sampling="adaptive", **kw), np.random.default_rng(0), DT)


def test_bins_cover_each_clip(motions):
    s = _sampler(motions, start_bin_s=1.0)
    for c in range(motions.num_clips):
        assert s.num_bins[c] == int(np.ceil((motions.length[c] - 1) / 50))
    assert s.bin_failed.size == s.num_bins.sum() and s.bin_start[1] == s.num_bins[0]


def test_start_weights_follow_failures_smeared_backwards(motions):
    """No failures: uniform. Failures in one bin: (1 - u) of the mass there + u uniform, then the kernel
    lambda^k spreads it to the K-1 bins before it (never after); weights equal the formula exactly."""
    u, lam, k = 0.1, 0.5, 3
    s = _sampler(motions, start_uniform_ratio=u, start_kernel_lambda=lam, start_kernel_size=k,
                 start_failure_alpha=0.2)
    nb = int(s.num_bins[0])
    np.testing.assert_allclose(s.start_bin_probabilities(0), np.full(nb, 1 / nb))
    fail_bin = nb // 2
    frame = fail_bin * s.bin_frames + 3
    s.update(np.array([0, 0, 1]), np.array([False, True, False]), np.zeros(3), np.array([frame, 10, 0]))
    # only the failed episode of clip 0 counted (the success did not), in the bin of its end frame
    assert s.bin_failed[s.bin_start[0] + fail_bin] == pytest.approx(0.2)
    assert np.count_nonzero(s.bin_failed[s.bin_start[0]:s.bin_start[0] + nb]) == 1
    p = s.start_bin_probabilities(0)
    base = np.full(nb, u / nb)
    base[fail_bin] += 1 - u
    want = np.array([sum(lam ** j * base[min(b + j, nb - 1)] for j in range(k)) for b in range(nb)])
    np.testing.assert_allclose(p, want / want.sum())
    assert p[fail_bin - 1] > p[fail_bin + 1] and p[fail_bin - 2] > p[fail_bin + 1]
    assert p.argmax() == fail_bin
    # the counts decay with every update: another clip's failures shrink clip 0's weight toward uniform
    for _ in range(50):
        s.update(np.array([1]), np.array([False]), np.zeros(1), np.array([0]))
    assert s.bin_failed[s.bin_start[0] + fail_bin] == pytest.approx(0.2 * 0.8 ** 50)


def test_sampled_starts_concentrate_where_episodes_fail(motions):
    s = _sampler(motions, start_uniform_ratio=0.1, start_kernel_size=1, start_failure_alpha=0.5,
                 max_segment_s=5.0)
    nb = int(s.num_bins[0])
    for _ in range(5):
        s.update(np.array([0]), np.array([False]), np.zeros(1), np.array([3 * s.bin_frames + 1]))
    s.completion[:] = [1.0, 1.0]
    s.max_kp_error[:] = [1.0, 1e-6]  # clip 0 only
    clips, first, last = s.sample_episodes(2000)
    assert np.all(clips == 0)
    bins = first // s.bin_frames
    share = np.mean(bins == 3)
    assert 0.85 < share < 0.95, share  # 0.9 + 0.1/nb expected
    assert np.all(first >= 0) and np.all(last <= motions.length[0] - 1) and np.all(last > first)
    assert np.all(last - first <= round(5.0 / DT))
    assert len(np.unique(bins)) > nb // 2  # the uniform share reaches the rest of the clip


def test_stand_start_clips_always_start_at_rest(g1_moves):
    ms = load_motion_set(MotionCfg(sources=[str(g1_moves / "bonus" / "B_HandsUp.csv")], stand_start_s=1.0))
    s = AdaptiveSampler(ms, SamplingCfg(start_sampling="adaptive"), np.random.default_rng(1), DT)
    clips, first, _ = s.sample_episodes(400)
    assert set(clips) == {0, 1}
    assert np.all(first[clips == 1] == 0) and np.any(first[clips == 0] > 0)


def test_env_with_adaptive_starts_starts_mid_clip_and_times_out_at_the_episode_end(motions):
    cfg = EnvCfg(num_envs=6, seed=3)
    cfg.randomization.enabled = False
    cfg.sampling.start_sampling = "adaptive"
    cfg.sampling.max_segment_s = 0.1
    env = TrackingEnv(cfg, motions)
    assert np.any(env.frame > 0)
    np.testing.assert_array_equal(env.episode_last, np.minimum(env.frame + 5, motions.length[env.clip] - 1))
    ends = 0
    for _ in range(6):
        last_before = env.episode_last.copy()
        _, _, terminated, time_out, _ = env.step(np.zeros((6, 29)))
        ends += int(time_out.sum())
        assert np.all(~time_out | (env.episode_len == 0))  # timed-out envs were reset
        assert np.all(last_before >= 0)
    assert ends >= 6  # every env reached its 0.1 s episode end


def test_unknown_start_sampling_is_an_error(motions):
    with pytest.raises(ValueError, match="start_sampling"):
        AdaptiveSampler(motions, SamplingCfg(start_sampling="whole"), np.random.default_rng(0), DT)


def test_sampler_state_round_trip(motions):
    a = _sampler(motions)
    a.update(np.array([0, 1]), np.array([False, True]), np.array([0.3, 0.1]), np.array([60, 5]))
    a.cut_segments()
    b = _sampler(motions)
    b.load_state_dict(a.state_dict())
    for k in AdaptiveSampler._STATE:
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert a.resets_since_cut == b.resets_since_cut
    other = load_motion_set(MotionCfg(sources=[str(train_testutil.SHARED_MOTIONS / "dance")], max_clips=3))
    with pytest.raises(ValueError, match="other clips"):
        AdaptiveSampler(other, SamplingCfg(), np.random.default_rng(0), DT).load_state_dict(a.state_dict())
