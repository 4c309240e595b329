"""Motion experts as DAgger teachers (g1_train.experts): an external tracking export labels the training
env's states exactly as the policy node's controller for it would act, its labels drive the env like the
expert itself, a gain mismatch is refused by name, and `g1-train student` distils it (no PPO teacher)
into an artifact the policy node accepts."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from train_testutil import ROOT, WS, run_in_train_venv

from g1_description import robot
from g1_tracker_policy import external as ext
from g1_tracker_policy.controllers import RobotState
from g1_tracker_policy.external_controller import ExternalPolicyController

from g1_train.config import MotionCfg, load_config
from g1_train.env import TrackingEnv
from g1_train.motions import MotionLoadError, load_motion_set

CONFIG = WS / "configs" / "expert_fence1.yaml"
FENCE1 = ROOT.parent / "shared" / "data" / "policies" / "mjlab_B_Fence1" / "B_Fence1.onnx"


@pytest.fixture(scope="module")
def fence1(g1_moves) -> Path:
    if not FENCE1.is_file():
        pytest.fail(f"test data missing: {FENCE1} (the shared data folder beside the repository)")
    return FENCE1


def _env(fence1: Path, g1_moves: Path, *overrides: str) -> TrackingEnv:
    cfg = load_config(str(CONFIG), [f"env.experts={{B_Fence1: {fence1}}}", "env.num_envs=2",
                                    f"env.motions.sources=[{g1_moves / 'bonus' / 'B_Fence1.csv'}]", *overrides])
    cfg.env.randomization.enabled = False
    env = TrackingEnv(cfg.env, load_motion_set(cfg.env.motions))
    clips = np.array([0, 1])  # B_Fence1 from its first frame; its stand-start copy
    env.reset(np.ones(2, bool), (clips, np.zeros(2, np.int64), env.motions.length[clips] - 1))
    env.obs = env._observe()
    return env


def test_labels_are_the_deployment_controllers_targets(fence1, g1_moves):
    env = _env(fence1, g1_moves)
    for _ in range(5):  # a few steps under the expert, so velocities and the previous action are not trivial
        env.step(env.obs["expert_action"].astype(np.float64))
    controller = ExternalPolicyController(ext.load_policy(fence1), warm_up_runs=1)
    s, ref = env.state, env.reference()
    labels = env.obs["expert_action"]
    for i in range(2):
        state = RobotState(joint_pos=s.joint_pos[i], joint_vel=s.joint_vel[i], base_quat_wxyz=s.imu_quat[i],
                           base_ang_vel_body=s.imu_gyro[i], base_pos_world=s.root_pos[i], base_lin_vel_body=np.zeros(3))
        window = SimpleNamespace(joint_pos=ref.joint_pos[i], joint_vel=ref.joint_vel[i], root_pos=ref.root_pos[i],
                                 root_quat_wxyz=ref.root_quat_wxyz[i], times_s=ref.times_s[i])
        # its previous action: the raw target commanded last step (as the policy node keeps it)
        out = controller.compute(state, window, controller.artifact.target_to_action(env.expert.last_target[i]))
        # the label, through the student's action mapping, commands the controller's target as the policy
        # node sends it (clipped to the joint limits)
        np.testing.assert_allclose(env.action_base()[i] + env.action_scale * labels[i],
                                   robot.clip_to_limits(out.position), atol=1e-5)
        np.testing.assert_allclose(out.kp, env.kp, rtol=1e-3)


def test_the_labels_drive_the_env_like_the_expert(fence1, g1_moves):
    """Acting with the labels, the G1 tracks B_Fence1's first 4 s and its stand start; a standing still
    policy (zero action: the default pose) is terminated early."""
    env = _env(fence1, g1_moves)
    for _ in range(200):
        _, _, term, time_out, _ = env.step(env.obs["expert_action"].astype(np.float64))
        assert not term.any(), f"the expert's labels let env(s) {np.flatnonzero(term)} fall at frame {env.frame}"
    env = _env(fence1, g1_moves)
    ended = np.zeros(2, bool)
    for _ in range(200):
        _, _, term, _, _ = env.step(np.zeros((2, 29)))
        ended |= term
    assert ended[0], "a standing-still policy should lose B_Fence1's track"


def test_gain_mismatch_and_missing_file_are_named(fence1, g1_moves, tmp_path):
    with pytest.raises(ValueError, match="kp differs .*env.gains: tracking"):
        _env(fence1, g1_moves, "env.gains=stand")
    with pytest.raises(FileNotFoundError, match="env.experts"):
        _env(tmp_path / "nope.onnx", g1_moves)
    with pytest.raises(ValueError, match=r"no expert for the clips \['B_HandsUp'\]"):
        _env(fence1, g1_moves, f"env.motions.sources=[{g1_moves / 'bonus' / 'B_Fence1.csv'}, "
                               f"{g1_moves / 'bonus' / 'B_HandsUp.csv'}]")
    with pytest.raises(ValueError, match="mirrored clips"):
        _env(fence1, g1_moves, "env.motions.mirror=true")


def test_a_policy_file_is_a_motion_source_only_when_named(fence1, tmp_path):
    """A source naming an expert's ONNX plays the motion inside it; a directory scan never picks up ONNX."""
    ms = load_motion_set(MotionCfg(sources=[str(fence1)]))
    assert ms.names == ["B_Fence1"] and ms.length[0] == 1619  # mjlab's 32.4 s at 50 Hz
    (tmp_path / "B_Fence1.onnx").write_bytes(fence1.read_bytes())
    with pytest.raises(MotionLoadError, match="no motion sources"):
        load_motion_set(MotionCfg(sources=[str(tmp_path)]))


