"""Exporters: library motions -> other frameworks' formats, so a clip of this library can train a
policy elsewhere (and that policy can come back through ``g1 track --policy``).

``mjlab-npz`` (the motion file of mjlab's / BeyondMimic's tracking task, what their ``csv_to_npz``
writes; np.savez, no pickles):

| field | shape | meaning |
|---|---|---|
| ``fps`` | (1,) | frame rate (this library's 50 Hz: one frame per policy step at mjlab's 50 Hz) |
| ``joint_pos``, ``joint_vel`` | (T, 29) | rad, rad/s, in the MJCF (= G1 SDK) joint order |
| ``body_pos_w`` | (T, B, 3) | world positions of every body of the G1 model, MJCF order (B = 30: pelvis first) |
| ``body_quat_w`` | (T, B, 4) | world orientations, **w x y z** |
| ``body_lin_vel_w``, ``body_ang_vel_w`` | (T, B, 3) | world linear / angular velocities (m/s, rad/s) |
| ``joint_names``, ``body_names`` | (29,), (B,) | the orders above (mjlab ignores them; our importer uses them) |

Bodies come from forward kinematics on the same G1 MJCF the simulator uses; velocities are central
differences (one-sided at the ends) at the clip's rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from g1_description import robot

from . import rotations
from .kinematics import KeyBodyKinematics, robot_body_names
from .motion import Motion, write_atomic

FORMATS = ("mjlab-npz",)


def mjlab_arrays(motion: Motion) -> dict[str, np.ndarray]:
    """The mjlab motion-npz arrays of ``motion`` (see the module docstring)."""
    bodies = robot_body_names()
    pos, quat = KeyBodyKinematics().body_poses(list(bodies), motion.root_pos, motion.root_quat_wxyz, motion.joint_pos)
    dt = 1.0 / motion.fps
    quat = np.stack([rotations.make_continuous(quat[:, b]) for b in range(len(bodies))], axis=1)
    lin_vel = np.gradient(pos, dt, axis=0)
    ang_vel = np.stack([rotations.world_angular_velocity(quat[:, b], dt) for b in range(len(bodies))], axis=1)
    return {"fps": np.array([float(motion.fps)]), "joint_pos": motion.joint_pos.astype(np.float32),
            "joint_vel": motion.joint_vel.astype(np.float32), "body_pos_w": pos.astype(np.float32),
            "body_quat_w": quat.astype(np.float32), "body_lin_vel_w": lin_vel.astype(np.float32),
            "body_ang_vel_w": ang_vel.astype(np.float32), "joint_names": np.array(robot.JOINT_NAMES),
            "body_names": np.array(bodies)}


def export_motion(motion: Motion, out: Path, fmt: str = "mjlab-npz") -> Path:
    """Write ``motion`` to ``out`` in ``fmt`` (atomically). Raises ValueError for an unknown format."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; supported: {', '.join(FORMATS)}")
    arrays = mjlab_arrays(motion)
    out = Path(out)
    write_atomic(out, lambda f: np.savez(f, **arrays))
    return out
