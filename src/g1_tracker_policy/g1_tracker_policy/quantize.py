"""Int8 weight quantization of a policy artifact, checked against the float model it came from.

Why: on a small CPU the policy's weights do not stay in cache between 50 Hz ticks (measured by
bench/policy_tick.py: after ~5 ms of other work an inference runs 2-4x slower than back to back), so a
tick streams every weight from memory. Int8 weights are a quarter of the bytes: a 20M-parameter
Transformer with a KV cache goes from ~5 ms to ~1.5-2.5 ms per tick here.

How: ONNX Runtime's dynamic quantization (MatMul/Gemm weights int8, activations quantized per call;
everything else, including the KV-cache tensors, stays float). The result is a normal artifact: the
same contract fields, new golden vectors from the quantized model, and ``provenance.quantization``
saying what was done and how far the actions moved. The export is REFUSED when the joint targets of the
quantized model differ from the float model's by more than ``max_target_diff_rad`` on the check
observations (the source's golden inputs - real rollout observations for trained policies - plus any
given), so a quantization that changes behaviour cannot slip through silently. After deployment,
``g1 replay BAG --policy QUANTIZED.onnx`` on a bag recorded with the float policy measures the
difference on a whole run.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx

from g1_tracker_policy import contract as c

DEFAULT_MAX_TARGET_DIFF_RAD = 0.02


class QuantizationError(ValueError):
    pass


def quantize_artifact(src: str | os.PathLike, dst: str | os.PathLike, *, observations: np.ndarray | None = None,
                      max_target_diff_rad: float = DEFAULT_MAX_TARGET_DIFF_RAD) -> tuple[c.PolicyArtifact, dict]:
    """Write an int8-weight copy of the artifact ``src`` to ``dst``; returns (artifact, check report).

    ``observations``: extra (T, D) observation sequences fed from a reset (the golden protocol) to compare
    the two models on; the source's golden inputs are always used.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from g1_tracker_policy.controllers import OnnxPolicyRunner

    src, dst = Path(src), Path(dst)
    art = c.load_artifact(src)  # only a valid artifact is quantized
    if "quantization" in art.provenance:
        raise QuantizationError(f"{src} is already quantized ({art.provenance['quantization'].get('method')})")
    with tempfile.TemporaryDirectory(prefix="g1_quantize_") as tmp:
        out = Path(tmp) / "q.onnx"
        logging.disable(logging.WARNING)  # ORT's generic "consider pre-processing" advice on the root logger
        try:
            quantize_dynamic(str(src), str(out), weight_type=QuantType.QInt8)
        finally:
            logging.disable(logging.NOTSET)
        qmodel = onnx.load(str(out))
    fp32 = OnnxPolicyRunner(str(src), art.model_kind, art.io)
    q8 = OnnxPolicyRunner(qmodel.SerializeToString(), art.model_kind, art.io)
    golden_in = c.decode_array(art.golden["inputs"]).astype(np.float32)
    sequences = [golden_in] + ([] if observations is None else [np.asarray(observations, dtype=np.float32)])
    diffs = []
    for seq in sequences:
        if seq.ndim != 2 or seq.shape[1] != art.observation.size:
            raise QuantizationError(f"check observations must be (T, {art.observation.size}), got {seq.shape}")
        diffs.append(np.abs(q8.run_sequence(seq) - fp32.run_sequence(seq)) * art.action_scale)
    d = np.concatenate(diffs)
    report = {"method": "onnxruntime quantize_dynamic, int8 MatMul/Gemm weights, float activations and KV cache",
              "source": src.name, "source_sha256": hashlib.sha256(src.read_bytes()).hexdigest(),
              "checked_steps": int(d.shape[0]), "max_target_diff_rad": float(d.max()),
              "mean_target_diff_rad": float(d.mean()), "max_target_diff_allowed_rad": float(max_target_diff_rad),
              "bytes_float": src.stat().st_size, "bytes_int8": len(qmodel.SerializeToString())}
    if not d.max() <= max_target_diff_rad:
        j = int(np.argmax(d.max(axis=0)))
        raise QuantizationError(
            f"int8 weights move the joint targets by up to {d.max():.4f} rad (joint {art.joint_names[j]}) on "
            f"{d.shape[0]} check steps, more than the allowed {max_target_diff_rad} rad: keep the float model "
            "(or raise --max-target-diff-rad knowingly)")
    provenance = {**art.provenance, "name": f"{art.name}-int8", "quantization": report}
    provenance.pop("created_utc", None)
    quantized = c.write_artifact(
        dst, qmodel, model_kind=art.model_kind, observation=art.observation, kp=art.kp, kd=art.kd,
        action_scale=art.action_scale, action_offset=art.action_offset, action_base=art.action_base,
        control_rate_hz=art.control_rate_hz, provenance=provenance, golden_inputs=golden_in)
    return quantized, report
