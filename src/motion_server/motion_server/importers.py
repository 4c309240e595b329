"""Importers: other motion formats -> the stack's ``Motion`` at the control rate.

Pipeline for every format: parse (format-specific) -> ``RawClip`` -> validate (non-finite values,
length, fps, quaternion norms) -> joint order (npz without names: found by FK) -> joint limits ->
resample to 50 Hz -> velocities -> key-body FK.

Supported sources (see README.md):
- Unitree / G1-Moves CSV: no header, root x y z, root quaternion x y z w, 29 joints (SDK order),
  optional trailing comma; 60 fps unless told otherwise.
- BeyondMimic / mjlab ``.npz``: fps, joint_pos, body_pos_w, body_quat_w (wxyz); root = body 0.
- GMR / GMT ``.pkl``: dict with fps, root_pos, root_rot (xyzw), dof_pos; read with a loader that
  refuses anything but containers and numpy arrays (``safe_pickle``).
"""

from __future__ import annotations

import datetime as _dt
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from g1_description import robot

from . import rotations, safe_pickle
from .kinematics import KeyBodyKinematics
from .motion import Motion

IMPORTER_VERSION = "1.0.0"
CONTROL_RATE_HZ = robot.CONTROL_RATE_HZ
#: G1-Moves and Unitree's retargeted CSVs are 60 fps and carry no rate of their own.
CSV_DEFAULT_FPS = 60.0
#: Shorter clips cannot fill a blend-in, let alone a 2 s future window.
MIN_DURATION_S = 0.2
MAX_FPS = 1000.0
#: Quaternion norms further than this from 1 are renormalised with a warning.
QUAT_NORM_TOLERANCE = 1e-3
#: Below this norm a "quaternion" is not a rotation at all (wrong columns, zeros): refuse.
QUAT_NORM_MIN = 0.5
#: Joint values beyond a limit by more than this are clipped and reported (rounding is not a violation).
JOINT_LIMIT_TOLERANCE_RAD = 1e-3
#: Refuse source files larger than this (a 10-minute 120 fps clip is ~30 MB of CSV).
MAX_SOURCE_BYTES = 512 * 1024 * 1024
SUFFIXES = (".csv", ".npz", ".pkl", ".pickle", ".onnx")

CSV_COLUMNS = ("root_x", "root_y", "root_z", "quat_x", "quat_y", "quat_z", "quat_w") + robot.JOINT_NAMES


class MotionImportError(ValueError):
    """A source file that cannot be imported; the message names the file, the place and what to do."""


@dataclass
class RawClip:
    """A parsed source clip before validation: its own frame rate, SDK joint order, quaternions wxyz."""

    fps: float | None
    root_pos: np.ndarray
    root_quat_wxyz: np.ndarray
    joint_pos: np.ndarray
    source_format: str
    details: dict = field(default_factory=dict)
    #: World positions of the source's bodies (T, B, 3) when it has them: used to verify the joint order.
    body_pos_w: np.ndarray | None = None
    #: Joint velocities (T, 29) when the source defines them exactly (a policy's embedded motion at the
    #: control rate: the policy observes these, so they are kept instead of being re-derived).
    joint_vel: np.ndarray | None = None


@dataclass
class ImportResult:
    motion: Motion
    warnings: list[str]


# --- parsers ---------------------------------------------------------------------------------------

