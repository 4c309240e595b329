"""The one motion format of the stack: a versioned ``.npz`` (see README.md, "Motion format").

Every array is a plain numeric or unicode array, so files load with ``np.load(allow_pickle=False)``:
loading a motion file can never run code. ``load_motion`` checks every field before anything uses it.
"""

from __future__ import annotations

import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from g1_description import robot

from . import rotations

FORMAT_VERSION = 1
#: Arrays are stored as float32 (half the size; 1e-7 relative precision is far below what matters for
#: tracking) and computed with as float64 after loading.
STORAGE_DTYPE = np.float32

_PER_FRAME_FIELDS = {  # name -> shape after the frame axis
    "joint_pos": (robot.NUM_JOINTS,),
    "joint_vel": (robot.NUM_JOINTS,),
    "root_pos": (3,),
    "root_quat_wxyz": (4,),
    "root_lin_vel": (3,),
    "root_ang_vel": (3,),
}
_PROVENANCE_FIELDS = ("source_file", "source_format", "license", "attribution", "importer_version",
                      "imported_at")


class MotionFormatError(ValueError):
    """A motion file that is not a valid motion of this format (the message says which field)."""


@dataclass
class Motion:
    """A motion clip at a fixed frame rate: SDK joint order, world frame, quaternions wxyz."""

    name: str
    fps: float
    joint_pos: np.ndarray          # (T, 29) rad
    joint_vel: np.ndarray          # (T, 29) rad/s
    root_pos: np.ndarray           # (T, 3) m, pelvis origin in world
    root_quat_wxyz: np.ndarray     # (T, 4) pelvis orientation in world, sign-continuous
    root_lin_vel: np.ndarray       # (T, 3) m/s, world
    root_ang_vel: np.ndarray       # (T, 3) rad/s, world
    key_body_pos: np.ndarray       # (T, K, 3) m, world, order = key_body_names
    key_body_names: tuple[str, ...] = robot.KEY_BODIES
    joint_names: tuple[str, ...] = robot.JOINT_NAMES
    #: source_file, source_format, license, attribution, importer_version, imported_at, plus
    #: ``import_report`` (a list of warning strings) and importer-specific details.
    provenance: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.joint_pos.shape[0])

    @property
    def duration_s(self) -> float:
        return (self.num_frames - 1) / self.fps

    @property
    def frame_times_s(self) -> np.ndarray:
        return np.arange(self.num_frames) / self.fps

    def validate(self) -> None:
        """Raise MotionFormatError naming the field if anything is inconsistent or not finite."""
        t = self.num_frames
        if t < 2:
            raise MotionFormatError(f"motion {self.name!r}: {t} frames; a motion needs at least 2")
        if not (np.isfinite(self.fps) and self.fps > 0):
            raise MotionFormatError(f"motion {self.name!r}: fps {self.fps} is not a positive number")
        if tuple(self.joint_names) != robot.JOINT_NAMES:
            raise MotionFormatError(f"motion {self.name!r}: joint_names are not the G1 SDK joint order")
        shapes = {name: (t, *shape) for name, shape in _PER_FRAME_FIELDS.items()}
        shapes["key_body_pos"] = (t, len(self.key_body_names), 3)
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise MotionFormatError(f"motion {self.name!r}: {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                row = int(np.argwhere(~np.isfinite(arr))[0][0])
                raise MotionFormatError(f"motion {self.name!r}: {name} has NaN/inf at frame {row}")
        norms = np.linalg.norm(self.root_quat_wxyz, axis=1)
        if np.any(np.abs(norms - 1.0) > 1e-3):
            raise MotionFormatError(f"motion {self.name!r}: root_quat_wxyz is not unit norm "
                                    f"(norms {norms.min():.4f}..{norms.max():.4f})")


def save_motion(motion: Motion, path: Path) -> None:
    """Write ``motion`` to ``path`` atomically: a temporary file in the same directory, fsync, rename.
    A crash or a bad motion never leaves a half-written file under the final name."""
    motion.validate()
    path = Path(path)
    arrays = {
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "name": np.array(motion.name),
        "fps": np.array(float(motion.fps)),
        "joint_names": np.array(motion.joint_names),
        "key_body_names": np.array(motion.key_body_names),
        "provenance_json": np.array(json.dumps(motion.provenance, sort_keys=True)),
        "key_body_pos": motion.key_body_pos.astype(STORAGE_DTYPE),
    }
    for name in _PER_FRAME_FIELDS:
        arrays[name] = getattr(motion, name).astype(STORAGE_DTYPE)
    for key in _PROVENANCE_FIELDS:  # also as plain fields, readable without parsing JSON
        arrays[key] = np.array(str(motion.provenance.get(key, "")))
    write_atomic(path, lambda f: np.savez(f, **arrays))


def write_atomic(path: Path, write) -> None:
    """Call ``write(file)`` on a temporary file next to ``path`` and rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_motion(path: Path) -> Motion:
    """Load and validate a motion file; raises MotionFormatError with what is wrong and where."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # ValueError: pickles refused
        raise MotionFormatError(f"{path}: not a readable motion file ({type(exc).__name__}: {exc}); "
                                "re-import it from its source") from exc
    version = int(_field(data, "format_version", path))
    if version > FORMAT_VERSION:
        raise MotionFormatError(f"{path}: format_version {version} is newer than this software "
                                f"({FORMAT_VERSION}); update motion_server")
    try:
        provenance = json.loads(str(data.get("provenance_json", "{}")))
    except json.JSONDecodeError as exc:
        raise MotionFormatError(f"{path}: provenance_json is not valid JSON ({exc})") from exc
    motion = Motion(
        name=str(data.get("name", path.stem)),
        fps=float(_field(data, "fps", path)),
        key_body_names=tuple(str(n) for n in _field(data, "key_body_names", path)),
        joint_names=tuple(str(n) for n in _field(data, "joint_names", path)),
        provenance=provenance,
        key_body_pos=np.asarray(_field(data, "key_body_pos", path), dtype=np.float64),
        **{name: np.asarray(_field(data, name, path), dtype=np.float64) for name in _PER_FRAME_FIELDS},
    )
    try:
        motion.validate()
    except MotionFormatError as exc:
        raise MotionFormatError(f"{path}: {exc}") from exc
    # float32 storage leaves norms 1 +- 1e-7: renormalise so every consumer gets exact rotations.
    motion.root_quat_wxyz = rotations.normalize(motion.root_quat_wxyz)
    return motion


def _field(data: dict, key: str, path: Path) -> np.ndarray:
    if key not in data:
        raise MotionFormatError(f"{path}: missing field {key!r}; is this a g1_tracker motion file? "
                                "Import other formats with `g1 motions import`")
    return data[key]


@dataclass
class FrameBatch:
    """Frames sampled from a motion (or built by the player), float64, leading axis = frames."""

    times_s: np.ndarray
    joint_pos: np.ndarray
    joint_vel: np.ndarray
    root_pos: np.ndarray
    root_quat_wxyz: np.ndarray
    root_lin_vel: np.ndarray
    root_ang_vel: np.ndarray
    key_body_pos: np.ndarray

    FIELDS = ("times_s", "joint_pos", "joint_vel", "root_pos", "root_quat_wxyz", "root_lin_vel",
              "root_ang_vel", "key_body_pos")

    @classmethod
    def empty(cls, n: int, num_key_bodies: int) -> "FrameBatch":
        return cls(np.zeros(n), np.zeros((n, robot.NUM_JOINTS)), np.zeros((n, robot.NUM_JOINTS)),
                   np.zeros((n, 3)), np.tile([1.0, 0, 0, 0], (n, 1)), np.zeros((n, 3)), np.zeros((n, 3)),
                   np.zeros((n, num_key_bodies, 3)))

    def assign(self, mask: np.ndarray, other: "FrameBatch") -> None:
        for name in self.FIELDS:
            getattr(self, name)[mask] = getattr(other, name)


def sample(motion: Motion, clip_times_s: np.ndarray) -> FrameBatch:
    """Frames at arbitrary clip times (clamped to [0, duration]): linear interpolation between the two
    neighbouring frames, slerp for the root orientation. Times on the frame grid return stored frames."""
    pos = np.clip(np.asarray(clip_times_s, dtype=np.float64) * motion.fps, 0.0, motion.num_frames - 1)
    nearest = np.rint(pos)
    if np.all(np.abs(pos - nearest) < 1e-6):  # all on the frame grid (the usual case): a plain gather
        idx = nearest.astype(np.int64)
        return FrameBatch(
            times_s=idx / motion.fps, joint_pos=motion.joint_pos[idx], joint_vel=motion.joint_vel[idx],
            root_pos=motion.root_pos[idx], root_quat_wxyz=motion.root_quat_wxyz[idx],
            root_lin_vel=motion.root_lin_vel[idx], root_ang_vel=motion.root_ang_vel[idx],
            key_body_pos=motion.key_body_pos[idx])
    i0 = np.minimum(np.floor(pos).astype(np.int64), motion.num_frames - 2)
    frac = pos - i0
    # Snap to the grid: clip times computed as k * 0.02 carry rounding that should not blend frames.
    on_grid = np.abs(frac - np.round(frac)) < 1e-6
    frac = np.where(on_grid, np.round(frac), frac)
    i1 = i0 + 1

    def lerp(arr):
        f = frac.reshape(-1, *([1] * (arr.ndim - 1)))
        return (1.0 - f) * arr[i0] + f * arr[i1]

    return FrameBatch(
        times_s=pos / motion.fps,
        joint_pos=lerp(motion.joint_pos), joint_vel=lerp(motion.joint_vel),
        root_pos=lerp(motion.root_pos),
        root_quat_wxyz=rotations.slerp(motion.root_quat_wxyz[i0], motion.root_quat_wxyz[i1], frac),
        root_lin_vel=lerp(motion.root_lin_vel), root_ang_vel=lerp(motion.root_ang_vel),
        key_body_pos=lerp(motion.key_body_pos),
    )
