"""Foot grounding (motion_server.grounding): stance soles flat and on the floor, nothing else moved.

The sole geometry is read here straight from MuJoCo (the collision spheres' world positions after
``mj_kinematics``), not through the grounding module's own helpers.
"""

from __future__ import annotations

import subprocess
import sys

import mujoco
import numpy as np
import pytest

from g1_description import mjcf, robot
from motion_server.importers import ground_motion, import_motion
from motion_server.library import MotionLibrary

CLIPS = ["bonus/B_HandsUp.csv", "dance/J_Dance8_WestCoast.csv", "karate/M_ShortMove14.csv"]


def soles(motion) -> tuple[np.ndarray, np.ndarray]:
    """(T, 2) lowest collision-sphere point per foot (world z) and (T, 2) sole tilt (deg) per foot."""
    model = mjcf.build_kinematic_model()
    data = mujoco.MjData(model)
    feet = [model.body(f"{s}_ankle_roll_link").id for s in ("left", "right")]
    spheres = [[g for g in range(model.ngeom) if model.geom_bodyid[g] == b and model.geom_contype[g]
                and model.geom_type[g] == mujoco.mjtGeom.mjGEOM_SPHERE] for b in feet]
    low, tilt = np.empty((motion.num_frames, 2)), np.empty((motion.num_frames, 2))
    for i in range(motion.num_frames):
        data.qpos[:] = np.concatenate([motion.root_pos[i], motion.root_quat_wxyz[i], motion.joint_pos[i]])
        mujoco.mj_kinematics(model, data)
        for f, b in enumerate(feet):
            low[i, f] = min(data.geom_xpos[g, 2] - model.geom_size[g, 0] for g in spheres[f])
            tilt[i, f] = np.degrees(np.arccos(np.clip(data.xmat[b][8], -1, 1)))
    return low, tilt


@pytest.fixture(scope="module", params=CLIPS)
def pair(request, g1_moves_dir, kinematics):
    path = g1_moves_dir / request.param
    return (import_motion(path, kinematics=kinematics).motion,
            import_motion(path, kinematics=kinematics, ground=True).motion)


def test_stance_feet_are_flat_level_and_on_the_floor(pair):
    raw, grounded = pair
    low_raw, tilt_raw = soles(raw)
    low, tilt = soles(grounded)
    floor = np.percentile(low_raw.min(1), 5)   # the clip's own floor (some clips float by centimetres)
    stance = low_raw - floor < 0.03             # full stance in the raw clip (grounding.STANCE_M)
    assert stance.mean() > 0.3
    # the defect being fixed: tilted stance feet, one sole hovering above the other
    assert np.median(tilt_raw[stance]) > 4.0
    both = stance.all(1)
    assert np.median(np.abs(low_raw[both, 0] - low_raw[both, 1])) > 0.01
    # fixed: flat, level with each other, the lower one on the floor
    assert np.median(tilt[stance]) < 0.5, np.median(tilt[stance])
    level = both & (np.abs(low_raw[:, 0] - low_raw[:, 1]) < 0.025)   # (larger differences: a step, faded out)
    assert np.median(np.abs(low[level, 0] - low[level, 1])) < 0.004
    contact = stance.any(1)
    lowest = low.min(1)[contact]
    assert np.percentile(np.abs(lowest), 90) < 0.006, np.percentile(np.abs(lowest), 90)


def test_only_the_legs_and_the_root_height_change(pair):
    raw, grounded = pair
    legs = [i for i, n in enumerate(robot.JOINT_NAMES) if any(k in n for k in ("hip", "knee", "ankle"))]
    others = [i for i in range(robot.NUM_JOINTS) if i not in legs]
    assert len(legs) == 12
    np.testing.assert_array_equal(grounded.joint_pos[:, others], raw.joint_pos[:, others])
    np.testing.assert_array_equal(grounded.root_pos[:, :2], raw.root_pos[:, :2])
    np.testing.assert_array_equal(grounded.root_quat_wxyz, raw.root_quat_wxyz)
    dz = grounded.root_pos[:, 2] - raw.root_pos[:, 2]
    assert np.abs(dz).max() < 0.1   # the clip's floor offset (J_Dance8: 3.4 cm) + the levelled ~2 cm
    assert np.abs(grounded.joint_pos[:, legs] - raw.joint_pos[:, legs]).max() < 0.8
    # upper-body key bodies move with the root height only
    upper = [i for i, n in enumerate(robot.KEY_BODIES) if not any(k in n for k in ("hip", "knee", "ankle"))]
    shift = grounded.key_body_pos[:, upper] - raw.key_body_pos[:, upper]
    np.testing.assert_allclose(shift[..., :2], 0.0, atol=1e-9)
    np.testing.assert_allclose(shift[..., 2], np.repeat(dz[:, None], len(upper), 1), atol=1e-9)
    # velocities follow the changed joints; the report says what changed
    assert np.abs(grounded.joint_vel[:, legs] - raw.joint_vel[:, legs]).max() > 0
    assert any("grounded the feet" in line for line in grounded.provenance["grounding"])
    assert np.all(np.isfinite(grounded.joint_pos)) and np.all(np.isfinite(grounded.key_body_pos))
    assert np.all(grounded.joint_pos >= robot.JOINT_LOWER - 1e-9)
    assert np.all(grounded.joint_pos <= robot.JOINT_UPPER + 1e-9)


def test_grounding_twice_is_a_no_op_and_survives_the_library(pair, tmp_path):
    _, grounded = pair
    assert ground_motion(grounded) is grounded
    lib = MotionLibrary(tmp_path)
    lib.add(grounded)
    loaded = lib.load(grounded.name)
    assert loaded.provenance["grounding"] == grounded.provenance["grounding"]
    assert ground_motion(loaded) is loaded


def test_motions_import_ground_flag(g1_moves_dir, tmp_path):
    g1 = [sys.executable, "-m", "g1_bringup.cli", "motions"]
    clip = g1_moves_dir / "karate" / "M_ShortMove14.csv"
    proc = subprocess.run([*g1, "--library", str(tmp_path), "import", str(clip), "--ground"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    motion = MotionLibrary(tmp_path).load("M_ShortMove14")
    assert motion.provenance["grounding"]
    assert any("grounded the feet" in w for w in motion.provenance["import_report"])
