"""The policy artifact contract: every model kind round-trips; mismatches are refused by field name."""

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from g1_description import robot
from g1_tracker_policy import contract as c
from g1_tracker_policy.controllers import OnnxPolicyRunner, PassthroughController, PolicyController, RobotState
from g1_tracker_policy.observation import ObservationConfig
from g1_tracker_policy.testing import build_model, make_test_policy, standing_window


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    d = tmp_path_factory.mktemp("policies")
    return {k: make_test_policy(k, d / f"{k}.onnx", seed=3) for k in c.MODEL_KINDS}


def rewrite(src, dst, edit):
    """Copy an artifact, letting ``edit(meta_dict, model)`` change it."""
    model = onnx.load(str(src))
    meta = {p.key[len(c.PREFIX):]: json.loads(p.value) for p in model.metadata_props if p.key.startswith(c.PREFIX)}
    edit(meta, model)
    del model.metadata_props[:]
    for k, v in meta.items():
        model.metadata_props.add(key=c.PREFIX + k, value=json.dumps(v))
    onnx.save(model, str(dst))
    return dst


@pytest.mark.parametrize("kind", c.MODEL_KINDS)
def test_every_kind_round_trips_with_golden_vectors(artifacts, kind):
    art = c.load_artifact(artifacts[kind].path, future_offsets=ObservationConfig().future_offsets)
    assert art.model_kind == kind and art.observation == ObservationConfig()
    np.testing.assert_array_equal(art.kp, robot.STAND_KP)
    assert art.provenance["source"] == "g1_tracker_policy.testing.make_test_policy"
    assert c.decode_array(art.golden["inputs"]).shape[0] >= 2


@pytest.mark.parametrize("kind", c.MODEL_KINDS)
def test_test_policies_are_residual_to_the_reference(artifacts, kind):
    ctrl = PolicyController(artifacts[kind], warm_up_runs=2)
    q = robot.DEFAULT_JOINT_POS + 0.1 * np.sin(np.arange(29))
    window = standing_window(joint_pos=q)
    state = RobotState(robot.DEFAULT_JOINT_POS.copy(), np.zeros(29), np.array([1.0, 0, 0, 0]), np.zeros(3))
    out = ctrl.compute(state, window, np.zeros(29))
    assert out.position.shape == (29,) and np.all(np.isfinite(out.position))
    assert np.max(np.abs(out.position - q)) < 0.05  # the random part is small: the robot can stand on it


@pytest.mark.parametrize("kind", c.MODEL_KINDS)
def test_prewarm_dry_run_changes_no_state(artifacts, kind):
    """The node's cache warm-up runs observation + inference before each deadline: the ticks after
    it must give exactly the actions of ticks without it (history, KV cache, step count untouched)."""
    rng = np.random.default_rng(3)
    window = standing_window(joint_pos=robot.DEFAULT_JOINT_POS + 0.1 * np.sin(np.arange(29)))
    states = [RobotState(robot.DEFAULT_JOINT_POS + rng.normal(0, 0.05, 29), rng.normal(0, 0.3, 29),
                         np.array([1.0, 0, 0, 0]), rng.normal(0, 0.1, 3)) for _ in range(4)]
    plain, warmed = (PolicyController(artifacts[kind], warm_up_runs=1) for _ in range(2))
    assert warmed.prewarm() is False  # nothing run yet: nothing to re-run
    a_plain, a_warmed = np.zeros(29), np.zeros(29)
    for i, st in enumerate(states):
        out_p = plain.compute(st, window, a_plain)
        warmed.prewarm(states[-1 - i], window, np.ones(29))  # other inputs: must leave no trace
        warmed.prewarm()
        out_w = warmed.compute(st, window, a_warmed)
        np.testing.assert_array_equal(out_w.action, out_p.action)
        a_plain, a_warmed = out_p.action, out_w.action
    assert warmed.runner.steps == plain.runner.steps == len(states)
    assert warmed.runner.warm_inference_s > 0


@pytest.mark.parametrize("kind", ["transformer_kv", "transformer_window"])
def test_transformer_state_is_carried_across_ticks_and_cleared_by_reset(artifacts, kind):
    art = artifacts[kind]
    runner = OnnxPolicyRunner(str(art.path), kind, art.io)
    rng = np.random.default_rng(0)
    obs = rng.normal(0, 1, (3, art.observation.size)).astype(np.float32)
    first = runner(obs[0])
    runner(obs[1])
    later = runner(obs[0])
    assert not np.allclose(first, later, atol=1e-6)   # the context changed the answer
    runner.reset()
    np.testing.assert_allclose(runner(obs[0]), first, atol=1e-6)


