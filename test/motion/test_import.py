"""Importing real clips: all of G1-Moves, FK against MuJoCo directly, 60 -> 50 Hz resampling, formats."""

from __future__ import annotations

import functools
import pickle

import mujoco
import numpy as np
import pytest

from g1_description import mjcf, robot
from motion_server import rotations
from motion_server.importers import MotionImportError, import_motion, resample_times
from motion_server.kinematics import KeyBodyKinematics, isaaclab_joint_order, robot_body_names
from motion_server.library import MotionLibrary
from motion_server.motion import load_motion


def raw_csv(path) -> np.ndarray:
    """The clip's frames read independently of the importer: (N, 36) root xyz, quat xyzw, joints."""
    return np.loadtxt(path, delimiter=",", usecols=range(36), ndmin=2)


@functools.cache
def kinematic_model():
    return mjcf.build_kinematic_model()


def direct_fk(raw: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """Key-body positions of raw CSV frames by MuJoCo on the unmodified model."""
    model = kinematic_model()
    data = mujoco.MjData(model)
    ids = [model.body(name).id for name in robot.KEY_BODIES]
    out = []
    for i in frames:
        x, y, z, qx, qy, qz, qw = raw[i, :7]
        data.qpos[:] = [x, y, z, qw, qx, qy, qz, *raw[i, 7:]]
        mujoco.mj_kinematics(model, data)
        out.append(data.xpos[ids].copy())
    return np.array(out)


def test_all_49_g1_moves_clips_import(g1_moves_library, g1_moves_csvs):
    names = g1_moves_library.names()
    assert len(names) == 49
    for path in g1_moves_csvs:
        motion = g1_moves_library.load(path.stem)
        assert motion.fps == robot.CONTROL_RATE_HZ
        assert motion.provenance["license"] == "cc-by-4.0"
        assert "G1 Moves" in motion.provenance["attribution"]
        assert motion.provenance["source_file"] == str(path.resolve())
        assert motion.provenance["import_report"] == []  # the dataset has no limit violations


def test_fk_of_imported_clips_matches_direct_mujoco_fk(g1_moves_library, g1_moves_csvs):
    """Wherever a 50 Hz frame falls on a 60 Hz source frame, the stored key bodies equal MuJoCo's FK of
    that raw CSV row to < 1 mm (first and last frames always; every 5th when the grids align)."""
    worst = 0.0
    for path in g1_moves_csvs:
        raw = raw_csv(path)
        motion = g1_moves_library.load(path.stem)
        source_index = np.arange(motion.num_frames) * (len(raw) - 1) / (motion.num_frames - 1)
        on_grid = np.flatnonzero(np.abs(source_index - np.round(source_index)) < 1e-9)
        assert on_grid[0] == 0 and on_grid[-1] == motion.num_frames - 1
        expected = direct_fk(raw, np.round(source_index[on_grid]).astype(int))
        error = np.linalg.norm(motion.key_body_pos[on_grid] - expected, axis=-1).max()
        worst = max(worst, error)
    assert worst < 1e-3, f"max key-body error {worst * 1e3:.3f} mm"


def test_resampling_60_to_50_hz_keeps_duration_and_end_pose(g1_moves_csvs, tmp_path, kinematics):
    path = next(p for p in g1_moves_csvs if p.stem == "B_DadDance")
    raw = raw_csv(path)
    motion = import_motion(path, kinematics=kinematics).motion
    source_duration = (len(raw) - 1) / 60.0
    assert abs(motion.duration_s - source_duration) <= 0.5 / robot.CONTROL_RATE_HZ
    library = MotionLibrary(tmp_path)
    motion = library.load(library.add(motion).stem)  # through the file format, float32 storage
    for index, frame in ((0, 0), (-1, -1)):
        np.testing.assert_allclose(motion.joint_pos[index], raw[frame, 7:], atol=1e-6)
        np.testing.assert_allclose(motion.root_pos[index], raw[frame, :3], atol=1e-6)
        quat = rotations.xyzw_to_wxyz(raw[frame, 3:7])
        assert abs(abs(np.dot(motion.root_quat_wxyz[index], quat)) - 1.0) < 1e-6


def test_resample_times_cover_the_source_exactly():
    times = resample_times(num_frames=601, fps=60.0)  # 10 s
    assert len(times) == 501 and times[-1] == 10.0
    np.testing.assert_allclose(np.diff(times), 0.02)
    times = resample_times(num_frames=392, fps=60.0)  # 6.5167 s: not a multiple of 20 ms
    assert times[0] == 0.0 and times[-1] == pytest.approx(391 / 60.0)
    assert abs(np.diff(times).mean() - 0.02) < 0.02 * 0.002  # stretched by < 0.2 %


def _synthetic_clip(n: int, fps: float):
    t = np.arange(n) / fps
    root_pos = np.stack([0.3 * t, np.zeros(n), np.full(n, 0.78)], axis=1)
    yaw_rate = 0.5  # rad/s
    root_quat = rotations.from_yaw(yaw_rate * t)
    joints = np.tile(robot.DEFAULT_JOINT_POS, (n, 1))
    joints[:, 3] = 0.6 + 0.2 * np.sin(2 * np.pi * 0.5 * t)  # left knee
    return t, root_pos, root_quat, joints


def test_velocities_of_a_known_motion(tmp_path, kinematics):
    t, root_pos, root_quat, joints = _synthetic_clip(241, 120.0)
    path = tmp_path / "known.pkl"
    path.write_bytes(pickle.dumps({"fps": 120, "root_pos": root_pos, "root_rot": rotations.wxyz_to_xyzw(root_quat),
                                   "dof_pos": joints}))
    motion = import_motion(path, kinematics=kinematics).motion
    assert motion.fps == 50 and motion.duration_s == pytest.approx(2.0)
    inner = slice(2, -2)
    np.testing.assert_allclose(motion.root_lin_vel[inner], [[0.3, 0, 0]] * (motion.num_frames - 4), atol=1e-6)
    np.testing.assert_allclose(motion.root_ang_vel[inner, 2], 0.5, atol=1e-6)
    knee_vel = 0.2 * 2 * np.pi * 0.5 * np.cos(2 * np.pi * 0.5 * motion.frame_times_s)
    np.testing.assert_allclose(motion.joint_vel[inner, 3], knee_vel[inner], atol=0.01)


def beyondmimic_npz(path, raw: np.ndarray, joint_columns: np.ndarray) -> None:
    """Write ``raw`` CSV frames as a BeyondMimic/mjlab npz: all 30 bodies by MuJoCo FK (MJCF order),
    joint columns in the order ``joint_columns`` (indices into the SDK order)."""
    names = robot_body_names()
    quat = rotations.xyzw_to_wxyz(raw[:, 3:7])
    body_pos = KeyBodyKinematics(names).key_body_positions(raw[:, :3], quat, raw[:, 7:])
    body_quat = np.tile([1.0, 0, 0, 0], (len(raw), len(names), 1))
    body_quat[:, 0] = quat
    np.savez(path, fps=np.array([60.0]), joint_pos=raw[:, 7:][:, joint_columns].astype(np.float32),
             body_pos_w=body_pos.astype(np.float32), body_quat_w=body_quat.astype(np.float32))


def test_beyondmimic_npz_and_gmr_pickle_import_like_the_csv(g1_moves_csvs, tmp_path, kinematics):
    path = next(p for p in g1_moves_csvs if p.stem == "M_ShortMove14")
    raw = raw_csv(path)
    reference = import_motion(path, kinematics=kinematics).motion
    sdk = np.arange(robot.NUM_JOINTS)
    isaac = np.array([robot.JOINT_INDEX[n] for n in isaaclab_joint_order()])
    beyondmimic_npz(tmp_path / "mjlab.npz", raw, sdk)
    beyondmimic_npz(tmp_path / "isaaclab.npz", raw, isaac)
    (tmp_path / "gmr.pkl").write_bytes(pickle.dumps(
        {"fps": 60, "root_pos": raw[:, :3], "root_rot": raw[:, 3:7], "dof_pos": raw[:, 7:]}))
    for file, fmt in (("mjlab.npz", "beyondmimic_npz"), ("isaaclab.npz", "beyondmimic_npz"),
                      ("gmr.pkl", "gmr_pickle")):
        result = import_motion(tmp_path / file, kinematics=kinematics)
        motion = result.motion
        assert motion.provenance["source_format"] == fmt
        np.testing.assert_allclose(motion.key_body_pos, reference.key_body_pos, atol=1e-5)
        np.testing.assert_allclose(motion.joint_pos, reference.joint_pos, atol=1e-6)
    assert "IsaacLab breadth-first order (detected by FK); reordered" in " ".join(
        import_motion(tmp_path / "isaaclab.npz", kinematics=kinematics).warnings)


def test_npz_in_an_unknown_joint_order_is_refused(g1_moves_csvs, tmp_path):
    raw = raw_csv(next(p for p in g1_moves_csvs if p.stem == "M_ShortMove14"))
    beyondmimic_npz(tmp_path / "shuffled.npz", raw, np.random.default_rng(0).permutation(robot.NUM_JOINTS))
    with pytest.raises(MotionImportError, match="joint order unknown.*add a joint_names array"):
        import_motion(tmp_path / "shuffled.npz")


def test_motion_files_load_without_pickle(g1_moves_library):
    name = g1_moves_library.names()[0]
    path = g1_moves_library.root / f"{name}.npz"
    with np.load(path, allow_pickle=False) as npz:
        assert int(npz["format_version"]) == 1
        assert tuple(npz["joint_names"]) == robot.JOINT_NAMES
        assert tuple(npz["key_body_names"]) == robot.KEY_BODIES
        assert str(npz["importer_version"])
    assert load_motion(path).name == name
