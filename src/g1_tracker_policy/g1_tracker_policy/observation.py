"""THE observation builder of the G1 tracker: plain numpy, no ROS, shared by deployment and training.

The policy node (one robot, batch 1) and the training workspace (thousands of parallel environments)
import this module, so the observation a policy was trained on is, by construction, the one it sees
on the robot. Every term function works on arrays with a leading batch axis ``N``; the single-robot
:class:`ObservationBuilder` is a thin wrapper with N = 1 that also keeps the proprioception history.

Layout of the flat observation vector (float32), ``D = H * P + F * R``::

    [ proprio(t), proprio(t-1), ..., proprio(t-H+1),        # history block, newest first, H x P
      ref(frame 0 = next), ref(future 1), ..., ref(F-1) ]   # reference block, frame-major, F x R

``P`` is the sum of the proprioception term sizes, ``R`` the sum of the reference term sizes, and
``F = 1 + len(future_offsets)``. Each term is multiplied by its scale and the whole vector clipped to
``[-clip, clip]``. :meth:`ObservationConfig.layout` gives names, sizes, scales and slices.

Terms (sizes for the 29-DoF G1, K key bodies):

proprioception (robot state at tick t)
    ``base_ang_vel`` 3        pelvis angular velocity, body frame (rad/s), from the IMU gyro
    ``projected_gravity`` 3   unit gravity vector in the body frame (IMU orientation)
    ``roll_pitch`` 2          pelvis roll, pitch (rad) - an alternative to projected_gravity
    ``joint_pos_rel`` 29      q - default pose (rad), SDK order
    ``joint_vel`` 29          dq (rad/s)
    ``last_action`` 29        the action of the previous tick (policy output units, before scale)

reference (per frame, expressed in the robot's heading frame: world rotated by -robot yaw)
    ``ref_root_height`` 1     reference pelvis height above the ground (m)
    ``ref_roll_pitch`` 2      reference pelvis roll, pitch (rad), yaw-free by construction
    ``ref_lin_vel_heading`` 3 reference pelvis linear velocity in the heading frame (m/s)
    ``ref_yaw_rate`` 1        reference pelvis yaw rate (rad/s, world z)
    ``ref_heading_error`` 2   sin, cos of (reference yaw - robot yaw)  (optional)
    ``ref_root_pos_xy`` 2     reference pelvis x, y minus the robot's, robot heading frame (m)  (optional;
                              needs the robot's world position: odometry in the graph, a state
                              estimator on the robot; without it the policy drifts off the clip)
    ``ref_joint_pos`` 29      reference joint positions (rad)
    ``ref_joint_pos_rel`` 29  reference joint positions - default pose (rad)  (alternative)
    ``ref_key_body_pos`` 3K   key bodies relative to the reference pelvis, reference heading frame (m)

Heading frame: yaw is unobservable to the robot (the IMU yaw drifts and the clip is re-anchored at
start), so nothing in the observation depends on the world yaw; rotating the whole world about z
leaves the observation unchanged (tested). ``ref_root_pos_xy`` is a difference of positions, so
translating the whole world leaves it unchanged too.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Mapping, Sequence

import numpy as np

from g1_description import robot

try:  # the default offsets live with the motion server; fall back when it is not installed (training)
    from motion_server.reference import DEFAULT_FUTURE_OFFSETS
except ImportError:  # pragma: no cover
    DEFAULT_FUTURE_OFFSETS = (1,) + tuple(range(5, 101, 5))

OBSERVATION_SCHEMA_VERSION = 1

NJ = robot.NUM_JOINTS

# --- term registry: name -> size (key-body term size depends on the number of key bodies) ----------
PROPRIO_TERM_SIZES: dict[str, int] = {
    "base_ang_vel": 3,
    "projected_gravity": 3,
    "roll_pitch": 2,
    "joint_pos_rel": NJ,
    "joint_vel": NJ,
    "last_action": NJ,
}
REFERENCE_TERM_SIZES: dict[str, int] = {
    "ref_root_height": 1,
    "ref_roll_pitch": 2,
    "ref_lin_vel_heading": 3,
    "ref_yaw_rate": 1,
    "ref_heading_error": 2,
    "ref_root_pos_xy": 2,
    "ref_joint_pos": NJ,
    "ref_joint_pos_rel": NJ,
    "ref_key_body_pos": -1,  # 3 * len(key_body_names)
}

#: Default scales (the usual legged-gym/GMT normalisation): velocities are shrunk to O(1).
DEFAULT_SCALES: dict[str, float] = {
    "base_ang_vel": 0.25,
    "projected_gravity": 1.0,
    "roll_pitch": 1.0,
    "joint_pos_rel": 1.0,
    "joint_vel": 0.05,
    "last_action": 1.0,
    "ref_root_height": 1.0,
    "ref_roll_pitch": 1.0,
    "ref_lin_vel_heading": 1.0,
    "ref_yaw_rate": 0.25,
    "ref_heading_error": 1.0,
    "ref_root_pos_xy": 1.0,
    "ref_joint_pos": 1.0,
    "ref_joint_pos_rel": 1.0,
    "ref_key_body_pos": 1.0,
}


class ObservationError(ValueError):
    """An observation config or input that cannot be used (unknown term, wrong shape, ...)."""


@dataclass(frozen=True)
class TermSlice:
    """Where one term of one history step / reference frame sits in the flat vector."""

    name: str
    block: str          # "proprio" or "reference"
    index: int          # history step (0 = newest) or reference frame (0 = next frame)
    start: int
    size: int
    scale: float

    @property
    def slice(self) -> slice:
        return slice(self.start, self.start + self.size)


@dataclass(frozen=True)
class ObservationLayout:
    """Names, sizes and slices of the flat observation (see the module docstring)."""

    proprio_terms: tuple[tuple[str, int], ...]
    reference_terms: tuple[tuple[str, int], ...]
    history_length: int
    num_reference_frames: int
    proprio_frame_size: int
    reference_frame_size: int
    size: int
    terms: tuple[TermSlice, ...]

    @property
    def proprio_slice(self) -> slice:
        return slice(0, self.history_length * self.proprio_frame_size)

    @property
    def reference_slice(self) -> slice:
        return slice(self.proprio_slice.stop, self.size)

    def find(self, name: str, index: int = 0) -> TermSlice:
        for t in self.terms:
            if t.name == name and t.index == index:
                return t
        raise KeyError(f"observation layout has no term {name!r} at index {index}")

    def to_dict(self) -> dict:
        return {
            "size": self.size,
            "history_length": self.history_length,
            "num_reference_frames": self.num_reference_frames,
            "proprio_frame_size": self.proprio_frame_size,
            "reference_frame_size": self.reference_frame_size,
            "proprio_terms": [list(t) for t in self.proprio_terms],
            "reference_terms": [list(t) for t in self.reference_terms],
        }


@dataclass(frozen=True)
class ObservationConfig:
    """The observation definition; serialised verbatim into a policy artifact's metadata."""

    proprio_terms: tuple[str, ...] = ("base_ang_vel", "projected_gravity", "joint_pos_rel", "joint_vel",
                                      "last_action")
    history_length: int = 5
    reference_terms: tuple[str, ...] = ("ref_root_height", "ref_roll_pitch", "ref_lin_vel_heading",
                                        "ref_yaw_rate", "ref_joint_pos")
    #: control periods after the current clip time of the future frames (frame 0 is always next)
    future_offsets: tuple[int, ...] = tuple(DEFAULT_FUTURE_OFFSETS)
    key_body_names: tuple[str, ...] = robot.KEY_BODIES
    scales: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_SCALES))
    clip: float = 100.0
    joint_names: tuple[str, ...] = robot.JOINT_NAMES
    default_joint_pos: tuple[float, ...] = tuple(float(x) for x in robot.DEFAULT_JOINT_POS)
    version: int = OBSERVATION_SCHEMA_VERSION

    def __post_init__(self):
        for name in self.proprio_terms:
            if name not in PROPRIO_TERM_SIZES:
                raise ObservationError(f"observation config: unknown proprioception term {name!r} "
                                       f"(known: {sorted(PROPRIO_TERM_SIZES)})")
        for name in self.reference_terms:
            if name not in REFERENCE_TERM_SIZES:
                raise ObservationError(f"observation config: unknown reference term {name!r} "
                                       f"(known: {sorted(REFERENCE_TERM_SIZES)})")
        for terms in (self.proprio_terms, self.reference_terms):
            if len(set(terms)) != len(terms):
                raise ObservationError(f"observation config: duplicate terms in {terms}")
        if self.history_length < 1:
            raise ObservationError(f"observation config: history_length must be >= 1, got {self.history_length}")
        if any(int(o) < 1 for o in self.future_offsets):
            raise ObservationError(f"observation config: future_offsets must be >= 1, got {self.future_offsets}")
        if len(self.joint_names) != NJ or len(self.default_joint_pos) != NJ:
            raise ObservationError(f"observation config: expected {NJ} joint names and default positions")
        missing = [t for t in (*self.proprio_terms, *self.reference_terms) if t not in self.scales]
        if missing:
            raise ObservationError(f"observation config: no scale for terms {missing}")
        # keep only the scales of the terms in use: two configs that observe the same thing compare equal
        used = {t: float(self.scales[t]) for t in (*self.proprio_terms, *self.reference_terms)}
        object.__setattr__(self, "scales", used)
        object.__setattr__(self, "future_offsets", tuple(int(o) for o in self.future_offsets))

    # --- sizes -----------------------------------------------------------------------------------
    @property
    def needs_odometry(self) -> bool:
        """True when a term needs the robot's world position (:data:`ODOMETRY_TERMS`)."""
        return any(t in ODOMETRY_TERMS for t in (*self.proprio_terms, *self.reference_terms))

    def term_size(self, name: str) -> int:
        if name == "ref_key_body_pos":
            return 3 * len(self.key_body_names)
        return PROPRIO_TERM_SIZES.get(name) or REFERENCE_TERM_SIZES[name]

    @property
    def num_reference_frames(self) -> int:
        return 1 + len(self.future_offsets)

    @property
    def proprio_frame_size(self) -> int:
        return sum(self.term_size(t) for t in self.proprio_terms)

    @property
    def reference_frame_size(self) -> int:
        return sum(self.term_size(t) for t in self.reference_terms)

    @property
    def size(self) -> int:
        return self.history_length * self.proprio_frame_size + self.num_reference_frames * self.reference_frame_size

    def layout(self) -> ObservationLayout:
        terms: list[TermSlice] = []
        start = 0
        for h in range(self.history_length):
            for name in self.proprio_terms:
                n = self.term_size(name)
                terms.append(TermSlice(name, "proprio", h, start, n, float(self.scales[name])))
                start += n
        for f in range(self.num_reference_frames):
            for name in self.reference_terms:
                n = self.term_size(name)
                terms.append(TermSlice(name, "reference", f, start, n, float(self.scales[name])))
                start += n
        assert start == self.size
        return ObservationLayout(
            proprio_terms=tuple((t, self.term_size(t)) for t in self.proprio_terms),
            reference_terms=tuple((t, self.term_size(t)) for t in self.reference_terms),
            history_length=self.history_length,
            num_reference_frames=self.num_reference_frames,
            proprio_frame_size=self.proprio_frame_size,
            reference_frame_size=self.reference_frame_size,
            size=self.size,
            terms=tuple(terms),
        )

    # --- (de)serialisation: the artifact carries this dict --------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["layout"] = self.layout().to_dict()
        return json.loads(json.dumps(d))  # tuples -> lists: exactly what a JSON round trip gives

    @classmethod
    def from_dict(cls, d: Mapping) -> "ObservationConfig":
        known = {"proprio_terms", "history_length", "reference_terms", "future_offsets", "key_body_names",
                 "scales", "clip", "joint_names", "default_joint_pos", "version"}
        missing = sorted(known - set(d))
        if missing:
            raise ObservationError(f"observation config: missing fields {missing}")
        if int(d["version"]) != OBSERVATION_SCHEMA_VERSION:
            raise ObservationError(f"observation config: schema version {d['version']} is not the supported "
                                   f"{OBSERVATION_SCHEMA_VERSION}")
        cfg = cls(
            proprio_terms=tuple(d["proprio_terms"]), history_length=int(d["history_length"]),
            reference_terms=tuple(d["reference_terms"]), future_offsets=tuple(int(o) for o in d["future_offsets"]),
            key_body_names=tuple(d["key_body_names"]), scales={k: float(v) for k, v in d["scales"].items()},
            clip=float(d["clip"]), joint_names=tuple(d["joint_names"]),
            default_joint_pos=tuple(float(x) for x in d["default_joint_pos"]), version=int(d["version"]))
        if "layout" in d and int(d["layout"]["size"]) != cfg.size:
            raise ObservationError(f"observation config: stored layout size {d['layout']['size']} disagrees "
                                   f"with the size {cfg.size} its terms give")
        return cfg


