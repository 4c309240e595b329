"""Physics backends of the training task (g1_train.physics): selection, the shared host-side maths, and the
MuJoCo-Warp backend against C MuJoCo (physics_warp_checks.py, run in the training venv where warp is)."""

from __future__ import annotations

import sys

import mujoco
import numpy as np
import pytest
from train_testutil import WS, run_in_train_venv

from g1_train.config import EnvCfg
from g1_train.env import build_train_model
from g1_train.physics import CMujocoPhysics, make_physics, mat_to_quat_wxyz
from g1_train.physics_batch import BatchPhysics


def test_mat_to_quat_is_mujocos_mat2quat():
    """The warp backend forms the IMU quaternion on the host: same branches (and signs) as mju_mat2Quat."""
    rng = np.random.default_rng(0)
    quats = rng.normal(size=(400, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    # rotations by ~pi about x, y, z: the three branches where the trace is negative
    quats[:3] = [[0.01, 1, 0.02, 0.01], [0.01, 0.02, 1, 0.01], [0.01, 0.02, 0.01, 1]]
    mats = np.zeros((len(quats), 9))
    want = np.zeros((len(quats), 4))
    for i, q in enumerate(quats):
        mujoco.mju_quat2Mat(mats[i], q / np.linalg.norm(q))
        mujoco.mju_mat2Quat(want[i], mats[i])
    np.testing.assert_allclose(mat_to_quat_wxyz(mats), want, atol=1e-12)
    np.testing.assert_allclose(mat_to_quat_wxyz(mats[5]), want[5], atol=1e-12)
    assert np.any(want[:, 0] < 0.1)  # the non-trace branches were exercised


def test_default_backend_is_batch_and_c_mujoco_is_selectable():
    cfg = EnvCfg(num_envs=2)
    assert cfg.backend == "batch"
    cfg.randomization.enabled = False
    phys = make_physics(cfg, build_train_model(0.0, "actuator_200hz"), ["pelvis"])
    assert isinstance(phys, BatchPhysics) and phys.batch.nsim == 2 and phys.profile.name == "actuator_200hz"
    cfg.backend = "mujoco"
    phys = make_physics(cfg, build_train_model(0.0), ["pelvis"])
    assert isinstance(phys, CMujocoPhysics) and len(phys.datas) == 2


def test_unknown_backend_is_named():
    cfg = EnvCfg(num_envs=1, backend="bullet")
    with pytest.raises(ValueError, match="env.backend 'bullet'.*batch.*mujoco.*warp"):
        make_physics(cfg, build_train_model(0.0), ["pelvis"])


def test_warp_backend_without_warp_is_a_clear_error(monkeypatch):
    for mod in ("warp", "mujoco_warp"):
        monkeypatch.setitem(sys.modules, mod, None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "g1_train.physics_warp", raising=False)
    with pytest.raises(ImportError, match="env.backend: warp needs mujoco-warp and warp-lang.*setup.sh"):
        make_physics(EnvCfg(num_envs=1, backend="warp"), build_train_model(0.0), ["pelvis"])


def test_warp_backend_in_training_venv(train_python):
    """C vs MuJoCo-Warp parity, a warp TrackingEnv, graph replay == eager, refused terrain, overflow errors.
    The first run on a machine compiles MuJoCo-Warp's kernels (about a minute on 2 CPU cores, cached in
    ~/.cache/warp); later runs take about 15 s."""
    proc = run_in_train_venv(train_python, ["-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
                                            str(WS / "test" / "physics_warp_checks.py")], timeout=540)
    assert " passed" in proc.stdout and "failed" not in proc.stdout
    print("\n".join(line.lstrip(".") for line in proc.stdout.splitlines() if "max |C - warp|" in line))