def test_each_clip_is_labelled_by_its_own_expert(fence1, g1_moves, tmp_path):
    other = tmp_path / "other_expert.onnx"
    other.write_bytes(fence1.read_bytes())
    env = _env(fence1, g1_moves, f"env.motions.sources=[{g1_moves / 'bonus' / 'B_Fence1.csv'}, "
                                 f"{g1_moves / 'bonus' / 'B_HandsUp.csv'}]",
               f"env.experts={{B_Fence1: {fence1}, B_HandsUp: {other}}}")
    experts = env.expert
    assert sorted(experts.names) == ["B_Fence1.onnx", "other_expert.onnx"]
    by_clip = {name: experts.names[experts.of_clip[i]] for i, name in enumerate(env.motions.names)}
    assert by_clip == {"B_Fence1": "B_Fence1.onnx", "B_Fence1@stand_start": "B_Fence1.onnx",
                       "B_HandsUp": "other_expert.onnx", "B_HandsUp@stand_start": "other_expert.onnx"}


def test_student_distils_the_expert_through_the_cli(fence1, g1_moves, train_python, tmp_path):
    motions = f"env.motions.sources=[{g1_moves / 'bonus' / 'B_Fence1.csv'}]"
    common = ["--config", str(CONFIG), "--set", f"env.experts={{B_Fence1: {fence1}}}", "--set", motions,
              "--set", "env.num_envs=4", "--set", "student_algo.num_steps_per_env=12",
              "--set", "student_algo.gradient_length=4"]
    run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--iterations", "2",
                                     "--out", str(tmp_path / "student")], timeout=300)
    # a campaign leg resumes the student and its optimiser (the experts have no weights to load)
    run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--resume", str(tmp_path / "student"),
                                     "--iterations", "1"], timeout=300)
    assert (tmp_path / "student" / "model_2.pt").is_file()
    run_in_train_venv(train_python, ["-m", "g1_train.cli", "export", "--checkpoint", str(tmp_path / "student"),
                                     "--out", str(tmp_path / "student.onnx")], timeout=300)
    from g1_tracker_policy.contract import load_artifact
    from g1_description import robot

    art = load_artifact(tmp_path / "student.onnx")
    np.testing.assert_allclose(art.kp, robot.KP)  # the expert's gains travel in the artifact
    assert art.provenance["train_config"]["env"]["experts"]["B_Fence1"].endswith("B_Fence1.onnx")
    # --init: a new run starts from that student's weights and normaliser (bit-identical), at iteration 0
    digests = tmp_path / "digests"
    run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--init", str(tmp_path / "student"),
                                     "--iterations", "1", "--out", str(tmp_path / "grown")], timeout=300,
                      env_extra={"G1_TRAIN_PARAM_DIGEST_DIR": str(digests)})  # g1_train.train.PARAM_DIGEST_ENV
    code = ("import sys; from g1_train.checkpoint_io import load_checkpoint; from g1_train.train import state_digest; "
            "print(state_digest(load_checkpoint(sys.argv[1])))")
    source = run_in_train_venv(train_python, ["-c", code, str(tmp_path / "student" / "model_2.pt")],
                               timeout=120).stdout.split()[-1]
    info = json.loads((digests / "rank0.json").read_text())
    assert info["initial"] == source and info["final"] != source
    assert sorted(p.name for p in (tmp_path / "grown").glob("model_*.pt")) == ["model_0.pt"]
    # ... and a student of another shape is refused by name, as is --init together with --resume
    with pytest.raises(AssertionError, match="does not fit this config's student"):
        run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--set", "student.num_experts=2",
                                         "--init", str(tmp_path / "student"), "--iterations", "1",
                                         "--out", str(tmp_path / "other")], timeout=300)
    with pytest.raises(AssertionError, match="give one of them"):
        run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--init", str(tmp_path / "student"),
                                         "--resume", str(tmp_path / "grown"), "--iterations", "1"], timeout=300)
    # a PPO teacher and a motion expert at once is refused
    with pytest.raises(AssertionError, match="one teacher, not two"):
        run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--teacher", str(tmp_path / "student"),
                                         "--iterations", "1", "--out", str(tmp_path / "two")], timeout=300)


