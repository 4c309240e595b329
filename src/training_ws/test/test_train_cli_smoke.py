"""End to end on CPU through the real CLI in the training venv: tiny teacher -> MoE and causal
Transformer students -> ONNX export -> eval; then the policy node's loader accepts the artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from train_testutil import WS, run_in_train_venv

SMOKE = WS / "configs" / "smoke.yaml"


FEEDBACK_GAINS = [1.0, 0.1, 0.2, 0.0, -0.3, 0.05, 0.5, 0.0, 0.4, 0.05, 0.3, 0.0, 0.2, 0.0]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, train_python, g1_moves):
    out = tmp_path_factory.mktemp("g1_train_smoke")
    motions = f"env.motions.sources=[{g1_moves / 'dance'}]"
    g1_train = ["-m", "g1_train.cli"]
    run_in_train_venv(train_python, [*g1_train, "teacher", "--config", str(SMOKE), "--set", motions,
                                     "--out", str(out / "teacher")], timeout=300)
    for kind in ("moe", "transformer"):
        # two layers: with one, a sliding KV cache would be exact even for a standard decoder
        extra = ["--set", "student.num_layers=2"] if kind == "transformer" else []
        run_in_train_venv(train_python, [*g1_train, "student", "--config", str(SMOKE), "--set", motions, *extra,
                                         "--teacher", str(out / "teacher"), "--kind", kind,
                                         "--out", str(out / f"student_{kind}")], timeout=300)
        run_in_train_venv(train_python, [*g1_train, "export", "--checkpoint", str(out / f"student_{kind}"),
                                         "--out", str(out / f"{kind}.onnx")], timeout=300)
    # the same Transformer checkpoint as a KV-cache artifact
    run_in_train_venv(train_python, [*g1_train, "export", "--checkpoint", str(out / "student_transformer"),
                                     "--model-kind", "transformer_kv", "--out", str(out / "transformer_kv.onnx")],
                      timeout=300)
    # the MoE student with a balance feedback prior wrapped around it, and the feedback alone
    fb = ["--set", "env.balance_feedback=" + json.dumps(FEEDBACK_GAINS)]
    run_in_train_venv(train_python, [*g1_train, "export", "--checkpoint", str(out / "student_moe"), "--config",
                                     str(SMOKE), "--set", motions, *fb, "--out", str(out / "moe_fb.onnx")], timeout=300)
    run_in_train_venv(train_python, [*g1_train, "export", "--feedback-only", "--config", str(SMOKE), "--set", motions,
                                     *fb, "--out", str(out / "feedback.onnx")], timeout=300)
    # resuming continues the iteration count from the newest checkpoint of a run
    run_in_train_venv(train_python, [*g1_train, "teacher", "--config", str(SMOKE), "--set", motions,
                                     "--resume", str(out / "teacher"), "--iterations", "1",
                                     "--out", str(out / "teacher_resumed")], timeout=300)
    proc = run_in_train_venv(train_python, [*g1_train, "eval", "--config", str(SMOKE), "--set", motions,
                                            "--artifact", str(out / "moe.onnx"), "--max-s", "2",
                                            "--json", str(out / "eval.json")], timeout=300)
    return out, proc.stdout


def test_run_directories_have_config_logs_and_checkpoints(smoke_run):
    out, _ = smoke_run
    for run in ("teacher", "student_moe", "student_transformer"):
        d = out / run
        assert (d / "config.yaml").is_file()
        assert list(d.glob("events.out.tfevents.*")), f"no TensorBoard log in {d}"
        assert sorted(p.name for p in d.glob("model_*.pt")) == ["model_0.pt", "model_1.pt"]
        lines = (d / "progress.jsonl").read_text().splitlines()
        assert len(lines) == 2 and all(np.isfinite(v) for v in json.loads(lines[-1]).values())
    assert (out / "teacher_resumed" / "model_2.pt").is_file()


@pytest.mark.parametrize("file, kind, model_kind", [("moe", "moe", "moe"),
                                                     ("transformer", "transformer", "transformer_window"),
                                                     ("transformer_kv", "transformer", "transformer_kv")])
def test_exported_artifact_is_accepted_by_the_policy_loader(smoke_run, file, kind, model_kind):
    from g1_tracker_policy.contract import load_artifact
    from g1_tracker_policy.controllers import PolicyController

    out, _ = smoke_run
    artifact = load_artifact(out / f"{file}.onnx")  # checks metadata + golden vectors with ORT
    assert artifact.model_kind == model_kind
    assert artifact.provenance["train_config"]["student"]["kind"] == kind
    assert artifact.provenance["reference_grounding"] is False  # `g1 track --ground auto` reads it
    controller = PolicyController(artifact)  # the node's controller: builder + runner + warm-up
    assert controller.builder.cfg.size == artifact.observation.size


def test_kv_artifact_gives_the_window_artifacts_actions_past_the_context(smoke_run):
    """The KV-cache export of a 2-layer Transformer student and its rolling-window export, both run by
    the policy node's OnnxPolicyRunner, give the same actions tick by tick for 4 x C steps (the window
    slides from step C on), across a reset; and both reproduce torch's golden actions (the loader)."""
    from g1_tracker_policy.contract import decode_array, load_artifact
    from g1_tracker_policy.controllers import OnnxPolicyRunner

    out, _ = smoke_run
    win, kv = load_artifact(out / "transformer.onnx"), load_artifact(out / "transformer_kv.onnx")
    c = win.provenance["transformer"]["context_steps"]
    assert win.io["context_length"] == c and kv.io["context_length"] == c - 1  # cache = C-1 steps + the new one
    assert kv.io["kv_cache_shape"][0] == 2 and kv.provenance["transformer"]["arch"] == "token_memory"
    golden = decode_array(kv.golden["inputs"])
    assert golden.shape[0] > c, "golden vectors should run past the context length"
    # the golden protocol already compared ORT-KV with torch's window actions; here a longer sequence of
    # realistic observations (the rollout's, perturbed) through both runners
    rng = np.random.default_rng(0)
    seq = np.concatenate([golden, golden[rng.integers(0, len(golden), 4 * c - len(golden) + 8)]])
    seq = (seq + rng.normal(0.0, 0.3, seq.shape)).astype(np.float32)
    run_w = OnnxPolicyRunner(str(win.path), win.model_kind, win.io)
    run_kv = OnnxPolicyRunner(str(kv.path), kv.model_kind, kv.io)
    a_w, a_kv = [], []
    for t, obs in enumerate(seq):
        if t == len(seq) - 3:  # a motion restart: both forget the context
            run_w.reset()
            run_kv.reset()
        a_w.append(run_w(obs))
        a_kv.append(run_kv(obs))
    a_w, a_kv = np.array(a_w), np.array(a_kv)
    diff = float(np.abs(a_w - a_kv).max())
    print(f"max |window - kv| action difference over {len(seq)} steps (C = {c}): {diff:.2e}")
    assert diff < 1e-4
    assert np.abs(np.diff(a_w, axis=0)).max() > 1e-3  # actions vary: the comparison is not vacuous