def test_passthrough_is_a_labelled_baseline():
    ctrl = PassthroughController()
    q = robot.DEFAULT_JOINT_POS + 0.05
    out = ctrl.compute(None, standing_window(joint_pos=q), np.zeros(29))
    assert ctrl.is_baseline and ctrl.name == "baseline:passthrough"
    np.testing.assert_allclose(out.position, q)


def test_refuses_wrong_observation_size(artifacts, tmp_path):
    def edit(meta, model):
        meta["observation"]["history_length"] += 1
        meta["observation"]["layout"]["size"] += meta["observation"]["layout"]["proprio_frame_size"]
    bad = rewrite(artifacts["mlp"].path, tmp_path / "bad.onnx", edit)
    with pytest.raises(c.ContractError, match=r"field 'observation'.*input is 1257 wide but the observation layout gives 1350") as e:
        c.load_artifact(bad)
    assert e.value.field == "observation"


def test_refuses_wrong_joint_order(artifacts, tmp_path):
    def edit(meta, model):
        names = meta["joint_names"]
        names[0], names[6] = names[6], names[0]  # left/right hip pitch swapped, as a breadth-first export would
    bad = rewrite(artifacts["mlp"].path, tmp_path / "bad.onnx", edit)
    with pytest.raises(c.ContractError, match=r"field 'joint_names'.*index 0.*right_hip_pitch_joint") as e:
        c.load_artifact(bad)
    assert e.value.field == "joint_names"


@pytest.mark.parametrize("field", ["kp", "observation", "golden", "action_scale", "action_base"])
def test_refuses_missing_metadata(artifacts, tmp_path, field):
    bad = rewrite(artifacts["moe"].path, tmp_path / "bad.onnx", lambda meta, model: meta.pop(field))
    with pytest.raises(c.ContractError, match=rf"field '{field}': missing from the metadata") as e:
        c.load_artifact(bad)
    assert e.value.field == field


def test_refuses_a_plain_onnx_file_with_no_contract(artifacts, tmp_path):
    model = onnx.load(str(artifacts["mlp"].path))
    del model.metadata_props[:]
    onnx.save(model, str(tmp_path / "plain.onnx"))
    with pytest.raises(c.ContractError, match="missing from the metadata"):
        c.load_artifact(tmp_path / "plain.onnx")


def test_refuses_golden_vectors_off(artifacts, tmp_path):
    def edit(meta, model):  # the weights changed after validation (a different file / backend)
        init = next(i for i in model.graph.initializer if i.name.startswith("w_"))
        arr = numpy_helper.to_array(init).copy()
        arr += 0.5
        init.CopyFrom(numpy_helper.from_array(arr, init.name))
    bad = rewrite(artifacts["conv_encoder"].path, tmp_path / "bad.onnx", edit)
    with pytest.raises(c.ContractError, match=r"field 'golden': ONNX Runtime output differs") as e:
        c.load_artifact(bad)
    assert e.value.field == "golden"


def test_refuses_control_rate_and_future_offset_mismatch(artifacts):
    with pytest.raises(c.ContractError, match=r"field 'control_rate_hz'.*50.0 Hz.*100"):
        c.load_artifact(artifacts["mlp"].path, control_rate_hz=100.0)
    with pytest.raises(c.ContractError, match=r"field 'observation.future_offsets'.*motion server sends \[1, 2, 3\]"):
        c.load_artifact(artifacts["mlp"].path, future_offsets=(1, 2, 3))


def test_refuses_unsafe_gains_and_wrong_default_pose(artifacts, tmp_path):
    def gains(meta, model):
        meta["kp"][3] = 5000.0
    with pytest.raises(c.ContractError, match=r"field 'kp'.*left_knee_joint"):
        c.load_artifact(rewrite(artifacts["mlp"].path, tmp_path / "kp.onnx", gains))

    def pose(meta, model):
        meta["default_joint_pos"][3] = 0.2
    with pytest.raises(c.ContractError, match=r"field 'default_joint_pos'.*left_knee_joint"):
        c.load_artifact(rewrite(artifacts["mlp"].path, tmp_path / "pose.onnx", pose))