def test_averaged_weights_are_kept_resumed_and_exported(fence1, g1_moves, train_python, tmp_path):
    """student_algo.weight_average: every checkpoint keeps the live student (DAgger acts and learns with it)
    and its average; a resumed leg goes on averaging; policy.pt and export take the average, --live the
    live weights."""
    motions = f"env.motions.sources=[{g1_moves / 'bonus' / 'B_Fence1.csv'}]"
    common = ["--config", str(CONFIG), "--set", f"env.experts={{B_Fence1: {fence1}}}", "--set", motions,
              "--set", "env.num_envs=4", "--set", "student_algo.num_steps_per_env=12",
              "--set", "student_algo.gradient_length=4", "--set", "student_algo.weight_average=0.5",
              "--set", "student_algo.learning_rate=0.01"]
    run = tmp_path / "student"
    run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--iterations", "2", "--out", str(run)],
                      timeout=300)
    out = run_in_train_venv(train_python, ["-m", "g1_train.cli", "student", *common, "--resume", str(run),
                                           "--iterations", "1"], timeout=300).stdout
    assert "averaged weights restored (2 iterations, decay 0.5" in out
    code = """if True:
        import sys, torch
        from g1_train.checkpoint_io import load_checkpoint
        full, slim = load_checkpoint(sys.argv[1]), load_checkpoint(sys.argv[2])
        live, avg = full["student_state_dict"], full["student_average_state_dict"]
        print(full["weight_average"]["updates"], full["optimizer_state_dict"]["param_groups"][0]["lr"])
        w = "mlp.gate.0.weight"
        print(float((live[w] - avg[w]).abs().max()), float((slim["student_state_dict"][w] - avg[w]).abs().max()))
        print(float((live["obs_normalizer._mean"] - avg["obs_normalizer._mean"]).abs().max()))
    """
    lines = run_in_train_venv(train_python, ["-c", code, str(run / "model_2.pt"), str(run / "policy.pt")],
                              timeout=120).stdout.split("\n")
    updates, lr = lines[0].split()
    assert int(updates) == 3 and float(lr) == 0.01
    differ, slim_differ = map(float, lines[1].split())
    assert differ > 1e-6 and slim_differ == 0.0  # the average lags the live weights; policy.pt is the average
    assert float(lines[2]) == 0.0  # the normaliser is the live one
    import onnx
    from onnx import numpy_helper

    from g1_tracker_policy.contract import load_artifact

    acts = {}
    for flag in ([], ["--live"]):
        dst = tmp_path / f"student{''.join(flag)}.onnx"
        run_in_train_venv(train_python, ["-m", "g1_train.cli", "export", "--checkpoint", str(run / "model_2.pt"),
                                         "--out", str(dst), *flag], timeout=300)
        weights = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(dst)).graph.initializer}
        acts[bool(flag)] = (load_artifact(dst).provenance["weights"], weights)
    assert acts[False][0] == {"average": {"decay": 0.5, "updates": 3}} and acts[True][0] == "live"
    assert acts[False][1].keys() == acts[True][1].keys()
    assert any(not np.array_equal(a, acts[True][1][k]) for k, a in acts[False][1].items())


