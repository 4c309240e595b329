"""The ONE coupling point with the motion server's library format (``motion_server.motion``).

Training reads clips exactly as the motion server does: library ``.npz`` files through
``motion_server.motion.load_motion`` (validated, never pickled), raw mocap files through
``motion_server.importers.import_motion`` (same importer, same FK, same 50 Hz resampling). Clips are
then stacked into flat float32 arrays so that thousands of environments can index frames cheaply.
"""

from __future__ import annotations

import functools
import glob
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from g1_description import robot

from .config import MotionCfg


class MotionLoadError(ValueError):
    """No usable clips, or a source that is neither a motion file nor a library directory."""


@dataclass
class MotionSet:
    """All clips at the control rate, concatenated along the frame axis (float32)."""

    names: list[str]
    start: np.ndarray          # (C,) first frame of each clip in the flat arrays
    length: np.ndarray         # (C,) frames of each clip
    joint_pos: np.ndarray      # (T, 29)
    joint_vel: np.ndarray      # (T, 29)
    root_pos: np.ndarray       # (T, 3)
    root_quat_wxyz: np.ndarray  # (T, 4)
    root_lin_vel: np.ndarray   # (T, 3)
    root_ang_vel: np.ndarray   # (T, 3)
    key_body_pos: np.ndarray   # (T, K, 3)
    key_body_names: tuple[str, ...]
    provenance: list[dict]

    @property
    def num_clips(self) -> int:
        return len(self.names)

    def duration_s(self) -> np.ndarray:
        return (self.length - 1) * robot.CONTROL_PERIOD_S


_SUFFIXES = (".npz", ".csv", ".pkl", ".pickle")
#: an mjlab/holosoma policy export named as a source: the motion inside it (motion_server's importer);
#: only as an explicit file, never picked up from a directory
_POLICY_SUFFIX = ".onnx"


def _expand(sources: list[str]) -> list[Path]:
    paths: list[Path] = []
    for src in sources:
        hits = sorted(glob.glob(str(Path(src).expanduser()))) or [src]
        for h in hits:
            p = Path(h)
            if p.is_dir():  # a library directory holds .npz; a raw dataset folder holds clips below it
                npz = sorted(p.glob("*.npz"))
                paths.extend(npz if npz else sorted(q for q in p.rglob("*") if q.suffix in _SUFFIXES))
            elif p.is_file() and (p.suffix in _SUFFIXES or p.suffix == _POLICY_SUFFIX):
                paths.append(p)
            else:
                raise MotionLoadError(f"motion source {src!r}: no such file or directory")
    return paths


def _load_one(path: Path, ground: bool = False):
    """A motion_server Motion from a library file or a raw clip (imported in memory); ``ground``: with
    grounded feet (motion_server.importers.ground_motion; a no-op for clips imported grounded)."""
    from motion_server import importers
    from motion_server.motion import MotionFormatError, load_motion

    if path.suffix == ".npz":
        try:
            m = load_motion(path)
            return importers.ground_motion(m) if ground else m
        except MotionFormatError:
            pass  # not a library file: maybe a BeyondMimic/mjlab npz, which the importer reads
    return importers.import_motion(path, ground=ground).motion


def _at_control_rate(motion):
    """Frames on the 50 Hz control grid (library clips already are; others are resampled)."""
    from motion_server.motion import sample

    if abs(motion.fps - robot.CONTROL_RATE_HZ) < 1e-6:
        return motion
    n = int(np.floor(motion.duration_s * robot.CONTROL_RATE_HZ)) + 1
    fb = sample(motion, np.arange(n) * robot.CONTROL_PERIOD_S)
    motion.joint_pos, motion.joint_vel, motion.root_pos = fb.joint_pos, fb.joint_vel, fb.root_pos
    motion.root_quat_wxyz, motion.root_lin_vel, motion.root_ang_vel = fb.root_quat_wxyz, fb.root_lin_vel, fb.root_ang_vel
    motion.key_body_pos, motion.fps = fb.key_body_pos, robot.CONTROL_RATE_HZ
    return motion


STAND_START_SUFFIX = "@stand_start"
MIRROR_SUFFIX = "@mirror"


def _swap_side(name: str) -> str:
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return b + name[len(a):]
    return name