def parse_csv(path: Path) -> RawClip:
    """Unitree / G1-Moves CSV. Checks every row's column count and every cell's number."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise MotionImportError(f"{path}: zero-length clip: the file has no rows")
    rows = [line.rstrip().rstrip(",").split(",") for line in lines]  # a trailing comma is allowed
    expected = len(CSV_COLUMNS)
    layout = "root x y z, quaternion x y z w, 29 joints in SDK order"
    if len(rows[0]) != expected:  # every row alike: a different layout, not damage
        raise MotionImportError(f"{path}: wrong column count: line 1 has {len(rows[0])} columns, expected "
                                f"{expected} ({layout}); is this a G1 29-DoF CSV?")
    for i, row in enumerate(rows):
        if len(row) != expected:
            what = "truncated row" if len(row) < expected else "row has extra columns"
            hint = " (the file may be cut off)" if i == len(rows) - 1 and len(row) < expected else ""
            raise MotionImportError(f"{path}: line {i + 1}: {what}: {len(row)} columns, expected {expected} "
                                    f"({layout}){hint}")
    try:
        values = np.array(rows, dtype=np.float64)
    except ValueError:
        raise MotionImportError(_locate_bad_cell(path, rows)) from None
    return RawClip(fps=None, root_pos=values[:, 0:3], root_quat_wxyz=rotations.xyzw_to_wxyz(values[:, 3:7]),
                   joint_pos=values[:, 7:], source_format="unitree_csv")


def _locate_bad_cell(path: Path, rows: list[list[str]]) -> str:
    for i, row in enumerate(rows):
        for j, cell in enumerate(row):
            try:
                float(cell)
            except ValueError:
                header = " (a header row? these CSVs have none)" if i == 0 else ""
                return (f"{path}: line {i + 1}, column {j + 1} ({CSV_COLUMNS[j]}): {cell.strip()!r} is not "
                        f"a number{header}")
    return f"{path}: a cell is not a number"


def parse_npz(path: Path) -> RawClip:
    """BeyondMimic / mjlab training npz (fps, joint_pos, body_pos_w, body_quat_w wxyz)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
    except ValueError as exc:
        raise MotionImportError(f"{path}: the npz holds pickled objects, which are refused ({exc})") from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise MotionImportError(f"{path}: not a readable npz file ({type(exc).__name__}: {exc})") from exc
    if "format_version" in data:
        raise MotionImportError(f"{path}: already a g1_tracker motion file; copy it into the library "
                                "directory instead of importing it")
    missing = [k for k in ("joint_pos", "body_pos_w", "body_quat_w") if k not in data]
    if missing:
        raise MotionImportError(f"{path}: missing arrays {missing}; expected a BeyondMimic/mjlab motion npz "
                                f"(has {sorted(data)})")
    root = 0
    if "body_names" in data:
        names = [str(n) for n in data["body_names"]]
        if robot.ROOT_BODY not in names:
            raise MotionImportError(f"{path}: body_names has no {robot.ROOT_BODY!r}")
        root = names.index(robot.ROOT_BODY)
    joint_pos = _as_float_array(data["joint_pos"], path, "joint_pos", ndim=2)
    if "joint_names" in data:
        joint_pos = _reorder_joints([str(n) for n in data["joint_names"]], joint_pos, path)
    body_pos = _as_float_array(data["body_pos_w"], path, "body_pos_w", ndim=3)
    body_quat = _as_float_array(data["body_quat_w"], path, "body_quat_w", ndim=3)
    fps = float(np.asarray(data["fps"]).reshape(-1)[0]) if "fps" in data else None
    details = {"joint_order": "from joint_names"} if "joint_names" in data else {}
    return RawClip(fps=fps, root_pos=body_pos[:, root], root_quat_wxyz=body_quat[:, root],
                   joint_pos=joint_pos, source_format="beyondmimic_npz", details=details,
                   body_pos_w=None if "joint_names" in data else body_pos)


def parse_pickle(path: Path) -> RawClip:
    """GMR / GMT pickle: {fps, root_pos, root_rot (xyzw), dof_pos}, possibly wrapped as {clip: {...}}."""
    try:
        obj = safe_pickle.safe_load(path.read_bytes())
    except safe_pickle.UnsafePickleError as exc:
        raise MotionImportError(f"{path}: {exc}") from exc
    except Exception as exc:  # truncated / corrupt pickles raise many types
        raise MotionImportError(f"{path}: not a readable pickle ({type(exc).__name__}: {exc})") from exc
    if isinstance(obj, dict) and "dof_pos" not in obj and len(obj) == 1:
        (obj,) = obj.values()  # GMT/PHC style {clip_name: {...}}
    if not isinstance(obj, dict):
        raise MotionImportError(f"{path}: expected a dict with fps, root_pos, root_rot, dof_pos; "
                                f"got {type(obj).__name__}")
    missing = [k for k in ("root_pos", "root_rot", "dof_pos") if k not in obj]
    if missing:
        raise MotionImportError(f"{path}: missing keys {missing} (has {sorted(map(str, obj))}); expected a "
                                "GMR/GMT motion pickle")
    joint_pos = _as_float_array(obj["dof_pos"], path, "dof_pos", ndim=2)
    if "joint_names" in obj or "dof_names" in obj:
        joint_pos = _reorder_joints(list(obj.get("joint_names", obj.get("dof_names"))), joint_pos, path)
    fps = obj.get("fps")
    return RawClip(fps=None if fps is None else _scalar(fps, path, "fps"),
                   root_pos=_as_float_array(obj["root_pos"], path, "root_pos", ndim=2),
                   root_quat_wxyz=rotations.xyzw_to_wxyz(_as_float_array(obj["root_rot"], path, "root_rot", ndim=2)),
                   joint_pos=joint_pos, source_format="gmr_pickle")


