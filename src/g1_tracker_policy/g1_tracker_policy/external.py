"""Policies trained elsewhere: mjlab / BeyondMimic tracking exports and holosoma whole-body-tracking
exports, run UNCHANGED behind the same controller interface, safety machine and graph as our own.

No ROS here. This module reads such an ONNX file's own metadata, decides which exporter wrote it
(:func:`detect_format`), and turns it into an :class:`ExternalArtifact`: the facts the robot must
agree with, mapped BY NAME onto the G1 SDK joint order (``g1_description.robot``). Nothing is guessed:
a fact the file does not carry (holosoma's FastSAC export has no action scale, no default pose and no
observation list) must come from a sidecar YAML (``<policy>.g1.yaml`` next to the ONNX, or a path
given explicitly), else the artifact is refused with a :class:`~g1_tracker_policy.contract.ContractError`
naming the missing field. See README "Policies trained elsewhere" for the formats and the sidecar.

Both formats carry their motion inside the model: ``time_step`` (float, [1, 1]) in, the reference at
that step out (mjlab: ``joint_pos``, ``joint_vel``, ``body_pos_w``, ``body_quat_w`` wxyz, ...;
holosoma: ``joint_pos``, ``joint_vel``, ``ref_pos_xyz``, ``ref_quat_xyzw`` of the torso). The actions
do not depend on ``time_step`` (checked at load); :func:`embedded_motion` runs the model over every
step once, so motion_server can stream that reference like any library clip.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from g1_description import robot
from g1_tracker_policy import contract as c

FORMAT_G1 = "g1"
FORMAT_MJLAB = "mjlab"
FORMAT_HOLOSOMA = "holosoma"
EXTERNAL_FORMATS = (FORMAT_MJLAB, FORMAT_HOLOSOMA)

SIDECAR_SUFFIX = ".g1.yaml"
INPUT_TIME_STEP = "time_step"
OUTPUT_ACTIONS = "actions"

#: Observation terms each format may use, with their sizes (29-DoF G1). Their definitions are in
#: :mod:`g1_tracker_policy.external_controller`; anything else is refused by name.
TERM_SIZES = {
    FORMAT_MJLAB: {"command": 58, "motion_anchor_pos_b": 3, "motion_anchor_ori_b": 6, "base_lin_vel": 3,
                   "base_ang_vel": 3, "projected_gravity": 3, "joint_pos": 29, "joint_vel": 29, "actions": 29},
    FORMAT_HOLOSOMA: {"motion_command": 58, "motion_ref_pos_b": 3, "motion_ref_ori_b": 6, "base_lin_vel": 3,
                      "base_ang_vel": 3, "projected_gravity": 3, "dof_pos": 29, "dof_vel": 29, "actions": 29},
}
#: Terms that need the robot's world position / linear velocity (an odometry source, see the node).
POSITION_TERMS = ("motion_anchor_pos_b", "motion_ref_pos_b")
LINEAR_VELOCITY_TERMS = ("base_lin_vel",)
#: Where ``base_lin_vel`` comes from: "zero" (the real G1 has no linear-velocity sensor) or "odometry"
#: (the node's odometry topic: ground truth in simulation, a state estimator on the robot).
BASE_LIN_VEL_SOURCES = ("zero", "odometry")

#: Longest embedded motion read out of a model (100k steps = 33 min at 50 Hz).
MAX_EMBEDDED_STEPS = 100_000
#: Holosoma's per-joint action scale rule: factor * effort_limit / kp (``action_scales_by_effort_limit_over_p_gain``).
RULE_EFFORT_OVER_KP = "effort_limit_over_kp"


@dataclass
class JointMap:
    """The artifact's joint order <-> the G1 SDK order, built from names only."""

    names: tuple[str, ...]          # the artifact's order
    sdk_index: np.ndarray            # artifact position i holds SDK joint sdk_index[i]

    @classmethod
    def from_names(cls, names: Sequence[str], field_name: str = "joint_names") -> "JointMap":
        names = tuple(str(n) for n in names)
        unknown = [n for n in names if n not in robot.JOINT_INDEX]
        if unknown:
            raise c.ContractError(field_name, f"joints {unknown[:4]} are not G1 joints (expected names such as "
                                  f"{robot.JOINT_NAMES[0]!r})")
        if len(set(names)) != len(names):
            raise c.ContractError(field_name, "duplicate joint names")
        missing = [n for n in robot.JOINT_NAMES if n not in names]
        if missing:
            raise c.ContractError(field_name, f"{len(names)} joints; the G1 joints {missing[:4]} are missing "
                                  "(a 29-DoF G1 policy is needed)")
        return cls(names, np.array([robot.JOINT_INDEX[n] for n in names]))

    def to_sdk(self, values_theirs: np.ndarray) -> np.ndarray:
        """(..., 29) in the artifact's order -> SDK order."""
        v = np.asarray(values_theirs, dtype=np.float64)
        out = np.empty_like(v)
        out[..., self.sdk_index] = v
        return out

    def from_sdk(self, values_sdk: np.ndarray) -> np.ndarray:
        """(..., 29) in SDK order -> the artifact's order."""
        return np.asarray(values_sdk, dtype=np.float64)[..., self.sdk_index]


