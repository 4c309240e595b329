"""The balance feedback prior (g1_train.feedback): its signals read the deployment observation, the env
adds it to every action (so ``last_action`` observes the sum), and bad gains are named errors."""

from __future__ import annotations

import numpy as np
import pytest
import train_testutil  # noqa: F401  (puts g1_train on sys.path)

from g1_description import robot
from g1_tracker_policy import observation as obs_lib

from g1_train.config import EnvCfg, MotionCfg
from g1_train.env import TrackingEnv
from g1_train.feedback import GROUPS, LIMIT_RAD, NUM_GAINS, BalanceFeedback, feedback_matrix, gain_names
from g1_train.motions import load_motion_set


def _quat(roll: float, pitch: float) -> np.ndarray:
    cr, sr, cp, sp = np.cos(roll / 2), np.sin(roll / 2), np.cos(pitch / 2), np.sin(pitch / 2)
    return np.array([cr * cp, sr * cp, cr * sp, -sr * sp])  # ZYX with yaw 0


def _observation(cfg: obs_lib.ObservationConfig, roll: float, pitch: float, gyro, ref_roll: float, ref_pitch: float):
    f = 1 + len(cfg.future_offsets)
    ref_quat = np.tile(_quat(ref_roll, ref_pitch), (1, f, 1))
    return obs_lib.compute_observation(
        cfg, obs_lib.ProprioHistory(cfg, 1), base_quat_wxyz=_quat(roll, pitch)[None],
        base_ang_vel_body=np.asarray(gyro, dtype=np.float64)[None], joint_pos=robot.DEFAULT_JOINT_POS[None],
        joint_vel=np.zeros((1, 29)), last_action=np.zeros((1, 29)), ref_root_pos=np.zeros((1, f, 3)) + [0, 0, 0.75],
        ref_root_quat_wxyz=ref_quat, ref_root_lin_vel=np.zeros((1, f, 3)), ref_root_ang_vel=np.zeros((1, f, 3)),
        ref_joint_pos=np.tile(robot.DEFAULT_JOINT_POS, (1, f, 1)), ref_key_body_pos=np.zeros((1, f, 14, 3)))


def test_signals_are_tilt_error_and_rate_from_the_observation():
    cfg = obs_lib.ObservationConfig(future_offsets=(5, 10))
    gains = np.zeros(NUM_GAINS)
    gains[0], gains[1] = 2.0, 0.5    # ankle pitch: P on the pitch error, D on the pitch rate
    gains[10], gains[11] = -1.0, 0.3  # hip roll: P on the roll error, D on the roll rate
    fb = BalanceFeedback(cfg, gains, action_scale=np.full(29, 0.25))
    obs = _observation(cfg, roll=0.05, pitch=0.08, gyro=[0.4, -0.2, 1.0], ref_roll=0.01, ref_pitch=0.03)
    d = fb.delta_rad(obs)[0]
    e_p = np.sin(0.08) - 0.03                      # g_x - ref_pitch
    e_r = np.sin(0.05) * np.cos(0.08) - 0.01       # -g_y - ref_roll
    for name in ("left_ankle_pitch_joint", "right_ankle_pitch_joint"):
        assert d[robot.JOINT_INDEX[name]] == pytest.approx(2.0 * e_p + 0.5 * -0.2, abs=1e-6)
    for name in ("left_hip_roll_joint", "right_hip_roll_joint"):
        assert d[robot.JOINT_INDEX[name]] == pytest.approx(-1.0 * e_r + 0.3 * 0.4, abs=1e-6)
    touched = {robot.JOINT_INDEX[n] for _, joints in (GROUPS[0], GROUPS[5]) for n in joints}
    assert np.all(d[[j for j in range(29) if j not in touched]] == 0.0)
    np.testing.assert_allclose(fb.action_delta(obs), fb.delta_rad(obs) / 0.25)
    # large errors are clipped (the exported graph's copy of the map: test_train_cli_smoke, through ORT)
    big = _observation(cfg, roll=0.0, pitch=0.9, gyro=[0, 0, 0], ref_roll=0.0, ref_pitch=0.0)
    assert fb.delta_rad(big).max() == LIMIT_RAD


def test_bad_gains_and_missing_terms_are_named():
    cfg = obs_lib.ObservationConfig()
    with pytest.raises(ValueError, match="expected 14 finite gains .*ankle_pitch_P"):
        feedback_matrix(cfg, [1.0, 2.0])
    with pytest.raises(ValueError, match="finite"):
        feedback_matrix(cfg, [np.nan] * NUM_GAINS)
    no_gravity = obs_lib.ObservationConfig(proprio_terms=("base_ang_vel", "joint_pos_rel", "joint_vel", "last_action"))
    with pytest.raises(ValueError, match="projected_gravity"):
        feedback_matrix(no_gravity, np.ones(NUM_GAINS))
    assert len(gain_names()) == NUM_GAINS == 14


def test_env_adds_the_feedback_to_the_action_it_observes(g1_moves):
    motions = load_motion_set(MotionCfg(sources=[str(g1_moves / "karate")], max_clips=2))
    gains = [1.0, 0.1, 0.2, 0.0, -0.3, 0.05, 0.5, 0.0, 0.4, 0.05, 0.3, 0.0, 0.2, 0.0]
    cfg = EnvCfg(num_envs=2, seed=0, action_base="reference_next_frame", balance_feedback=gains)
    cfg.randomization.enabled = False
    env = TrackingEnv(cfg, motions)
    plain = TrackingEnv(EnvCfg(num_envs=2, seed=0, action_base="reference_next_frame"), motions)
    rng = np.random.default_rng(0)
    for _ in range(20):
        net = rng.normal(0.0, 0.2, (2, 29))
        want = net + env.feedback.action_delta(env.obs["policy"])
        env.step(net)
        np.testing.assert_allclose(env.action, want)      # what last_action observes and the artifact outputs
    assert np.abs(env.action - net).max() > 1e-3           # the feedback did something in 20 steps
    assert plain.feedback is None


def test_fit_script_writes_generations_resumes_and_prints_the_gains(tmp_path, train_python, g1_moves):
    import json

    from train_testutil import WS, run_in_train_venv

    out = tmp_path / "fit.jsonl"
    args = [str(WS / "scripts" / "fit_balance_feedback.py"), "--config", str(WS / "configs" / "general.yaml"),
            "--set", f"env.motions.sources=[{g1_moves / 'karate'}]", "--set", "env.motions.names=[M_ShortMove1,M_Move4]",
            "--generations", "1", "--population", "3", "--elite", "2", "--max-s", "1", "--out", str(out)]
    proc = run_in_train_venv(train_python, args, timeout=300)
    assert '"zero_action"' in proc.stdout and proc.stdout.strip().splitlines()[-1].startswith("balance_feedback: [")
    run_in_train_venv(train_python, [*args, "--resume", str(out)], timeout=300)
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["gen"] for r in recs] == [0, 1] and all(len(r["mu"]) == NUM_GAINS for r in recs)
    assert all(0.0 < r["mu_fit"] <= 1.0 and r["best"] >= r["mu_fit"] for r in recs)