def test_writer_refuses_an_export_that_does_not_reproduce_the_framework(tmp_path):
    from g1_tracker_policy.testing import build_model
    cfg = ObservationConfig()
    model = build_model("mlp", cfg)
    inputs = np.zeros((2, cfg.size), dtype=np.float32)
    with pytest.raises(c.ContractError, match="exporting framework"):
        c.write_artifact(tmp_path / "x.onnx", model, model_kind="mlp", observation=cfg, kp=robot.KP, kd=robot.KD,
                         action_scale=0.25, golden_inputs=inputs, golden_outputs=np.ones((2, 29)))
    assert not (tmp_path / "x.onnx").exists()


def test_reference_based_actions_are_residuals_on_the_next_frame(tmp_path):
    cfg = ObservationConfig()
    art = c.write_artifact(tmp_path / "res.onnx", build_model("mlp", cfg, seed=5), model_kind="mlp",
                           observation=cfg, kp=robot.STAND_KP, kd=robot.STAND_KD, action_scale=0.25,
                           action_base=c.ACTION_BASE_REFERENCE)
    assert art.action_base == c.ACTION_BASE_REFERENCE and art.uses_reference
    np.testing.assert_array_equal(art.action_offset, np.zeros(29))  # nothing on top of the reference
    ctrl = PolicyController(art, warm_up_runs=1)
    q = robot.DEFAULT_JOINT_POS + 0.2 * np.cos(np.arange(29))
    window = standing_window(joint_pos=q)
    state = RobotState(robot.DEFAULT_JOINT_POS.copy(), np.zeros(29), np.array([1.0, 0, 0, 0]), np.zeros(3))
    out = ctrl.compute(state, window, np.zeros(29))
    np.testing.assert_allclose(out.position, window.joint_pos[0] + 0.25 * out.action, atol=1e-12)
    # the last action is recovered against the same reference; with no reference it reads as "followed it"
    np.testing.assert_allclose(ctrl.observe_command(out.position, window), out.action, atol=1e-9)
    np.testing.assert_array_equal(ctrl.observe_command(out.position, None), np.zeros(29))
    # a zero action is exactly the pass-through baseline's command
    np.testing.assert_array_equal(art.action_to_target(np.zeros(29), window.joint_pos[0]),
                                  PassthroughController().compute(state, window, np.zeros(29)).position)
    with pytest.raises(ValueError, match="no reference was given"):
        art.action_to_target(np.zeros(29))


def test_version_1_artifacts_read_as_offset_based_and_unknown_bases_are_refused(artifacts, tmp_path):
    def to_v1(meta, model):
        meta["contract_version"] = 1
        meta.pop("action_base")
    art = c.load_artifact(rewrite(artifacts["mlp"].path, tmp_path / "v1.onnx", to_v1))
    assert art.action_base == c.ACTION_BASE_OFFSET and not art.uses_reference
    np.testing.assert_allclose(art.action_to_target(np.ones(29)), art.action_offset + art.action_scale)
    bad = rewrite(artifacts["mlp"].path, tmp_path / "bad.onnx", lambda meta, model: meta.update(action_base="pose"))
    with pytest.raises(c.ContractError, match="field 'action_base': 'pose' is not one of") as e:
        c.load_artifact(bad)
    assert e.value.field == "action_base"


# Malformed metadata VALUES (issue 12, item 10): every one is a ContractError naming the field, never a
# traceback from deep inside the loader.
_GOLDEN_EMPTY = {"inputs": {"dtype": "float32", "shape": [0, 1257], "b64": ""},
                 "outputs": {"dtype": "float32", "shape": [0, 29], "b64": ""}}