@functools.lru_cache(maxsize=1)
def mirror_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(joint permutation, joint sign, key-body permutation) of the left/right mirror about the sagittal
    plane (world y -> -y). The permutations swap ``left_``/``right_`` in g1_description's joint and key-body
    names; the sign of joint j' = mirror(j) follows from the joint axes of g1_description's model at the
    zero pose: a rotation about axis a by q mirrors to a rotation about M a (M = diag(1, -1, 1)) by -q,
    so q_j' = -(a_j' . M a_j) q_j (pitch-like axes keep the sign, roll- and yaw-like axes flip it)."""
    import mujoco

    from g1_description import mjcf

    jperm = np.array([robot.JOINT_NAMES.index(_swap_side(n)) for n in robot.JOINT_NAMES])
    kperm = np.array([robot.KEY_BODIES.index(_swap_side(n)) for n in robot.KEY_BODIES])
    model = mjcf.build_kinematic_model()
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    axes = np.array([data.xaxis[model.joint(n).id] for n in robot.JOINT_NAMES])
    m = np.array([1.0, -1.0, 1.0])
    dots = np.einsum("jk,jk->j", axes[jperm], axes * m)
    if np.any(np.abs(np.abs(dots) - 1.0) > 1e-3):
        raise ValueError(f"g1_description's joint axes are not left/right symmetric (|a_j' . M a_j| = {np.abs(dots)})")
    return jperm, -np.sign(dots), kperm


def mirror_motion(motion):
    """The clip mirrored left/right (``<name>@mirror``; mirroring twice gives the original back): world
    y -> -y for positions and linear velocities, (w, x, y, z) -> (w, -x, y, -z) for orientations,
    (x, y, z) -> (-x, y, -z) for angular velocities (pseudo-vectors), joints and key bodies swapped
    between the sides with :func:`mirror_tables`' signs."""
    import dataclasses

    jperm, jsign, kperm = mirror_tables()
    m, qm, wm = np.array([1.0, -1.0, 1.0]), np.array([1.0, -1.0, 1.0, -1.0]), np.array([-1.0, 1.0, -1.0])
    name = motion.name[:-len(MIRROR_SUFFIX)] if motion.name.endswith(MIRROR_SUFFIX) else motion.name + MIRROR_SUFFIX
    prov = dict(motion.provenance)
    prov["mirrored"] = not prov.get("mirrored", False)
    out = dataclasses.replace(
        motion, name=name, provenance=prov,
        joint_pos=np.asarray(motion.joint_pos)[:, jperm] * jsign, joint_vel=np.asarray(motion.joint_vel)[:, jperm] * jsign,
        root_pos=np.asarray(motion.root_pos) * m, root_quat_wxyz=np.asarray(motion.root_quat_wxyz) * qm,
        root_lin_vel=np.asarray(motion.root_lin_vel) * m, root_ang_vel=np.asarray(motion.root_ang_vel) * wm,
        key_body_pos=np.asarray(motion.key_body_pos)[:, kperm] * m)
    out.validate()
    return out


def time_scaled_motion(motion, speed: float):
    """The clip played ``speed`` times as fast (``<name>@x<speed>``), on the 50 Hz grid: frames sampled at
    clip times k * dt * speed (motion_server.motion.sample: linear / slerp), velocities times ``speed``."""
    import dataclasses

    from motion_server.motion import sample

    if not speed > 0:
        raise ValueError(f"env.motions.time_scales: {speed} is not a positive speed factor")
    dt = robot.CONTROL_PERIOD_S
    n = int(np.floor(motion.duration_s / speed / dt + 1e-9)) + 1
    fb = sample(motion, np.arange(n) * dt * speed)
    out = dataclasses.replace(
        motion, name=f"{motion.name}@x{speed:g}", fps=robot.CONTROL_RATE_HZ,
        provenance={**dict(motion.provenance), "time_scale": speed},
        joint_pos=fb.joint_pos, joint_vel=fb.joint_vel * speed, root_pos=fb.root_pos,
        root_quat_wxyz=fb.root_quat_wxyz, root_lin_vel=fb.root_lin_vel * speed,
        root_ang_vel=fb.root_ang_vel * speed, key_body_pos=fb.key_body_pos)
    out.validate()
    return out


def augment(motions: list, cfg: MotionCfg) -> list:
    """The clips plus their mirrors (``mirror``) and, of both, the ``time_scales`` versions."""
    out = list(motions)
    if cfg.mirror:
        out += [mirror_motion(m) for m in motions]
    base = list(out)
    for speed in cfg.time_scales:
        if abs(speed - 1.0) > 1e-9:
            out += [time_scaled_motion(m, speed) for m in base]
    return out