def test_eval_reports_the_evaluator_metrics(smoke_run):
    out, stdout = smoke_run
    report = json.loads(Path(out / "eval.json").read_text())
    overall = report["overall"]
    assert overall["clips"] == 2
    for key in ("success_rate", "completion", "E_mpkpe_mm", "E_mpjpe_rad", "E_vel_mps", "E_yaw_vel_rads"):
        assert key in overall and overall[key] is not None
    assert json.loads(stdout.strip().splitlines()[-1])["controller"] == "policy:moe"


def test_policy_node_process_loads_the_exported_artifact(smoke_run, tmp_path):
    """The real policy node (a separate process, main venv) arms with the exported MoE student."""
    import os
    import random
    import subprocess
    import sys
    import time

    out, _ = smoke_run
    log = tmp_path / "policy_node.log"
    env = dict(os.environ, ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", PYTHONUNBUFFERED="1",
               ROS_DOMAIN_ID=str(random.Random(os.getpid() ^ time.time_ns()).randrange(20, 200)))
    env.pop("PYTHONPATH", None)
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "g1_tracker_policy.node", "--ros-args", "-p",
                                 f"policy_path:={out / 'moe.onnx'}"], stdout=f, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60.0
        text = ""
        while time.monotonic() < deadline and proc.poll() is None:
            text = log.read_text()
            if "golden vectors ok" in text or "refusing to arm" in text:
                break
            time.sleep(0.2)
        text = log.read_text()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert "loaded moe policy moe" in text, f"policy node did not load the artifact:\n{text[-3000:]}"
    assert "refusing to arm" not in text


def test_balance_feedback_is_inside_the_exported_graph(smoke_run):
    """An export with env.balance_feedback outputs net + feedback (ORT, the node's runner): the difference
    to the plain export is exactly g1_train.feedback's map; --feedback-only outputs the map alone."""
    from g1_tracker_policy.contract import decode_array, load_artifact
    from g1_tracker_policy.controllers import OnnxPolicyRunner

    from g1_train.feedback import BalanceFeedback

    out, _ = smoke_run
    plain, with_fb, only = (load_artifact(out / f) for f in ("moe.onnx", "moe_fb.onnx", "feedback.onnx"))
    assert with_fb.provenance["balance_feedback"] == FEEDBACK_GAINS and plain.provenance["balance_feedback"] == []
    assert only.provenance["parameters"] == 0 and only.model_kind == "mlp"
    fb = BalanceFeedback(with_fb.observation, FEEDBACK_GAINS, np.asarray(with_fb.action_scale))
    rng = np.random.default_rng(1)
    golden = decode_array(with_fb.golden["inputs"])
    obs = (golden[rng.integers(0, len(golden), 16)] + rng.normal(0.0, 0.2, (16, golden.shape[1]))).astype(np.float32)
    runners = [OnnxPolicyRunner(str(a.path), a.model_kind, a.io) for a in (plain, with_fb, only)]
    moved = 0.0
    for o in obs:
        a_plain, a_fb, a_only = (r(o) for r in runners)
        want = fb.action_delta(o[None])[0]
        np.testing.assert_allclose(a_fb - a_plain, want, atol=1e-4)
        np.testing.assert_allclose(a_only, want, atol=1e-5)
        moved = max(moved, float(np.abs(want).max()))
    assert moved > 0.05  # the feedback is not vacuous on these observations