MALFORMED = [
    ("contract_version", "abc"), ("contract_version", None), ("contract_version", [2]), ("contract_version", 2.5),
    ("contract_version", True), ("contract_version", "2"),
    ("model_kind", 5), ("model_kind", ["mlp"]), ("model_kind", {"a": 1}),
    ("joint_names", "abc"), ("joint_names", 5), ("joint_names", None), ("joint_names", [1, 2]),
    ("default_joint_pos", "abc"), ("default_joint_pos", {"a": 1}), ("default_joint_pos", None),
    ("kp", ["x"] * 29), ("kd", [[1.0]] * 29), ("action_scale", True), ("action_offset", "0"),
    ("action_base", ["offset"]), ("action_base", {"offset": 1}), ("action_base", None),
    ("control_rate_hz", "abc"), ("control_rate_hz", None), ("control_rate_hz", [50]), ("control_rate_hz", True),
    ("observation", "abc"), ("observation", 5), ("observation", []),
    ("io", "abc"), ("io", 5),
    ("provenance", "a string"), ("provenance", [1, 2]), ("provenance", None), ("provenance", 3),
    ("golden", "abc"), ("golden", []), ("golden", None), ("golden", {}), ("golden", _GOLDEN_EMPTY),
]


def _set_obs_field(key, value):
    def edit(meta, model):
        meta["observation"][key] = value
    return edit


@pytest.mark.parametrize("field,value", MALFORMED, ids=[f"{f}={v!r}"[:40] for f, v in MALFORMED])
def test_malformed_metadata_values_are_contract_errors_naming_the_field(artifacts, tmp_path, field, value):
    bad = rewrite(artifacts["mlp"].path, tmp_path / "bad.onnx", lambda meta, model: meta.update({field: value}))
    with pytest.raises(c.ContractError) as e:
        c.load_artifact(bad)
    assert e.value.field.split(".")[0] == field, (e.value.field, str(e.value))
    assert f"field '{e.value.field}'" in str(e.value)


@pytest.mark.parametrize("key,value", [("scales", "abc"), ("scales", {"joint_vel": "x"}), ("future_offsets", 5),
                                       ("history_length", "two"), ("layout", 5), ("layout", {"size": "x"}),
                                       ("proprio_terms", 7), ("clip", None), ("version", "abc")])
def test_malformed_observation_entries_are_contract_errors(artifacts, tmp_path, key, value):
    bad = rewrite(artifacts["mlp"].path, tmp_path / "bad.onnx", _set_obs_field(key, value))
    with pytest.raises(c.ContractError) as e:
        c.load_artifact(bad)
    assert e.value.field.startswith("observation"), str(e.value)


def _golden_edit(**changes):
    def edit(meta, model):
        g = meta["golden"]
        for key, value in changes.items():
            if "." in key:
                part, sub = key.split(".")
                g[part][sub] = value
            else:
                g[key] = value
    return edit


@pytest.mark.parametrize("changes", [
    {"inputs.shape": [2, 3]}, {"inputs.shape": "abc"}, {"inputs.shape": [-1, 1257]}, {"inputs.b64": 5},
    {"inputs.b64": "not base64!"}, {"inputs.dtype": "float64"}, {"outputs": "abc"}, {"inputs": None},
    {"outputs.shape": [4, 28]}, {"atol": "abc"}, {"rtol": None}, {"atol": [1]}],
    ids=lambda ch: ",".join(f"{k}={v!r}" for k, v in ch.items())[:40])
def test_malformed_golden_entries_are_contract_errors(artifacts, tmp_path, changes):
    bad = rewrite(artifacts["mlp"].path, tmp_path / "bad.onnx", _golden_edit(**changes))
    with pytest.raises(c.ContractError) as e:
        c.load_artifact(bad)
    assert e.value.field.startswith("golden"), str(e.value)


def test_golden_tolerances_belong_to_the_loader(artifacts, tmp_path):
    """An artifact cannot loosen its own check: garbage outputs with atol 1e30 are refused, and so is
    the loose tolerance itself (it says the exporter expected a looser check than this loader makes)."""
    def garbage(meta, model):
        g = meta["golden"]
        out = c.decode_array(g["outputs"])
        g["outputs"] = c.encode_array(out + 1e6)
        g["atol"], g["rtol"] = 1e30, 1e30
    with pytest.raises(c.ContractError) as e:
        c.load_artifact(rewrite(artifacts["mlp"].path, tmp_path / "loose.onnx", garbage))
    assert e.value.field.startswith("golden") and "1e+30" in str(e.value)
    # the loader's own constants decide even when the stored values are tighter or equal
    tight = rewrite(artifacts["mlp"].path, tmp_path / "tight.onnx", _golden_edit(atol=1e-9, rtol=0.0))
    assert c.load_artifact(tight).model_kind == "mlp"