@dataclass
class ExternalArtifact:
    """A checked policy from another framework; every per-joint array is in SDK order."""

    path: Path
    format: str
    joints: JointMap
    kp: np.ndarray
    kd: np.ndarray
    default_joint_pos: np.ndarray
    action_scale: np.ndarray
    observation_terms: tuple[tuple[str, int], ...]   # in the model's input order
    history_length: int
    obs_size: int
    anchor_body: str
    action_clip: float | None
    base_lin_vel_source: str
    motion_outputs: tuple[str, ...]
    control_rate_hz: float
    provenance: dict = field(default_factory=dict)
    facts_from: dict = field(default_factory=dict)    # fact -> "metadata" | "sidecar <path>"

    @property
    def name(self) -> str:
        return str(self.provenance.get("name") or self.path.stem)

    @property
    def needs_base_position(self) -> bool:
        return any(t in POSITION_TERMS for t, _ in self.observation_terms)

    @property
    def needs_odometry(self) -> bool:
        return self.needs_base_position or (self.base_lin_vel_source == "odometry" and any(
            t in LINEAR_VELOCITY_TERMS for t, _ in self.observation_terms))

    def action_to_target(self, action_theirs: np.ndarray) -> np.ndarray:
        """SDK-order joint targets from a raw action in the artifact's order: default + scale * action."""
        return self.default_joint_pos + self.action_scale * self.joints.to_sdk(action_theirs)

    def target_to_action(self, target_sdk: np.ndarray) -> np.ndarray:
        """The raw action (SDK order) that would command ``target_sdk``."""
        return (np.asarray(target_sdk, dtype=np.float64) - self.default_joint_pos) / self.action_scale

    def describe(self) -> dict:
        return {"path": str(self.path), "format": self.format, "name": self.name,
                "observation": [f"{n}({s})" for n, s in self.observation_terms], "observation_size": self.obs_size,
                "history_length": self.history_length, "anchor_body": self.anchor_body,
                "base_lin_vel": self.base_lin_vel_source if any(
                    t in LINEAR_VELOCITY_TERMS for t, _ in self.observation_terms) else "not observed",
                "needs_odometry": self.needs_odometry, "action_clip": self.action_clip,
                "joint_order": "SDK" if tuple(self.joints.names) == robot.JOINT_NAMES else "own (mapped by name)",
                "facts_from": self.facts_from, "provenance": self.provenance}


# --- reading ------------------------------------------------------------------------------------------

