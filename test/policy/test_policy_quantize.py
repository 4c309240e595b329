"""Int8 quantization of policy artifacts: a checked, labelled artifact, or a clear refusal."""

import subprocess
import sys

import numpy as np
import pytest

from g1_tracker_policy import contract as c
from g1_tracker_policy.controllers import OnnxPolicyRunner
from g1_tracker_policy.quantize import QuantizationError, quantize_artifact
from g1_tracker_policy.testing import make_test_policy


@pytest.mark.parametrize("kind", ["moe", "transformer_kv"])
def test_quantized_artifact_is_a_checked_contract_close_to_the_float_model(tmp_path, kind):
    src = make_test_policy(kind, tmp_path / "f.onnx", seed=2)
    rng = np.random.default_rng(1)
    extra = rng.normal(0, 0.5, (40, src.observation.size)).astype(np.float32)  # > the KV context length
    art, rep = quantize_artifact(src.path, tmp_path / "q.onnx", observations=extra)
    loaded = c.load_artifact(tmp_path / "q.onnx")  # golden vectors of the int8 model re-checked at load
    assert loaded.model_kind == kind and loaded.provenance["quantization"]["source"] == "f.onnx"
    assert rep["checked_steps"] == len(extra) + c.decode_array(src.golden["inputs"]).shape[0]
    assert rep["bytes_int8"] < 0.5 * rep["bytes_float"]
    np.testing.assert_array_equal(loaded.kp, src.kp)
    assert loaded.action_base == src.action_base
    # the report's figure is what the two runners really give
    a = OnnxPolicyRunner(str(src.path), kind, src.io).run_sequence(extra)
    b = OnnxPolicyRunner(str(loaded.path), kind, loaded.io).run_sequence(extra)
    diff = float(np.max(np.abs(a - b) * src.action_scale))
    assert 0 < diff <= rep["max_target_diff_rad"] <= 0.02


def test_quantization_that_moves_actions_too_far_is_refused_and_writes_nothing(tmp_path):
    src = make_test_policy("mlp", tmp_path / "f.onnx", seed=2)
    with pytest.raises(QuantizationError, match=r"move the joint targets by up to .* more than the allowed 1e-09"):
        quantize_artifact(src.path, tmp_path / "q.onnx", max_target_diff_rad=1e-9)
    assert not (tmp_path / "q.onnx").exists()


def test_cli_quantizes_and_refuses_a_second_time(tmp_path):
    src = make_test_policy("mlp", tmp_path / "f.onnx", seed=2)
    g1 = [sys.executable, "-m", "g1_bringup.cli", "policy"]
    ok = subprocess.run(g1 + ["quantize", str(src.path), str(tmp_path / "q.onnx")], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "joint targets within" in ok.stdout
    again = subprocess.run(g1 + ["quantize", str(tmp_path / "q.onnx"), str(tmp_path / "qq.onnx")],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "already quantized" in again.stderr
    bad = subprocess.run(g1 + ["inspect", str(tmp_path / "missing.onnx")], capture_output=True, text=True)
    assert bad.returncode == 1 and "field 'path': no policy file" in bad.stderr
