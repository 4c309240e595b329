"""`g1 motions export --format mjlab-npz` and the embedded motion of a policy as a library clip."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from g1_description import robot
from motion_server.exporters import mjlab_arrays
from motion_server.importers import import_motion
from motion_server.kinematics import robot_body_names


def test_mjlab_npz_export_round_trips_through_our_mjlab_importer(tmp_path, g1_moves_library):
    out = tmp_path / "hands_up.npz"
    proc = subprocess.run([sys.executable, "-m", "g1_bringup.cli", "motions", "--library", str(g1_moves_library.root),
                           "export", "B_HandsUp", "--format", "mjlab-npz", "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    original = g1_moves_library.load("B_HandsUp")
    with np.load(out, allow_pickle=False) as npz:     # plain arrays only: mjlab's loader reads these
        data = {k: npz[k] for k in npz.files}
    t, b = original.num_frames, len(robot_body_names())
    assert data["fps"].tolist() == [50.0]
    assert data["joint_pos"].shape == (t, 29) and data["body_pos_w"].shape == (t, b, 3)
    assert data["body_quat_w"].shape == (t, b, 4) and data["body_lin_vel_w"].shape == (t, b, 3)
    assert data["body_ang_vel_w"].shape == (t, b, 3) and list(data["body_names"])[0] == "pelvis"
    # pelvis (body 0) is the library's root; quaternions are wxyz
    np.testing.assert_allclose(data["body_pos_w"][:, 0], original.root_pos, atol=1e-6)
    np.testing.assert_allclose(np.abs(np.sum(data["body_quat_w"][:, 0] * original.root_quat_wxyz, axis=1)), 1, atol=1e-6)
    back = import_motion(out).motion                  # our BeyondMimic/mjlab npz importer
    assert back.num_frames == t and back.fps == original.fps
    np.testing.assert_allclose(back.joint_pos, original.joint_pos, atol=1e-6)
    np.testing.assert_allclose(back.root_pos, original.root_pos, atol=1e-6)
    np.testing.assert_allclose(back.key_body_pos, original.key_body_pos, atol=1e-5)


def test_exported_body_velocities_are_the_derivatives_of_the_poses(g1_moves_library):
    m = g1_moves_library.load("M_ShortMove14")
    data = mjlab_arrays(m)
    mid = len(m.joint_pos) // 2
    dt = 1.0 / m.fps
    v = (data["body_pos_w"][mid + 1] - data["body_pos_w"][mid - 1]) / (2 * dt)
    np.testing.assert_allclose(data["body_lin_vel_w"][mid], v, atol=1e-4)
    np.testing.assert_allclose(data["body_ang_vel_w"][:, 0], m.root_ang_vel, atol=0.5)  # the library's is smoothed


def test_a_policys_embedded_motion_imports_as_a_clip_with_provenance(tmp_path, shared_data):
    policy = shared_data / "policies" / "mjlab_B_Fence1" / "B_Fence1.onnx"
    m = import_motion(policy).motion
    assert m.name == "B_Fence1" and m.fps == robot.CONTROL_RATE_HZ
    assert m.num_frames == 1619                            # one frame per time_step, 32.36 s
    p = m.provenance
    assert p["source_format"] == "mjlab_onnx_embedded" and p["time_steps"] == 1619
    assert p["embedded_in"].endswith("B_Fence1.onnx")
    # the joint velocities are the model's own (what the policy observes), not re-derived
    import onnxruntime as ort

    sess = ort.InferenceSession(str(policy), providers=["CPUExecutionProvider"])
    jv = sess.run(["joint_vel"], {"obs": np.zeros((1, 160), np.float32), "time_step": np.full((1, 1), 100.0, np.float32)})[0]
    np.testing.assert_allclose(m.joint_vel[100], jv[0], atol=1e-6)