def raw_metadata(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    """(onnx model, metadata_props as a plain dict of strings); ContractError if not a readable ONNX file."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise c.ContractError("path", f"no policy file at {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a policy"
        raise c.ContractError("path", f"{path} is not a readable ONNX model ({exc})") from exc
    return model, {p.key: p.value for p in model.metadata_props}


def detect_format(meta: Mapping[str, str], inputs: Sequence[str] = (), outputs: Sequence[str] = ()) -> str | None:
    """Which exporter wrote a model, from its metadata keys and tensor names: ``g1`` (our contract),
    ``mjlab`` (BeyondMimic/mjlab tracking export), ``holosoma`` (holosoma WBT export), or None."""
    if any(k.startswith(c.PREFIX) for k in meta):
        return FORMAT_G1
    if {"joint_names", "observation_names"} <= set(meta) and ("joint_stiffness" in meta or "anchor_body_name" in meta):
        return FORMAT_MJLAB
    if ("dof_names" in meta or "experiment_config" in meta) and ("ref_quat_xyzw" in outputs or "robot_urdf" in meta):
        return FORMAT_HOLOSOMA
    return None


def sidecar_path(path: str | os.PathLike) -> Path:
    """Where a sidecar for ``path`` is looked for: ``<dir>/<stem>.g1.yaml``."""
    path = Path(path)
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def read_sidecar(path: str | os.PathLike | None) -> tuple[dict, str]:
    """A sidecar YAML's mapping and a label for messages; ({}, "") when there is none."""
    import yaml

    if path is None:
        return {}, ""
    path = Path(path)
    if not path.is_file():
        raise c.ContractError("sidecar", f"no sidecar file at {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise c.ContractError("sidecar", f"{path} is not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise c.ContractError("sidecar", f"{path} must hold a mapping of facts (see README), got {type(data).__name__}")
    known = {"format", "action_scale", "default_joint_pos", "kp", "kd", "observation_terms", "history_length",
             "anchor_body", "base_lin_vel", "action_clip", "control_rate_hz"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise c.ContractError("sidecar", f"{path}: unknown keys {unknown} (known: {sorted(known)})")
    return data, f"sidecar {path}"


_PLACEHOLDERS = {"kp": [1.0] * robot.NUM_JOINTS, "kd": [1.0] * robot.NUM_JOINTS,
                 "default_joint_pos": [0.0] * robot.NUM_JOINTS, "action_scale": [1.0] * robot.NUM_JOINTS,
                 "observation_terms": [],
                 "anchor_body": robot.ROOT_BODY}


def _csv_or_json(value: str) -> Any:
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return [v.strip() for v in value.split(",") if v.strip()]


def _per_joint(value: Any, joints: JointMap, what: str, allow_scalar: bool = False) -> np.ndarray:
    """SDK-order float array from a list in the artifact's joint order, a {joint: value} mapping, or
    (``allow_scalar``) one number for every joint."""
    if isinstance(value, Mapping):
        try:
            return robot.reorder_from_names(list(value), [float(v) for v in value.values()], what)
        except (robot.DescriptionError, TypeError, ValueError) as exc:
            raise c.ContractError(what, str(exc)) from exc
    try:
        arr = np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise c.ContractError(what, f"not numbers ({exc})") from exc
    if arr.size == 1 and allow_scalar:
        arr = np.full(len(joints.names), float(arr[0]))
    if arr.size != len(joints.names):
        raise c.ContractError(what, f"{arr.size} values for {len(joints.names)} joints")
    if not np.all(np.isfinite(arr)):
        raise c.ContractError(what, "contains NaN or inf")
    return joints.to_sdk(arr)


def load_external(path: str | os.PathLike, sidecar: str | os.PathLike | None = None, *,
                  base_lin_vel: str | None = None) -> ExternalArtifact:
    """Read and check an mjlab or holosoma export. ``sidecar``: a YAML of facts the file lacks (default:
    ``<stem>.g1.yaml`` next to it, if present). ``base_lin_vel``: "zero" or "odometry", overriding the
    sidecar (default "zero"). Raises ContractError naming the field."""
    path = Path(path)
    model, meta = raw_metadata(path)
    inputs = {i.name: [d.dim_value if d.HasField("dim_value") else d.dim_param for d in i.type.tensor_type.shape.dim]
              for i in model.graph.input}
    outputs = [o.name for o in model.graph.output]
    if sidecar is None and sidecar_path(path).is_file():
        sidecar = sidecar_path(path)
    side, side_label = read_sidecar(sidecar)
    fmt = side.get("format") or detect_format(meta, list(inputs), outputs)
    if fmt not in EXTERNAL_FORMATS:
        raise c.ContractError("format", f"{path.name} is not an mjlab/BeyondMimic or holosoma tracking export "
                              f"(metadata keys {sorted(meta)[:8]}); set 'format' in a sidecar if it is one")
    for name in ("obs", INPUT_TIME_STEP):
        if name not in inputs:
            raise c.ContractError("io", f"{fmt} tracking exports have inputs 'obs' and 'time_step'; "
                                  f"{path.name} has {sorted(inputs)}")
    if OUTPUT_ACTIONS not in outputs:
        raise c.ContractError("io", f"no '{OUTPUT_ACTIONS}' output in {path.name} (outputs {outputs})")
    facts_from: dict[str, str] = {}
    missing: list[str] = []

    def fact(key: str, from_meta: Any, required: bool = True, hint: str = "") -> Any:
        """The sidecar wins only where the file says nothing: a file's own fact is never overridden."""
        if from_meta is not None:
            if key in side:
                raise c.ContractError(key, f"given both in the file's metadata and in the {side_label}; the "
                                      "file's own value is authoritative: remove it from the sidecar")
            facts_from[key] = "metadata"
            return from_meta
        if key in side:
            facts_from[key] = side_label
            return side[key]
        if required:  # collected, then refused all at once below (the placeholder is never used)
            missing.append(key + hint)
            return _PLACEHOLDERS[key]
        return None

    art = (_mjlab if fmt == FORMAT_MJLAB else _holosoma)(path, meta, fact)
    if missing:
        first = missing[0].split(" ")[0]
        raise c.ContractError(first, f"{path.name} ({fmt} export) does not carry {', '.join(missing)}; this stack "
                              f"never guesses a policy's facts: supply them in a sidecar {sidecar_path(path)} or "
                              "with g1 track --policy-sidecar FILE (README: 'Run a policy trained elsewhere')")
    joints, kp, kd, default, scale, terms, history, anchor, clip, rate = art

    known = TERM_SIZES[fmt]
    unknown = [t for t in terms if t not in known]
    if unknown:
        raise c.ContractError("observation_terms", f"terms {unknown} are not {fmt} terms this stack computes "
                              f"(known: {sorted(known)})")
    terms_sized = tuple((t, known[t]) for t in terms)
    size = history * sum(s for _, s in terms_sized)
    width = inputs["obs"][-1]
    if width != size:
        raise c.ContractError("observation_terms", f"{' + '.join(f'{t}({s})' for t, s in terms_sized)}"
                              f"{f' x history {history}' if history > 1 else ''} = {size}, but the model's 'obs' "
                              f"input is {width} wide")
    if abs(float(rate) - robot.CONTROL_RATE_HZ) > 1e-6:
        raise c.ContractError("control_rate_hz", f"trained at {rate} Hz, this stack runs {robot.CONTROL_RATE_HZ} Hz")
    for key, arr, hi in (("kp", kp, c.KP_MAX), ("kd", kd, c.KD_MAX)):
        bad = np.flatnonzero((arr < 0) | (arr > hi))
        if bad.size:
            j = int(bad[0])
            raise c.ContractError(key, f"{arr[j]:.2f} for {robot.JOINT_NAMES[j]} is outside [0, {hi[j]:.1f}]")
    if np.any(scale == 0):
        raise c.ContractError("action_scale", "zero entries (the last action could not be recovered from a target)")
    off = np.abs(default - robot.DEFAULT_JOINT_POS)
    if np.any(off > 0.5):
        j = int(np.argmax(off))
        raise c.ContractError("default_joint_pos", f"{robot.JOINT_NAMES[j]} {default[j]:.3f} rad is far from the "
                              f"G1 standing pose ({robot.DEFAULT_JOINT_POS[j]:.3f}); is this a G1 29-DoF policy?")
    lin_vel = base_lin_vel or side.get("base_lin_vel", "zero")
    if lin_vel not in BASE_LIN_VEL_SOURCES:
        raise c.ContractError("base_lin_vel", f"{lin_vel!r} is not one of {BASE_LIN_VEL_SOURCES}")
    motion = _motion_outputs(fmt, outputs, path)
    try:
        if anchor not in _body_names():
            raise c.ContractError("anchor_body", f"{anchor!r} is not a body of the G1 model")
    except ImportError:  # pragma: no cover - mujoco is part of the stack
        pass
    provenance = {"name": path.stem, "format": fmt, "source_file": str(path.resolve()),
                  **{k: meta[k].strip('"') for k in ("run_path", "wandb_run_path", "iteration") if k in meta}}
    artifact = ExternalArtifact(path=path, format=fmt, joints=joints, kp=kp, kd=kd, default_joint_pos=default,
                                action_scale=scale, observation_terms=terms_sized, history_length=history,
                                obs_size=size, anchor_body=anchor, action_clip=clip, base_lin_vel_source=lin_vel,
                                motion_outputs=motion,
                                control_rate_hz=float(rate), provenance=provenance, facts_from=facts_from)
    _check_actions_ignore_time_step(artifact)
    return artifact


def _mjlab(path: Path, meta: Mapping[str, str], fact):
    names = _csv_or_json(meta["joint_names"])
    joints = JointMap.from_names(names, "joint_names")
    get = lambda k: _csv_or_json(meta[k]) if k in meta else None  # noqa: E731
    kp = _per_joint(fact("kp", get("joint_stiffness")), joints, "kp")
    kd = _per_joint(fact("kd", get("joint_damping")), joints, "kd")
    default = _per_joint(fact("default_joint_pos", get("default_joint_pos")), joints, "default_joint_pos")
    scale = _action_scale(fact("action_scale", get("action_scale")), joints, kp)
    terms = tuple(fact("observation_terms", get("observation_names")))
    history = int(fact("history_length", None, required=False) or 1)
    anchor = str(fact("anchor_body", meta.get("anchor_body_name"), hint=" (the body the motion is anchored to)"))
    clip = fact("action_clip", None, required=False)
    rate = fact("control_rate_hz", None, required=False) or robot.CONTROL_RATE_HZ
    return joints, kp, kd, default, scale, terms, history, anchor, None if clip is None else float(clip), rate


def _holosoma(path: Path, meta: Mapping[str, str], fact):
    names = json.loads(meta["dof_names"]) if "dof_names" in meta else None
    cfg = None
    if "experiment_config" in meta:
        try:
            cfg = json.loads(meta["experiment_config"])
        except json.JSONDecodeError as exc:
            raise c.ContractError("experiment_config", f"not JSON ({exc})") from exc
    robot_cfg = (cfg or {}).get("robot", {})
    names = names or robot_cfg.get("dof_names")
    if not names:
        raise c.ContractError("dof_names", f"{path.name} names no joints (metadata 'dof_names')")
    joints = JointMap.from_names(names, "dof_names")
    kp = _per_joint(fact("kp", json.loads(meta["kp"]) if "kp" in meta else None), joints, "kp")
    kd = _per_joint(fact("kd", json.loads(meta["kd"]) if "kd" in meta else None), joints, "kd")
    default_meta = robot_cfg.get("init_state", {}).get("default_joint_angles")
    default = _per_joint(fact("default_joint_pos", default_meta), joints, "default_joint_pos")
    control = robot_cfg.get("control", {})
    scale_meta = None
    if "action_scale" in meta:  # holosoma's own inference reads this key first
        scale_meta = json.loads(meta["action_scale"])
    elif control.get("action_scales_by_effort_limit_over_p_gain") and "action_scale" in control:
        effort = robot_cfg.get("dof_effort_limit_list")
        if effort is None:
            raise c.ContractError("action_scale", "experiment_config scales actions by effort limit / kp but has "
                                  "no robot.dof_effort_limit_list")
        scale_meta = {"effort_limit_over_kp": float(control["action_scale"]),
                      "effort_limit": [float(e) for e in effort]}
    elif "action_scale" in control:
        scale_meta = float(control["action_scale"])
    scale = _action_scale(fact("action_scale", scale_meta), joints, kp)
    group = (cfg or {}).get("observation", {}).get("groups", {}).get("actor_obs")
    terms_meta = sorted(group["terms"]) if group else None  # holosoma concatenates terms alphabetically
    terms = tuple(fact("observation_terms", terms_meta))
    # not required: a wrong history length cannot pass the observation-width check
    history = int(fact("history_length", group.get("history_length", 1) if group else None, required=False) or 1)
    anchor_meta = None
    ref = (cfg or {}).get("command", {}).get("setup_terms", {}).get("motion_command", {}).get("params", {}) \
        .get("motion_config", {}).get("body_name_ref")
    if ref:
        anchor_meta = ref[0] if isinstance(ref, list) else ref
    anchor = str(fact("anchor_body", anchor_meta, hint=" (the body of ref_pos_xyz / ref_quat_xyzw)"))
    clip_meta = float(control["action_clip_value"]) if control.get("clip_actions") and "action_clip_value" in control \
        else None
    clip = fact("action_clip", clip_meta, required=False)
    sim = (cfg or {}).get("simulator", {}).get("config", {}).get("sim", {})
    rate_meta = sim["fps"] / sim["control_decimation"] if "fps" in sim and "control_decimation" in sim else None
    rate = fact("control_rate_hz", rate_meta, required=False) or robot.CONTROL_RATE_HZ
    return joints, kp, kd, default, scale, terms, history, anchor, None if clip is None else float(clip), rate


def _action_scale(value: Any, joints: JointMap, kp_sdk: np.ndarray) -> np.ndarray:
    """SDK-order action scale from a number, a per-joint list/mapping, or the rule
    ``{effort_limit_over_kp: F}`` (F * effort limit / kp per joint; effort limits from the file when it
    gives them, else g1_description)."""
    if isinstance(value, Mapping) and RULE_EFFORT_OVER_KP in value:
        effort = value.get("effort_limit")
        effort_sdk = robot.EFFORT_LIMIT if effort is None else _per_joint(effort, joints, "action_scale.effort_limit")
        return float(value[RULE_EFFORT_OVER_KP]) * effort_sdk / kp_sdk
    return _per_joint(value, joints, "action_scale", allow_scalar=True)


def _motion_outputs(fmt: str, outputs: Sequence[str], path: Path) -> tuple[str, ...]:
    need = ("joint_pos", "joint_vel") + (("body_pos_w", "body_quat_w") if fmt == FORMAT_MJLAB
                                         else ("ref_pos_xyz", "ref_quat_xyzw"))
    missing = [n for n in need if n not in outputs]
    if missing:
        raise c.ContractError("io", f"{path.name}: {fmt} tracking exports carry their motion as outputs "
                              f"{list(need)}; missing {missing}")
    return need


def _body_names() -> tuple[str, ...]:
    from motion_server.kinematics import robot_body_names

    return robot_body_names()


def _session(path: Path):
    from g1_tracker_policy.controllers import make_session

    return make_session(str(path))


def _check_actions_ignore_time_step(art: ExternalArtifact) -> None:
    """The node feeds ``time_step`` from the reference it tracks; that is only sound if the actions are a
    function of the observation alone (true of both exporters: time_step only indexes the motion)."""
    sess = _session(art.path)
    obs = np.random.default_rng(0).normal(0, 0.3, (1, art.obs_size)).astype(np.float32)
    a0 = sess.run([OUTPUT_ACTIONS], {"obs": obs, INPUT_TIME_STEP: np.zeros((1, 1), np.float32)})[0]
    a1 = sess.run([OUTPUT_ACTIONS], {"obs": obs, INPUT_TIME_STEP: np.full((1, 1), 7.0, np.float32)})[0]
    if not np.all(np.isfinite(a0)) or a0.reshape(-1).size != robot.NUM_JOINTS:
        raise c.ContractError("io", f"'{OUTPUT_ACTIONS}' is not {robot.NUM_JOINTS} finite values")
    if not np.array_equal(a0, a1):
        raise c.ContractError("io", "the actions depend on time_step, not only on the observation; this stack "
                              "feeds time_step from the reference it streams and cannot run such a model")


def policy_format(path: str | os.PathLike) -> str | None:
    """``g1``, ``mjlab``, ``holosoma`` or None, from the file's metadata alone (no checks)."""
    model, meta = raw_metadata(path)
    return detect_format(meta, [i.name for i in model.graph.input], [o.name for o in model.graph.output])


def load_policy(path: str | os.PathLike, sidecar: str | os.PathLike | None = None, **kwargs):
    """Our contract (:func:`contract.load_artifact`) or another framework's export, decided from the
    file's metadata. Returns a ``PolicyArtifact`` or an :class:`ExternalArtifact`."""
    model, meta = raw_metadata(path)
    outputs = [o.name for o in model.graph.output]
    fmt = detect_format(meta, [i.name for i in model.graph.input], outputs)
    side_exists = sidecar is not None or sidecar_path(path).is_file()
    if fmt == FORMAT_G1:
        if sidecar is not None:
            raise c.ContractError("sidecar", "a g1 contract artifact carries all its facts; it takes no sidecar")
        return c.load_artifact(path)
    if fmt is None and not side_exists:
        raise c.ContractError("format", f"{Path(path).name} is not a policy this stack can run: it has no g1 "
                              "contract metadata (export with g1_tracker_policy.contract.write_artifact) and is not "
                              "an mjlab/BeyondMimic or holosoma whole-body-tracking export (metadata keys "
                              f"{sorted(meta)[:8]}, inputs {[i.name for i in model.graph.input]})")
    return load_external(path, sidecar, **kwargs)


# --- the embedded motion ----------------------------------------------------------------------------

@dataclass
class EmbeddedMotion:
    """The reference a model carries, one frame per control tick, SDK joint order, wxyz, world frame."""

    fps: float
    joint_pos: np.ndarray       # (T, 29)
    joint_vel: np.ndarray       # (T, 29)
    root_pos: np.ndarray        # (T, 3) pelvis
    root_quat_wxyz: np.ndarray  # (T, 4) pelvis
    details: dict


def embedded_motion(path: str | os.PathLike, sidecar: str | os.PathLike | None = None) -> EmbeddedMotion:
    """Run the model over every time step (from 0 until the outputs stop changing: both exporters clamp
    the index at the last frame) and return the motion as frames of the pelvis and joints.

    mjlab gives the pelvis directly (``body_pos_w``/``body_quat_w`` of body ``pelvis``); holosoma gives
    only its reference body (the torso): the pelvis pose is found from it and the joints by forward
    kinematics on the G1 model.
    """
    art = load_external(path, sidecar)
    sess = _session(art.path)
    obs = np.zeros((1, art.obs_size), np.float32)
    names = list(art.motion_outputs)

    def at(step: int) -> list[np.ndarray]:
        return sess.run(names, {"obs": obs, INPUT_TIME_STEP: np.full((1, 1), float(step), np.float32)})

    clamp = at(MAX_EMBEDDED_STEPS)
    frames = []
    for step in range(MAX_EMBEDDED_STEPS):
        out = at(step)
        frames.append(out)
        if all(np.array_equal(a, b) for a, b in zip(out, clamp)):
            break
    else:
        raise c.ContractError("io", f"the embedded motion of {art.path.name} has no end within "
                              f"{MAX_EMBEDDED_STEPS} steps")
    stacked = [np.concatenate([f[i] for f in frames]).astype(np.float64) for i in range(len(names))]
    joint_pos = art.joints.to_sdk(stacked[0])
    joint_vel = art.joints.to_sdk(stacked[1])
    from motion_server import rotations
    from motion_server.kinematics import KeyBodyKinematics

    if art.format == FORMAT_MJLAB:
        body_pos, body_quat = stacked[2], stacked[3]
        model, meta = raw_metadata(art.path)
        bodies = _csv_or_json(meta.get("body_names", "")) or []
        root = bodies.index(robot.ROOT_BODY) if robot.ROOT_BODY in bodies else None
        if root is None:
            raise c.ContractError("body_names", f"no {robot.ROOT_BODY!r} among the exported bodies {bodies[:5]}")
        root_pos, root_quat = body_pos[:, root], body_quat[:, root]  # wxyz already
    else:
        ref_pos, ref_quat = stacked[2].reshape(-1, 3), rotations.xyzw_to_wxyz(stacked[3].reshape(-1, 4))
        # pelvis = anchor pose composed with the inverse of (pelvis -> anchor) at these joints
        fk = KeyBodyKinematics()
        rel_pos, rel_quat = fk.body_poses(art.anchor_body, np.zeros((len(joint_pos), 3)),
                                          np.tile([1.0, 0, 0, 0], (len(joint_pos), 1)), joint_pos)
        root_quat = rotations.multiply(ref_quat, rotations.conjugate(rel_quat))
        root_pos = ref_pos - rotations.rotate(root_quat, rel_pos)
    root_quat = rotations.make_continuous(rotations.normalize(root_quat))
    details = {"embedded_in": str(art.path.resolve()), "policy_format": art.format, "time_steps": len(frames),
               "time_step_rate_hz": robot.CONTROL_RATE_HZ}
    return EmbeddedMotion(robot.CONTROL_RATE_HZ, joint_pos, joint_vel, root_pos, root_quat, details)