def test_position_gain_shows_the_expert_a_larger_offset(fence1, g1_moves):
    """env.expert_position_gain = K: the expert's anchor-position term grows by (K - 1) x the pelvis x/y
    offset (in the robot's anchor frame); every other term is what the expert sees at gain 1."""
    from g1_tracker_policy.external_controller import ExternalObservation
    from g1_tracker_policy.observation import quat_to_rotmat
    from g1_train.experts import shown_position

    env = _env(fence1, g1_moves)
    for _ in range(10):
        env.step(env.obs["expert_action"].astype(np.float64))
    s, ref = env.state, env.reference()
    root = s.root_pos.copy()
    root[:, :2] += np.array([[0.12, -0.07], [-0.05, 0.09]])  # the robot off the reference pelvis
    shown = shown_position(root, ref.root_pos[:, 0], 4.0)
    np.testing.assert_allclose(shown[:, 2], root[:, 2])
    np.testing.assert_allclose(shown[:, :2] - ref.root_pos[:, 0, :2], 4.0 * (root[:, :2] - ref.root_pos[:, 0, :2]))
    assert shown_position(root, ref.root_pos[:, 0], 1.0) is root
    builder = ExternalObservation(ext.load_policy(fence1))
    window = SimpleNamespace(joint_pos=ref.joint_pos[0], joint_vel=ref.joint_vel[0], root_pos=ref.root_pos[0],
                             root_quat_wxyz=ref.root_quat_wxyz[0], times_s=ref.times_s[0])

    def terms(pos):
        state = RobotState(joint_pos=s.joint_pos[0], joint_vel=s.joint_vel[0], base_quat_wxyz=s.imu_quat[0],
                           base_ang_vel_body=s.imu_gyro[0], base_pos_world=pos, base_lin_vel_body=np.zeros(3))
        return builder.terms(state, window, np.zeros(29))

    true, seen = terms(root[0]), terms(shown[0])
    anchor_rot = quat_to_rotmat(builder.kin.pose(root[0], s.imu_quat[0], s.joint_pos[0])[1])
    extra = anchor_rot.T @ (3.0 * np.r_[ref.root_pos[0, 0, :2] - root[0, :2], 0.0])
    np.testing.assert_allclose(seen["motion_anchor_pos_b"], true["motion_anchor_pos_b"] + extra, atol=1e-9)
    for name in true:
        if name != "motion_anchor_pos_b":
            np.testing.assert_allclose(seen[name], true[name], err_msg=name)
    with pytest.raises(ValueError, match="env.expert_position_gain"):
        _env(fence1, g1_moves, "env.expert_position_gain=0.5")


def test_position_gain_walks_the_robot_back_onto_the_path(fence1, g1_moves):
    """Started 12 cm off the reference pelvis (x), the B_Fence1 expert as trained (gain 1) is still
    ~12 cm off after 2 s; its labels at gain 4 close a quarter of it (measured 0.123 vs 0.094 m)."""
    final = {}
    for gain in (1.0, 4.0):
        env = _env(fence1, g1_moves, f"env.expert_position_gain={gain}")
        qpos, qvel = np.zeros((2, env.base_model.nq)), np.zeros((2, env.base_model.nv))
        ref = env.reference(np.array([0]))
        qpos[:, :3] = ref.root_pos[:, 0] + np.array([0.12, 0.0, 0.0])
        qpos[:, 3:7] = ref.root_quat_wxyz[:, 0]
        qpos[:, 7:] = ref.joint_pos[:, 0]
        env.physics.reset_envs(np.arange(2), qpos, qvel)
        env.physics.gather(env.state, np.arange(2))
        env.obs = env._observe()
        for _ in range(100):
            _, _, term, _, _ = env.step(env.obs["expert_action"].astype(np.float64))
            assert not term[0], f"gain {gain}: the expert fell"
        final[gain] = float(np.linalg.norm(env.state.root_pos[0, :2] - env.reference().root_pos[0, 0, :2]))
    assert final[1.0] > 0.10 and final[4.0] < 0.85 * final[1.0], final