def stand_start_motion(motion, blend_s: float, play_s: float):
    """What the motion server publishes when ``motion`` is played from the default standing pose: the
    frames of ``motion_server.player.ReferencePlayer`` (imported, not re-implemented) at the control
    rate - the smoothstep blend-in (state BLEND_IN, zero velocity at both ends) and then the first
    ``play_s`` seconds of the clip, re-anchored to the standing robot. Frame k is the player's frame at
    t = (k + 1) dt after the play request (the "next frame" of the window of tick k), so frame 0 is
    the standing pose to within one tick of the blend."""
    import dataclasses

    from motion_server.player import Pose, ReferencePlayer

    player = ReferencePlayer(blend_in_s=blend_s)
    player.set_robot_pose(Pose.default_standing())
    player.play(motion)
    dt = robot.CONTROL_PERIOD_S
    n = int(round((blend_s + min(play_s, motion.duration_s)) / dt))
    names = ("joint_pos", "joint_vel", "root_pos", "root_quat_wxyz", "root_lin_vel", "root_ang_vel", "key_body_pos")
    frames = {k: [] for k in names}
    for i in range(n):
        w = player.window(i * dt)
        for k in names:
            frames[k].append(getattr(w, k)[0])
    out = dataclasses.replace(motion, name=motion.name + STAND_START_SUFFIX, fps=robot.CONTROL_RATE_HZ,
                              provenance={**dict(motion.provenance), "stand_start": {"blend_s": blend_s,
                                                                                    "play_s": play_s}},
                              **{k: np.asarray(v, dtype=np.float64) for k, v in frames.items()})
    out.validate()
    return out


SPLITS = ("train", "heldout", "all")


def load_motion_set(cfg: MotionCfg, min_frames: int = 10, split: str = "train",
                    augmented: bool = True) -> MotionSet:
    """The clips of ``cfg.sources`` (after ``names`` / ``max_clips``) of one split: ``train`` = all but
    ``cfg.heldout``, ``heldout`` = only those, ``all``. ``augmented``: add mirrored / time-scaled /
    stand-start versions as configured (training); evaluation loads the clips as they are."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: expected one of {SPLITS}")
    paths = _expand(list(cfg.sources))
    if not paths:
        raise MotionLoadError("no motion sources given: set env.motions.sources in the config "
                              "(library .npz files/directories or raw clips)")
    motions = []
    for p in paths:
        m = _at_control_rate(_load_one(p, cfg.ground_feet))
        if cfg.names and not any(n in m.name for n in cfg.names):
            continue
        if (split == "train" and m.name in cfg.heldout) or (split == "heldout" and m.name not in cfg.heldout):
            continue
        if m.num_frames < min_frames:
            continue
        if tuple(m.key_body_names) != tuple(robot.KEY_BODIES):
            raise MotionLoadError(f"motion {m.name!r} ({p}): key bodies {m.key_body_names} are not "
                                  f"g1_description.robot.KEY_BODIES; re-import it")
        motions.append(m)
        if cfg.max_clips and len(motions) >= cfg.max_clips:
            break
    if not motions:
        raise MotionLoadError(f"no usable clips among {len(paths)} files (filter names={cfg.names}, "
                              f"split {split}, heldout={cfg.heldout})")
    if split == "heldout":
        missing = sorted(set(cfg.heldout) - {m.name for m in motions})
        if missing and not (cfg.max_clips or cfg.names):
            raise MotionLoadError(f"env.motions.heldout names clips that are not in the sources: {missing}")
    if augmented:
        originals = list(motions)
        motions = augment(motions, cfg)
        if cfg.stand_start_s > 0:
            motions += [stand_start_motion(m, cfg.stand_start_blend_s, cfg.stand_start_s) for m in originals]
    lengths = np.array([m.num_frames for m in motions])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])

    def cat(attr):
        return np.concatenate([np.asarray(getattr(m, attr), dtype=np.float32) for m in motions])

    return MotionSet(names=[m.name for m in motions], start=starts, length=lengths,
                     joint_pos=cat("joint_pos"), joint_vel=cat("joint_vel"), root_pos=cat("root_pos"),
                     root_quat_wxyz=cat("root_quat_wxyz"), root_lin_vel=cat("root_lin_vel"),
                     root_ang_vel=cat("root_ang_vel"), key_body_pos=cat("key_body_pos"),
                     key_body_names=tuple(robot.KEY_BODIES), provenance=[dict(m.provenance) for m in motions])
