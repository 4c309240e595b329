"""Loading policies trained elsewhere: format detection, facts from the file (mapped by joint name),
refusals that name the missing or mismatched field, the sidecar, and the embedded motion."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from g1_description import robot
from g1_tracker_policy import contract as c
from g1_tracker_policy import external as ext
from g1_tracker_policy.testing import make_external_test_policy, make_test_policy
from motion_server.kinematics import KeyBodyKinematics

FENCE = "policies/mjlab_B_Fence1/B_Fence1.onnx"
SHUFFLED = tuple(np.random.default_rng(3).permutation(robot.JOINT_NAMES))
DEFAULTS = {n: float(robot.DEFAULT_JOINT_POS[i]) for i, n in enumerate(robot.JOINT_NAMES)}
FASTSAC_FACTS = {"default_joint_pos": DEFAULTS, "action_scale": {"effort_limit_over_kp": 0.25},
                 "observation_terms": ["actions", "base_ang_vel", "dof_pos", "dof_vel", "motion_command",
                                       "motion_ref_ori_b"], "anchor_body": "torso_link"}


def test_formats_are_detected_from_metadata(tmp_path, shared_data):
    assert ext.policy_format(shared_data / FENCE) == "mjlab"
    assert ext.policy_format(make_external_test_policy("holosoma", tmp_path / "h.onnx")) == "holosoma"
    make_test_policy("mlp", tmp_path / "ours.onnx")
    assert ext.policy_format(tmp_path / "ours.onnx") == "g1"
    assert isinstance(ext.load_policy(tmp_path / "ours.onnx"), c.PolicyArtifact)  # our contract, unchanged


def test_the_mjlab_b_fence1_export_loads_with_its_own_facts(shared_data):
    art = ext.load_policy(shared_data / FENCE)
    assert art.format == "mjlab" and art.obs_size == 160 and art.anchor_body == "torso_link"
    assert [t for t, _ in art.observation_terms] == ["command", "motion_anchor_pos_b", "motion_anchor_ori_b",
                                                      "base_lin_vel", "base_ang_vel", "joint_pos", "joint_vel",
                                                      "actions"]
    # its metadata gains are the armature rule of g1_description (3 decimals in the file), not the MJCF's 500
    np.testing.assert_allclose(art.kp, robot.KP, atol=1e-3)
    np.testing.assert_allclose(art.default_joint_pos, robot.DEFAULT_JOINT_POS, atol=1e-3)
    np.testing.assert_allclose(art.action_scale, 0.25 * robot.EFFORT_LIMIT / robot.KP, atol=1e-3)
    assert art.needs_odometry and art.base_lin_vel_source == "zero"
    assert set(art.facts_from.values()) == {"metadata"}


def test_shuffled_joint_order_is_mapped_by_name(tmp_path):
    for fmt in ("mjlab", "holosoma"):
        art = ext.load_policy(make_external_test_policy(fmt, tmp_path / f"{fmt}.onnx", joint_names=SHUFFLED))
        assert art.joints.names == SHUFFLED
        np.testing.assert_allclose(art.kp, robot.KP, rtol=1e-5)   # written in the shuffled order, read back SDK
        np.testing.assert_allclose(art.kd, robot.KD, rtol=1e-5)
        np.testing.assert_allclose(art.default_joint_pos, robot.DEFAULT_JOINT_POS, atol=1e-6)
        np.testing.assert_allclose(art.action_scale, 0.25 * robot.EFFORT_LIMIT / robot.KP, rtol=1e-5)
        values = np.arange(29.0)
        np.testing.assert_array_equal(art.joints.from_sdk(art.joints.to_sdk(values)), values)
        assert art.joints.to_sdk(values)[robot.JOINT_INDEX[SHUFFLED[0]]] == 0.0


def test_fastsac_like_export_without_facts_is_refused_naming_them_all(tmp_path):
    path = make_external_test_policy("holosoma", tmp_path / "fastsac.onnx", with_config=False)
    with pytest.raises(c.ContractError) as err:
        ext.load_policy(path)
    msg = str(err.value)
    assert err.value.field == "default_joint_pos"
    for fact in ("default_joint_pos", "action_scale", "observation_terms", "never guesses", "fastsac.g1.yaml"):
        assert fact in msg, msg


def test_a_sidecar_supplies_the_missing_facts(tmp_path):
    path = make_external_test_policy("holosoma", tmp_path / "fastsac.onnx", with_config=False, joint_names=SHUFFLED)
    (tmp_path / "fastsac.g1.yaml").write_text(yaml.safe_dump(FASTSAC_FACTS))   # found next to the ONNX
    art = ext.load_policy(path)
    np.testing.assert_allclose(art.action_scale, 0.25 * robot.EFFORT_LIMIT / robot.KP, rtol=1e-5)
    np.testing.assert_allclose(art.default_joint_pos, robot.DEFAULT_JOINT_POS)
    assert art.facts_from["action_scale"].startswith("sidecar") and art.facts_from["kp"] == "metadata"
    # a per-joint list is read in the artifact's own joint order
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump({**FASTSAC_FACTS, "action_scale": [0.1 * (i + 1) for i in range(29)]}))
    art = ext.load_policy(path, other)
    assert art.action_scale[robot.JOINT_INDEX[SHUFFLED[4]]] == pytest.approx(0.5)


def test_sidecar_never_overrides_the_files_own_facts(tmp_path):
    path = make_external_test_policy("holosoma", tmp_path / "ppo.onnx")
    side = tmp_path / "s.yaml"
    side.write_text(yaml.safe_dump({"action_scale": 0.5}))
    with pytest.raises(c.ContractError, match="authoritative") as err:
        ext.load_policy(path, side)
    assert err.value.field == "action_scale"
    side.write_text(yaml.safe_dump({"action_scal": 0.5}))
    with pytest.raises(c.ContractError, match="unknown keys"):
        ext.load_policy(path, side)


@pytest.mark.parametrize("case, field, match", [
    ("unknown_term", "observation_terms", "not mjlab terms"),
    ("wrong_width", "observation_terms", "input is"),
    ("unknown_joint", "joint_names", "not G1 joints"),
    ("missing_joint", "joint_names", "left_knee_joint.*missing"),
    ("time_step_in_actions", "io", "depend on time_step"),
])
def test_mismatches_are_refused_naming_the_field(tmp_path, case, field, match):
    path = tmp_path / f"{case}.onnx"
    if case == "unknown_term":
        make_external_test_policy("mjlab", path, obs_terms=["command", "height_scan"])
    elif case == "time_step_in_actions":
        make_external_test_policy("mjlab", path, actions_use_time_step=True)
    else:
        make_external_test_policy("mjlab", path)
        import onnx

        model = onnx.load(str(path))
        meta = {p.key: p for p in model.metadata_props}
        if case == "wrong_width":  # 157 wide where the names give 160: a history/term mismatch
            meta["observation_names"].value = meta["observation_names"].value.replace(",base_lin_vel", "")
        elif case == "unknown_joint":
            meta["joint_names"].value = meta["joint_names"].value.replace("left_knee_joint", "left_knee")
        else:  # a 28-joint policy
            meta["joint_names"].value = meta["joint_names"].value.replace("left_knee_joint,", "")
        onnx.save(model, str(path))
    with pytest.raises(c.ContractError, match=match) as err:
        ext.load_policy(path)
    assert err.value.field == field


def test_embedded_mjlab_motion_is_read_out_to_its_last_frame(tmp_path):
    path = make_external_test_policy("mjlab", tmp_path / "m.onnx", joint_names=SHUFFLED, num_frames=40)
    m = ext.embedded_motion(path)
    assert len(m.joint_pos) == 40 and m.fps == robot.CONTROL_RATE_HZ
    dt = robot.CONTROL_PERIOD_S
    np.testing.assert_allclose(m.joint_pos[0], robot.DEFAULT_JOINT_POS, atol=1e-6)      # SDK order again
    np.testing.assert_allclose(m.joint_pos[39] - m.joint_pos[0], 0.1 * 39 * dt, atol=1e-5)
    np.testing.assert_allclose(m.joint_vel, 0.1, atol=1e-6)
    np.testing.assert_allclose(m.root_pos[:, 0], 0.5 * dt * np.arange(40), atol=1e-6)   # the pelvis body


def test_embedded_holosoma_motion_puts_the_pelvis_under_its_xyzw_torso(tmp_path):
    path = make_external_test_policy("holosoma", tmp_path / "h.onnx", num_frames=30)
    m = ext.embedded_motion(path)
    assert len(m.joint_pos) == 30
    # the model's torso: xyzw (0, 0, sin 45, cos 45) = yaw +90 deg; waist joints at 0: the pelvis too
    np.testing.assert_allclose(m.root_quat_wxyz[0], [math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)], atol=1e-6)
    pos, quat = KeyBodyKinematics().body_poses("torso_link", m.root_pos, m.root_quat_wxyz, m.joint_pos)
    np.testing.assert_allclose(pos[:, 0], 0.5 * robot.CONTROL_PERIOD_S * np.arange(30), atol=1e-6)
    np.testing.assert_allclose(pos[:, 1:], np.tile([0.0, 1.0], (30, 1)), atol=1e-6)
    np.testing.assert_allclose(np.abs(quat @ m.root_quat_wxyz[0]), 1.0, atol=1e-6)


def test_a_file_of_no_known_format_is_refused_saying_what_it_lacks(tmp_path):
    import onnx

    make_test_policy("mlp", tmp_path / "ours.onnx")
    model = onnx.load(str(tmp_path / "ours.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "plain.onnx"))
    with pytest.raises(c.ContractError, match="no g1 contract metadata.*mjlab/BeyondMimic or holosoma") as err:
        ext.load_policy(tmp_path / "plain.onnx")
    assert err.value.field == "format"