# --- rotations (batched, wxyz quaternions) ---------------------------------------------------------

def quat_to_rotmat(quat_wxyz: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions -> (..., 3, 3) rotation matrices (body -> world)."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    if q.shape == (4,):  # one quaternion (every tick of the node, every expert label): the same formula on
        w, x, y, z = q.tolist()  # Python floats, without numpy's per-call overhead - identical results
        return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                         [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                         [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def yaw_from_quat(quat_wxyz: np.ndarray) -> np.ndarray:
    """Heading (rad) of the body x axis projected on the ground plane, (...,)."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))


def roll_pitch_from_quat(quat_wxyz: np.ndarray) -> np.ndarray:
    """ZYX Euler roll and pitch (rad), (..., 2); independent of yaw by construction."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    roll = np.arctan2(2 * (w * x + y * z), 1 - 2 * (x * x + y * y))
    pitch = np.arcsin(np.clip(2 * (w * y - z * x), -1.0, 1.0))
    return np.stack([roll, pitch], -1)


def projected_gravity_from_quat(quat_wxyz: np.ndarray) -> np.ndarray:
    """Unit gravity (0, 0, -1) expressed in the body frame, (..., 3)."""
    q = np.asarray(quat_wxyz, dtype=np.float64)
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    # R^T @ (0, 0, -1) = -(third row of R), written out (this runs every tick)
    out = np.empty(q.shape[:-1] + (3,))
    out[..., 0] = -2 * (x * z - w * y)
    out[..., 1] = -2 * (y * z + w * x)
    out[..., 2] = -(1 - 2 * (x * x + y * y))
    return out


def rotate_by_yaw(vec_xyz: np.ndarray, yaw_rad: np.ndarray) -> np.ndarray:
    """Rotate (..., 3) vectors by -yaw about z: world -> heading frame. ``yaw_rad`` broadcasts on (...)."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    x, y, z = vec_xyz[..., 0], vec_xyz[..., 1], vec_xyz[..., 2]
    return np.stack([c * x + s * y, -s * x + c * y, z], -1)


# --- term functions: batched over a leading axis N ---------------------------------------------------

def proprio_frame(cfg: ObservationConfig, *, base_quat_wxyz: np.ndarray, base_ang_vel_body: np.ndarray,
                  joint_pos: np.ndarray, joint_vel: np.ndarray, last_action: np.ndarray) -> np.ndarray:
    """One proprioception frame, scaled: (N, P). Inputs (N,4), (N,3), (N,29), (N,29), (N,29)."""
    default = np.asarray(cfg.default_joint_pos)
    parts = []
    for name in cfg.proprio_terms:
        if name == "base_ang_vel":
            v = base_ang_vel_body
        elif name == "projected_gravity":
            v = projected_gravity_from_quat(base_quat_wxyz)
        elif name == "roll_pitch":
            v = roll_pitch_from_quat(base_quat_wxyz)
        elif name == "joint_pos_rel":
            v = joint_pos - default
        elif name == "joint_vel":
            v = joint_vel
        else:  # last_action
            v = last_action
        parts.append(np.asarray(v, dtype=np.float64) * cfg.scales[name])
    return np.concatenate(parts, -1)


#: Reference terms that depend on the robot's own heading (everything else depends on the window only).
ROBOT_DEPENDENT_REFERENCE_TERMS = ("ref_lin_vel_heading", "ref_heading_error", "ref_root_pos_xy")
#: Terms that need the robot's world position (odometry: simulator ground truth, or a state estimator).
ODOMETRY_TERMS = ("ref_root_pos_xy",)


def reference_static_terms(cfg: ObservationConfig, *, ref_root_pos: np.ndarray, ref_root_quat_wxyz: np.ndarray,
                           ref_root_ang_vel: np.ndarray, ref_joint_pos: np.ndarray,
                           ref_key_body_pos: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The reference terms that depend on the window alone, scaled, name -> (N, F, k). The policy node
    computes them when a window arrives, off the tick's critical path; :func:`reference_frames`
    computes them itself when not given, so both paths run the same operations."""
    n, f = ref_root_pos.shape[:2]
    if f != cfg.num_reference_frames:
        raise ObservationError(f"reference window has {f} frames, the observation config expects "
                               f"{cfg.num_reference_frames} (1 + {len(cfg.future_offsets)} future offsets)")
    out = {}
    for name in cfg.reference_terms:
        if name == "ref_root_height":
            v = ref_root_pos[..., 2:3]
        elif name == "ref_roll_pitch":
            v = roll_pitch_from_quat(ref_root_quat_wxyz)
        elif name == "ref_yaw_rate":
            v = ref_root_ang_vel[..., 2:3]
        elif name == "ref_joint_pos":
            v = ref_joint_pos
        elif name == "ref_joint_pos_rel":
            v = ref_joint_pos - np.asarray(cfg.default_joint_pos)
        elif name == "ref_key_body_pos":  # relative to the reference pelvis, in the reference heading frame
            if ref_key_body_pos is None:
                raise ObservationError("observation term ref_key_body_pos needs the reference key body positions")
            rel = ref_key_body_pos - ref_root_pos[:, :, None, :]
            v = rotate_by_yaw(rel, yaw_from_quat(ref_root_quat_wxyz)[:, :, None]).reshape(n, f, -1)
        else:
            continue  # robot-dependent: computed per tick
        out[name] = np.asarray(v, dtype=np.float64) * cfg.scales[name]
    return out


def reference_frames(cfg: ObservationConfig, *, robot_quat_wxyz: np.ndarray, ref_root_pos: np.ndarray,
                     ref_root_quat_wxyz: np.ndarray, ref_root_lin_vel: np.ndarray, ref_root_ang_vel: np.ndarray,
                     ref_joint_pos: np.ndarray, ref_key_body_pos: np.ndarray | None = None,
                     static: dict[str, np.ndarray] | None = None,
                     robot_pos_world: np.ndarray | None = None) -> np.ndarray:
    """The reference block, scaled: (N, F*R). Reference arrays are (N, F, ...), world frame.
    ``static``: :func:`reference_static_terms` of the same window, if already computed.
    ``robot_pos_world``: (N, 3) pelvis position, for the terms of :data:`ODOMETRY_TERMS`."""
    if static is None:
        static = reference_static_terms(cfg, ref_root_pos=ref_root_pos, ref_root_quat_wxyz=ref_root_quat_wxyz,
                                        ref_root_ang_vel=ref_root_ang_vel, ref_joint_pos=ref_joint_pos,
                                        ref_key_body_pos=ref_key_body_pos)
    robot_yaw = None
    parts = []
    for name in cfg.reference_terms:
        if name in static:
            parts.append(static[name])
            continue
        if robot_yaw is None:
            robot_yaw = yaw_from_quat(robot_quat_wxyz)[:, None]          # (N, 1): broadcasts over frames
        if name == "ref_lin_vel_heading":
            v = rotate_by_yaw(ref_root_lin_vel, robot_yaw)
        elif name == "ref_root_pos_xy":
            if robot_pos_world is None:
                raise ObservationError("observation term ref_root_pos_xy needs the robot's world position "
                                       "(odometry), and none was given")
            rel = np.asarray(ref_root_pos, dtype=np.float64) - np.asarray(robot_pos_world, dtype=np.float64)[:, None, :]
            v = rotate_by_yaw(rel, robot_yaw)[..., :2]
        else:  # ref_heading_error
            err = yaw_from_quat(ref_root_quat_wxyz) - robot_yaw
            v = np.stack([np.sin(err), np.cos(err)], -1)
        parts.append(np.asarray(v, dtype=np.float64) * cfg.scales[name])
    return np.concatenate(parts, -1).reshape(ref_root_pos.shape[0], -1)


def assemble(cfg: ObservationConfig, proprio_history: np.ndarray, reference_block: np.ndarray) -> np.ndarray:
    """Flat observation (N, D) float32 from the history (N, H, P), newest first, and (N, F*R)."""
    n = proprio_history.shape[0]
    obs = np.concatenate([proprio_history.reshape(n, -1), reference_block], -1)
    return np.clip(obs, -cfg.clip, cfg.clip).astype(np.float32)


class ProprioHistory:
    """Rolling history of proprioception frames for N environments, (N, H, P), newest first.

    ``reset(mask)`` fills the selected environments' history with their next frame (at episode start
    in training, at motion start on the robot), so that the first observation is not full of zeros.
    """

    def __init__(self, cfg: ObservationConfig, num_envs: int = 1):
        self.cfg = cfg
        self.buffer = np.zeros((num_envs, cfg.history_length, cfg.proprio_frame_size))
        self._needs_fill = np.ones(num_envs, dtype=bool)

    def reset(self, mask: np.ndarray | None = None) -> None:
        if mask is None:
            self._needs_fill[:] = True
        else:
            self._needs_fill[np.asarray(mask, dtype=bool)] = True

    def push(self, frame: np.ndarray) -> np.ndarray:
        self.buffer[:, 1:] = self.buffer[:, :-1].copy()
        self.buffer[:, 0] = frame
        fill = self._needs_fill
        if fill.any():
            self.buffer[fill] = frame[fill, None, :]
            self._needs_fill[:] = False
        return self.buffer


def compute_observation(cfg: ObservationConfig, history: ProprioHistory, *, base_quat_wxyz, base_ang_vel_body,
                        joint_pos, joint_vel, last_action, ref_root_pos, ref_root_quat_wxyz, ref_root_lin_vel,
                        ref_root_ang_vel, ref_joint_pos, ref_key_body_pos=None, reference_static=None,
                        base_pos_world=None) -> np.ndarray:
    """One step for N environments: push the proprio frame into ``history`` and return (N, D) float32.
    ``reference_static``: precomputed :func:`reference_static_terms` of this reference (optional);
    ``base_pos_world``: (N, 3) pelvis position (odometry), needed by :data:`ODOMETRY_TERMS` only."""
    frame = proprio_frame(cfg, base_quat_wxyz=base_quat_wxyz, base_ang_vel_body=base_ang_vel_body,
                          joint_pos=joint_pos, joint_vel=joint_vel, last_action=last_action)
    hist = history.push(frame)
    ref = reference_frames(cfg, robot_quat_wxyz=base_quat_wxyz, ref_root_pos=ref_root_pos,
                           ref_root_quat_wxyz=ref_root_quat_wxyz, ref_root_lin_vel=ref_root_lin_vel,
                           ref_root_ang_vel=ref_root_ang_vel, ref_joint_pos=ref_joint_pos,
                           ref_key_body_pos=ref_key_body_pos, static=reference_static,
                           robot_pos_world=base_pos_world)
    return assemble(cfg, hist, ref)


PREPARED_WINDOWS = 3


class ObservationBuilder:
    """Single robot (N = 1): what the policy node calls once per tick."""

    def __init__(self, cfg: ObservationConfig):
        self.cfg = cfg
        self.history = ProprioHistory(cfg, 1)
        self._key_body_index: np.ndarray | None = None
        self._key_body_source: tuple[str, ...] | None = None
        self._prepared: tuple = ()

    def reset(self) -> None:
        self.history.reset()

    def prepare(self, window) -> None:
        """Compute the window-only reference terms now (when the window arrives), so that ``build`` on
        the same window object only computes what depends on the robot. Optional: ``build`` computes
        them itself otherwise, with the same operations (bit-identical observations either way)."""
        self._check_offsets(window)
        static = reference_static_terms(
            self.cfg, ref_root_pos=window.root_pos[None], ref_root_quat_wxyz=window.root_quat_wxyz[None],
            ref_root_ang_vel=window.root_ang_vel[None], ref_joint_pos=window.joint_pos[None],
            ref_key_body_pos=self._key_bodies(window))
        # a tuple replaced whole (read atomically by a tick in another thread); the last few windows,
        # since in lockstep the next tick's window often arrives before this tick runs
        self._prepared = ((window, static),) + self._prepared[:PREPARED_WINDOWS - 1]

    def _check_offsets(self, window) -> None:
        if tuple(window.future_offsets) != tuple(self.cfg.future_offsets):
            raise ObservationError(f"reference window future_offsets {list(window.future_offsets)} differ from "
                                   f"the policy's {list(self.cfg.future_offsets)}")

    def _key_bodies(self, window) -> np.ndarray | None:
        if "ref_key_body_pos" not in self.cfg.reference_terms:
            return None
        if self._key_body_source != tuple(window.key_body_names):
            missing = [b for b in self.cfg.key_body_names if b not in window.key_body_names]
            if missing:
                raise ObservationError(f"reference window lacks key bodies {missing} the policy observes")
            self._key_body_index = np.array([window.key_body_names.index(b) for b in self.cfg.key_body_names])
            self._key_body_source = tuple(window.key_body_names)
        return window.key_body_pos[None, :, self._key_body_index]

    def build(self, *, base_quat_wxyz: Sequence[float], base_ang_vel_body: Sequence[float],
              joint_pos: Sequence[float], joint_vel: Sequence[float], last_action: Sequence[float],
              window, base_pos_world: Sequence[float] | None = None) -> np.ndarray:
        """Flat observation (D,) float32. ``window`` is a motion_server ReferenceWindowData;
        ``base_pos_world`` the pelvis position (odometry), for configs that observe it."""
        static = next((st for w, st in self._prepared if w is window), None)
        if static is None:
            self._check_offsets(window)
        obs = compute_observation(
            self.cfg, self.history,
            base_quat_wxyz=np.asarray(base_quat_wxyz, dtype=np.float64)[None],
            base_ang_vel_body=np.asarray(base_ang_vel_body, dtype=np.float64)[None],
            joint_pos=np.asarray(joint_pos, dtype=np.float64)[None],
            joint_vel=np.asarray(joint_vel, dtype=np.float64)[None],
            last_action=np.asarray(last_action, dtype=np.float64)[None],
            ref_root_pos=window.root_pos[None], ref_root_quat_wxyz=window.root_quat_wxyz[None],
            ref_root_lin_vel=window.root_lin_vel[None], ref_root_ang_vel=window.root_ang_vel[None],
            ref_joint_pos=window.joint_pos[None],
            ref_key_body_pos=None if static is not None else self._key_bodies(window), reference_static=static,
            base_pos_world=None if base_pos_world is None else np.asarray(base_pos_world, dtype=np.float64)[None])
        return obs[0]