def _as_float_array(value, path: Path, key: str, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MotionImportError(f"{path}: {key} is not a numeric array ({exc})") from exc
    if arr.ndim != ndim:
        raise MotionImportError(f"{path}: {key} has shape {arr.shape}, expected {ndim} dimensions")
    return arr


def _scalar(value, path: Path, key: str) -> float:
    try:
        return float(np.asarray(value, dtype=np.float64).reshape(-1)[0])
    except (TypeError, ValueError, IndexError) as exc:
        raise MotionImportError(f"{path}: {key} is not a number ({value!r})") from exc


def _reorder_joints(names: list[str], joint_pos: np.ndarray, path: Path) -> np.ndarray:
    try:
        index = [names.index(n) for n in robot.JOINT_NAMES]
    except ValueError:
        missing = [n for n in robot.JOINT_NAMES if n not in names]
        raise MotionImportError(f"{path}: joint_names lack G1 joints {missing[:4]}") from None
    if joint_pos.shape[1] != len(names):
        raise MotionImportError(f"{path}: {len(names)} joint names but {joint_pos.shape[1]} joint columns")
    return joint_pos[:, index]


def parse_onnx(path: Path, sidecar: str | Path | None = None) -> RawClip:
    """The motion inside an mjlab/BeyondMimic or holosoma tracking policy (``time_step`` in, reference
    out), read out by running the model over every step (g1_tracker_policy.external.embedded_motion).
    A sidecar ``<stem>.g1.yaml`` next to the file is used as for the policy itself."""
    try:
        from g1_tracker_policy.contract import ContractError
        from g1_tracker_policy.external import embedded_motion
    except ImportError as exc:  # pragma: no cover - both packages are part of the stack
        raise MotionImportError(f"{path}: reading a policy's embedded motion needs g1_tracker_policy ({exc})") from exc
    try:
        m = embedded_motion(path, sidecar or None)
    except ContractError as exc:
        raise MotionImportError(f"{path}: no embedded motion could be read: {exc}") from exc
    return RawClip(fps=m.fps, root_pos=m.root_pos, root_quat_wxyz=m.root_quat_wxyz, joint_pos=m.joint_pos,
                   source_format=f"{m.details['policy_format']}_onnx_embedded", details=m.details,
                   joint_vel=m.joint_vel)


PARSERS = {".csv": parse_csv, ".npz": parse_npz, ".pkl": parse_pickle, ".pickle": parse_pickle, ".onnx": parse_onnx}


# --- validation -----------------------------------------------------------------------------------

def validate(raw: RawClip, path: Path, fps_override: float | None) -> tuple[float, list[str]]:
    """Check ``raw`` and normalise its quaternions in place. Returns (fps, warnings); raises
    MotionImportError."""
    warnings: list[str] = []
    fps = _resolve_fps(raw, path, fps_override)
    n = len(raw.joint_pos)
    if n == 0:
        raise MotionImportError(f"{path}: zero-length clip: no frames")
    fields = (("root position", raw.root_pos, ("x", "y", "z")),
              ("root quaternion", raw.root_quat_wxyz, ("w", "x", "y", "z")),
              ("joint positions", raw.joint_pos, robot.JOINT_NAMES))
    for key, arr, columns in fields:
        if arr.shape != (n, len(columns)):
            raise MotionImportError(f"{path}: {key} has shape {arr.shape}, expected ({n}, {len(columns)}) "
                                    "(wrong column count or joint count?)")
        bad = np.argwhere(~np.isfinite(arr))
        if len(bad):
            frame, column = bad[0]
            where = f"line {frame + 1}" if raw.source_format == "unitree_csv" else f"frame {frame}"
            raise MotionImportError(f"{path}: {where}: {key} ({columns[column]}) is NaN or inf "
                                    f"({len(np.unique(bad[:, 0]))} bad frames); fix or cut those frames")
    duration = (n - 1) / fps
    if duration < MIN_DURATION_S:
        raise MotionImportError(f"{path}: too short: {n} frames = {duration:.3f} s at {fps:g} fps; "
                                f"need at least {MIN_DURATION_S} s")
    warnings += _normalise_quaternions(raw, path)
    return fps, warnings


def _resolve_fps(raw: RawClip, path: Path, fps_override: float | None) -> float:
    if fps_override is not None:
        fps = float(fps_override)
    elif raw.fps is not None:
        fps = raw.fps
    elif raw.source_format == "unitree_csv":
        fps = CSV_DEFAULT_FPS
    else:
        raise MotionImportError(f"{path}: unknown fps: the file does not say its frame rate; pass --fps")
    if not (np.isfinite(fps) and 0 < fps <= MAX_FPS):
        raise MotionImportError(f"{path}: fps {fps} is not in (0, {MAX_FPS:g}]; pass --fps")
    return fps


def _normalise_quaternions(raw: RawClip, path: Path) -> list[str]:
    norms = np.linalg.norm(raw.root_quat_wxyz, axis=1)
    if np.any(norms < QUAT_NORM_MIN):
        frame = int(np.argmax(norms < QUAT_NORM_MIN))
        raise MotionImportError(f"{path}: frame {frame}: root quaternion norm {norms[frame]:.3f} is not a "
                                "rotation (wrong columns? the CSV order is x y z w)")
    raw.root_quat_wxyz = rotations.make_continuous(raw.root_quat_wxyz / norms[:, None])
    off = np.abs(norms - 1.0) > QUAT_NORM_TOLERANCE
    if np.any(off):
        return [f"root quaternion not unit norm in {int(off.sum())} frames (norm {norms.min():.4f}.."
                f"{norms.max():.4f}); normalised"]
    return []


def clip_joint_limits(raw: RawClip) -> list[str]:
    """Clip joints to the description's limits (SDK order: after ``verify_joint_order``); report each."""
    below = raw.joint_pos < robot.JOINT_LOWER - JOINT_LIMIT_TOLERANCE_RAD
    above = raw.joint_pos > robot.JOINT_UPPER + JOINT_LIMIT_TOLERANCE_RAD
    warnings = []
    for j in np.flatnonzero(below.any(axis=0) | above.any(axis=0)):
        excess = max(float(np.max(robot.JOINT_LOWER[j] - raw.joint_pos[:, j])),
                     float(np.max(raw.joint_pos[:, j] - robot.JOINT_UPPER[j])))
        frames = int((below[:, j] | above[:, j]).sum())
        warnings.append(f"joint {robot.JOINT_NAMES[j]} beyond its limit in {frames} frames (by up to "
                        f"{excess:.3f} rad); clipped to [{robot.JOINT_LOWER[j]:.3f}, {robot.JOINT_UPPER[j]:.3f}]")
    raw.joint_pos = robot.clip_to_limits(raw.joint_pos)
    return warnings


#: FK of the right joint order reproduces a source's own body positions to float32 rounding; a wrong
#: order is off by centimetres to decimetres.
JOINT_ORDER_TOLERANCE_M = 0.01
_MIN_BODIES_TO_VERIFY = 5


def verify_joint_order(raw: RawClip, path: Path) -> list[str]:
    """Find which joint order the source's joint columns use, by forward kinematics.

    Files without joint names (BeyondMimic from IsaacLab: breadth-first order; mjlab: MJCF order) are
    told apart by running FK on a few frames under each order and comparing with the file's own body
    positions. Reorders ``raw.joint_pos`` to SDK order; raises if neither order reproduces the bodies.
    """
    from .kinematics import KeyBodyKinematics, isaaclab_joint_order, robot_body_names

    body_pos = raw.body_pos_w
    if body_pos is None:
        return []
    if body_pos.shape[1] < _MIN_BODIES_TO_VERIFY:
        raw.details["joint_order"] = "assumed SDK order (too few bodies to verify)"
        return [f"joint order not verifiable ({body_pos.shape[1]} bodies in the file); assumed SDK order"]
    frames = np.unique(np.linspace(0, len(raw.joint_pos) - 1, 10).astype(int))
    fk = KeyBodyKinematics(robot_body_names())
    isaac = isaaclab_joint_order()
    candidates = {"SDK/MJCF": np.arange(robot.NUM_JOINTS),
                  "IsaacLab breadth-first": np.array([isaac.index(n) for n in robot.JOINT_NAMES])}
    errors = {}
    for label, to_sdk in candidates.items():
        bodies = fk.key_body_positions(raw.root_pos[frames], raw.root_quat_wxyz[frames],
                                       raw.joint_pos[frames][:, to_sdk])
        # Each model body to its nearest body in the file: independent of the file's body order.
        gaps = np.linalg.norm(bodies[:, :, None, :] - body_pos[frames][:, None, :, :], axis=-1).min(axis=2)
        errors[label] = float(gaps.max())
    best = min(errors, key=errors.get)
    if errors[best] > JOINT_ORDER_TOLERANCE_M:
        raise MotionImportError(
            f"{path}: joint order unknown: FK of joint_pos puts bodies {errors['SDK/MJCF'] * 100:.1f} cm (SDK "
            f"order) / {errors['IsaacLab breadth-first'] * 100:.1f} cm (IsaacLab order) from body_pos_w; add "
            "a joint_names array to the npz, or check that it is a G1 29-DoF motion")
    raw.joint_pos = raw.joint_pos[:, candidates[best]]
    raw.details["joint_order"] = f"{best}, verified by FK ({errors[best] * 1e3:.2f} mm)"
    if best != "SDK/MJCF":
        return [f"joint columns are in {best} order (detected by FK); reordered to SDK order"]
    return []


# --- resampling and derived quantities ---------------------------------------------------------------

def resample_times(num_frames: int, fps: float, rate_hz: float = CONTROL_RATE_HZ) -> np.ndarray:
    """Source-clip times of the output frames at ``rate_hz``.

    The output has round(duration * rate) intervals spread evenly over the source duration, so the
    first and last frames are exactly the source's first and last frames (the clip ends in the same
    pose). When the duration is not a multiple of the output period the clip is stretched by at most
    half a period in total (<= 0.15 % for a 6.5 s clip).
    """
    duration = (num_frames - 1) / fps
    intervals = max(1, int(round(duration * rate_hz)))
    return np.linspace(0.0, duration, intervals + 1)


def resample(raw: RawClip, fps: float, times_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(root_pos, root_quat_wxyz, joint_pos) at ``times_s``: linear, slerp for the root rotation."""
    pos = np.clip(times_s * fps, 0.0, len(raw.joint_pos) - 1)
    i0 = np.minimum(np.floor(pos).astype(np.int64), len(raw.joint_pos) - 2)
    frac = pos - i0
    i1 = i0 + 1
    f = frac[:, None]
    root_pos = (1 - f) * raw.root_pos[i0] + f * raw.root_pos[i1]
    joint_pos = (1 - f) * raw.joint_pos[i0] + f * raw.joint_pos[i1]
    quat = rotations.slerp(raw.root_quat_wxyz[i0], raw.root_quat_wxyz[i1], frac)
    return root_pos, rotations.make_continuous(quat), joint_pos


def smooth(x: np.ndarray) -> np.ndarray:
    """Light smoothing along axis 0: a [1 2 1]/4 kernel (edges repeated). Takes the edge off
    finite-difference noise of mocap without shifting or visibly lowering real velocity peaks."""
    if len(x) < 3:
        return x
    padded = np.concatenate([x[:1], x, x[-1:]])
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def velocities(root_pos, root_quat_wxyz, joint_pos, dt_s: float):
    """(joint_vel, root_lin_vel, root_ang_vel) by central differences, world frame, lightly smoothed."""
    joint_vel = smooth(np.gradient(joint_pos, dt_s, axis=0))
    root_lin_vel = smooth(np.gradient(root_pos, dt_s, axis=0))
    root_ang_vel = smooth(rotations.world_angular_velocity(root_quat_wxyz, dt_s))
    return joint_vel, root_lin_vel, root_ang_vel


# --- the whole pipeline ---------------------------------------------------------------------------

def motion_name_from_path(path: Path) -> str:
    """A library name from a file name: letters, digits, '_', '-', '.' only."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(path).stem).strip("._") or "motion"


def import_motion(path: Path, *, name: str | None = None, fps: float | None = None,
                  license: str | None = None, attribution: str | None = None,
                  kinematics: KeyBodyKinematics | None = None, sidecar: str | Path | None = None,
                  ground: bool = False) -> ImportResult:
    """Parse, validate, resample to 50 Hz and run FK on one source file. Raises MotionImportError.
    ``sidecar``: for a policy's embedded motion (.onnx), its facts YAML (g1_tracker_policy.external).
    ``ground``: flatten the stance feet and put them on the floor (:func:`ground_motion`)."""
    path = Path(path)
    parser = PARSERS.get(path.suffix.lower())
    if parser is None:
        raise MotionImportError(f"{path}: unknown file type {path.suffix!r}; supported: {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise MotionImportError(f"{path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise MotionImportError(f"{path}: zero-length clip: the file is empty")
    if size > MAX_SOURCE_BYTES:
        raise MotionImportError(f"{path}: {size / 1e6:.0f} MB is larger than the {MAX_SOURCE_BYTES / 1e6:.0f} MB limit")
    raw = parse_onnx(path, sidecar) if parser is parse_onnx else parser(path)
    source_fps, warnings = validate(raw, path, fps)
    warnings += verify_joint_order(raw, path)
    warnings += clip_joint_limits(raw)
    times = resample_times(len(raw.joint_pos), source_fps)
    root_pos, root_quat, joint_pos = resample(raw, source_fps, times)
    dt = robot.CONTROL_PERIOD_S
    joint_vel, root_lin_vel, root_ang_vel = velocities(root_pos, root_quat, joint_pos, dt)
    if raw.joint_vel is not None and source_fps == CONTROL_RATE_HZ and len(raw.joint_vel) == len(joint_pos):
        joint_vel = raw.joint_vel  # exact (what the policy observes), not re-derived
    kinematics = kinematics or KeyBodyKinematics()
    card = find_dataset_card(path)
    provenance = {
        "source_file": str(path.resolve()),
        "source_format": raw.source_format,
        "source_fps": source_fps,
        "source_frames": int(len(raw.joint_pos)),
        "license": license or card.get("license", "unknown"),
        "attribution": attribution or card.get("attribution", ""),
        "importer_version": IMPORTER_VERSION,
        "imported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "import_report": warnings,
        **raw.details,
    }
    motion = Motion(
        name=name or motion_name_from_path(path), fps=CONTROL_RATE_HZ,
        joint_pos=joint_pos, joint_vel=joint_vel, root_pos=root_pos, root_quat_wxyz=root_quat,
        root_lin_vel=root_lin_vel, root_ang_vel=root_ang_vel,
        key_body_pos=kinematics.key_body_positions(root_pos, root_quat, joint_pos),
        key_body_names=kinematics.body_names, provenance=provenance)
    motion.validate()
    if ground:
        motion = ground_motion(motion, kinematics)
        warnings += motion.provenance["grounding"]
    return ImportResult(motion, warnings)


def ground_motion(motion: Motion, kinematics: KeyBodyKinematics | None = None) -> Motion:
    """The clip with grounded feet (``motion_server.grounding``: stance soles flat and on the floor,
    only the leg joints and the root height change), velocities and key bodies recomputed; provenance
    ``grounding`` says what changed. A clip that is already grounded comes back as it is."""
    from . import grounding

    if motion.provenance.get("grounding"):
        return motion
    kinematics = kinematics or KeyBodyKinematics()
    dt = 1.0 / motion.fps
    root_pos, joint_pos, report = grounding.ground_feet(motion.root_pos, motion.root_quat_wxyz,
                                                        motion.joint_pos, dt, model=kinematics.model)
    joint_vel, root_lin_vel, _ = velocities(root_pos, motion.root_quat_wxyz, joint_pos, dt)
    out = Motion(
        name=motion.name, fps=motion.fps, joint_pos=joint_pos, joint_vel=joint_vel, root_pos=root_pos,
        root_quat_wxyz=motion.root_quat_wxyz, root_lin_vel=root_lin_vel, root_ang_vel=motion.root_ang_vel,
        key_body_pos=kinematics.key_body_positions(root_pos, motion.root_quat_wxyz, joint_pos),
        key_body_names=kinematics.body_names, provenance={**motion.provenance, "grounding": report.lines()})
    out.validate()
    return out


def find_dataset_card(path: Path, levels: int = 3) -> dict:
    """Licence and attribution from a DATASET_CARD.md / README.md up to ``levels`` folders above ``path``
    (YAML front matter ``license:``, the title and a citation ``url=``), or {} if there is none."""
    folder = Path(path).resolve().parent
    for _ in range(levels):
        for card_name in ("DATASET_CARD.md", "README.md"):
            card = folder / card_name
            if card.is_file():
                return _parse_card(card)
        folder = folder.parent
    return {}


def _parse_card(card: Path) -> dict:
    text = card.read_text(encoding="utf-8", errors="replace")[:100_000]
    out = {}
    match = re.search(r"^license:\s*(\S+)", text, re.MULTILINE)
    if match:
        out["license"] = match.group(1).strip("'\"")
    title = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    author = re.search(r"author\s*=\s*\{([^}]*)\}", text)
    url = re.search(r"url\s*=\s*\{([^}]*)\}", text)
    parts = [title.group(1).strip() if title else card.parent.name]
    if author:
        parts.append(f"by {author.group(1).strip()}")
    if url:
        parts.append(url.group(1).strip())
    out["attribution"] = ", ".join(parts) + f" (see {card.name})"
    return out
