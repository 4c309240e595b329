"""The policy artifact contract: one ONNX file that says everything the robot must agree with.

A policy is only runnable together with the facts it was trained under (joint order, default pose,
gains, action scale, control rate, observation layout, reference-window offsets). Those facts travel
inside the ONNX file as ``metadata_props`` (string key -> string value, JSON for structures), together
with golden input -> output vectors that are re-run at load. :func:`load_artifact` refuses, with a
:class:`ContractError` naming the field, anything that does not match this robot and this stack.

Golden vectors are stored IN the metadata (``g1.golden``: JSON with base64 little-endian float32
arrays), not in a sidecar file: one file cannot be copied without its check. See README.md for every
field.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from g1_description import robot
from g1_tracker_policy.observation import ObservationConfig, ObservationError

CONTRACT_VERSION = 2
#: Versions this loader reads. Version 1 had no ``action_base`` field: its actions are offset-based.
READABLE_CONTRACT_VERSIONS = (1, 2)
PREFIX = "g1."
MODEL_KINDS = ("mlp", "moe", "conv_encoder", "transformer_kv", "transformer_window")

#: What a scaled action is added to (field ``action_base``):
#: - "offset": ``target = action_offset + action_scale * action`` (GMT: offset = the default pose);
#: - "reference_next_frame": ``target = reference.joint_pos[0] + action_offset + action_scale * action``,
#:   frame 0 of the reference window being the next frame, the one the pass-through baseline commands:
#:   the policy is a residual on the baseline (a zero action IS the baseline; offset usually zero).
ACTION_BASE_OFFSET = "offset"
ACTION_BASE_REFERENCE = "reference_next_frame"
ACTION_BASES = (ACTION_BASE_OFFSET, ACTION_BASE_REFERENCE)

# Tensor names every artifact uses (see README "I/O by model kind").
INPUT_OBS = "obs"                    # (1, D) float32; transformer_window: (1, C, D)
OUTPUT_ACTION = "action"             # (1, 29) float32
INPUT_PAST_KV = "past_kv"            # transformer_kv: (L, 2, heads, C, head_dim) float32
INPUT_PAST_LEN = "past_len"          # transformer_kv: (1,) int64, valid cached steps (0..C)
OUTPUT_PRESENT_KV = "present_kv"     # transformer_kv: same shape as past_kv, newest step last
INPUT_CONTEXT_LEN = "context_len"    # transformer_window: (1,) int64, valid steps in the context

#: Gains beyond these are refused at load and clamped by the command sanitiser: the stiffest gains
#: any mode of this stack uses are the STAND gains; a policy may ask for at most twice those.
KP_MAX = 2.0 * np.maximum(robot.STAND_KP, robot.KP)
KD_MAX = 2.0 * np.maximum(np.maximum(robot.STAND_KD, robot.KD), robot.DAMPING_KD)

REQUIRED_FIELDS = ("contract_version", "model_kind", "joint_names", "default_joint_pos", "kp", "kd",
                   "action_scale", "action_offset", "action_base", "control_rate_hz", "observation", "io",
                   "provenance", "golden")
#: Golden-vector tolerances. They belong to the loader, not to the artifact: a file cannot loosen its own
#: check (one stored with atol 1e30 would pass garbage). The writer stores these values for information;
#: the loader always compares with these constants and refuses a stored value looser than them.
GOLDEN_ATOL = 1e-4
GOLDEN_RTOL = 1e-3


class ContractError(ValueError):
    """A policy artifact that must not run on this robot; ``field`` names the offending entry."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"policy artifact field '{field_name}': {message}")
        self.field = field_name


@dataclass
class PolicyArtifact:
    """A loaded, checked artifact: the parsed contract plus the path to the ONNX model."""

    path: Path
    model_kind: str
    joint_names: tuple[str, ...]
    default_joint_pos: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    action_scale: np.ndarray
    action_offset: np.ndarray
    action_base: str
    control_rate_hz: float
    observation: ObservationConfig
    io: dict
    provenance: dict
    golden: dict = field(repr=False, default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.provenance.get("name") or self.path.stem)

    @property
    def uses_reference(self) -> bool:
        """True when targets are residuals on the reference's next frame (see ACTION_BASES)."""
        return self.action_base == ACTION_BASE_REFERENCE

    def _base(self, reference_joint_pos: np.ndarray | None) -> np.ndarray | None:
        if not self.uses_reference:
            return self.action_offset
        if reference_joint_pos is None:
            return None
        return np.asarray(reference_joint_pos, dtype=np.float64) + self.action_offset

    def action_to_target(self, action: np.ndarray, reference_joint_pos: np.ndarray | None = None) -> np.ndarray:
        """Joint position targets (rad) from a policy action: base + scale * action, base = the offset or
        the reference's next-frame joints + offset (``reference_joint_pos``: window.joint_pos[0])."""
        base = self._base(reference_joint_pos)
        if base is None:
            raise ValueError(f"policy {self.name!r} adds its actions to the reference's next frame "
                             "(action_base 'reference_next_frame') but no reference was given")
        return base + self.action_scale * np.asarray(action, dtype=np.float64)

    def target_to_action(self, target: np.ndarray, reference_joint_pos: np.ndarray | None = None) -> np.ndarray:
        """The action that would have produced ``target`` (fed back as last_action outside the policy).
        A residual policy with no reference at hand gets a zero action (= "followed the reference")."""
        base = self._base(reference_joint_pos)
        if base is None:
            return np.zeros(robot.NUM_JOINTS)
        return (np.asarray(target, dtype=np.float64) - base) / self.action_scale


# --- encoding helpers ----------------------------------------------------------------------------

def encode_array(arr: np.ndarray) -> dict:
    a = np.ascontiguousarray(arr, dtype="<f4")
    return {"dtype": "float32", "shape": list(a.shape), "b64": base64.b64encode(a.tobytes()).decode("ascii")}


def decode_array(d: Mapping) -> np.ndarray:
    """The array of :func:`encode_array`; ValueError saying what is wrong with a malformed entry."""
    if not isinstance(d, Mapping):
        raise ValueError(f"expected {{'dtype', 'shape', 'b64'}}, got {type(d).__name__}")
    if d.get("dtype") != "float32":
        raise ValueError(f"dtype {d.get('dtype')!r} is not 'float32'")
    shape = d.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                                               for n in shape):
        raise ValueError(f"shape {shape!r} is not a list of non-negative integers")
    if not isinstance(d.get("b64"), str):
        raise ValueError("b64 is not a string")
    raw = base64.b64decode(d["b64"], validate=True)
    if len(raw) != 4 * int(np.prod(shape)):
        raise ValueError(f"{len(raw)} bytes do not hold a float32 array of shape {shape}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)


def _vector(values: Sequence[float] | float, what: str) -> list[float]:
    arr = np.broadcast_to(np.asarray(values, dtype=np.float64), (robot.NUM_JOINTS,))
    if not np.all(np.isfinite(arr)):
        raise ContractError(what, "contains NaN or inf")
    return [float(x) for x in arr]


# --- writer ----------------------------------------------------------------------------------------

def write_artifact(path: str | os.PathLike, model: onnx.ModelProto, *, model_kind: str,
                   observation: ObservationConfig, kp: Sequence[float], kd: Sequence[float],
                   action_scale: Sequence[float] | float, action_offset: Sequence[float] | None = None,
                   action_base: str = ACTION_BASE_OFFSET, control_rate_hz: float = robot.CONTROL_RATE_HZ, provenance: Mapping[str, Any] | None = None,
                   golden_inputs: np.ndarray | None = None, golden_outputs: np.ndarray | None = None,
                   num_golden_steps: int = 4, seed: int = 0) -> PolicyArtifact:
    """Attach the contract to ``model``, write it to ``path`` and load it back through the checks.

    ``golden_inputs``: (T, D) observations fed in order from a reset (so recurrent/KV state is
    covered); random ones are drawn when not given. ``golden_outputs``: (T, 29) actions the training
    framework computed for them (e.g. torch); when given, ONNX Runtime must reproduce them or the
    export is refused - this is what catches a wrong export. Without it ORT's own outputs are stored.
    """
    from g1_tracker_policy.controllers import OnnxPolicyRunner  # runner and contract share the I/O rules

    if model_kind not in MODEL_KINDS:
        raise ContractError("model_kind", f"{model_kind!r} is not one of {MODEL_KINDS}")
    if action_base not in ACTION_BASES:
        raise ContractError("action_base", f"{action_base!r} is not one of {ACTION_BASES}")
    path = Path(path)
    if action_offset is None:  # the default pose for offset-based actions, none on top of a reference
        action_offset = robot.DEFAULT_JOINT_POS if action_base == ACTION_BASE_OFFSET else np.zeros(robot.NUM_JOINTS)
    offset = action_offset
    io = _io_from_graph(model, model_kind)
    meta = {
        "contract_version": CONTRACT_VERSION,
        "model_kind": model_kind,
        "joint_names": list(robot.JOINT_NAMES),
        "default_joint_pos": _vector(observation.default_joint_pos, "default_joint_pos"),
        "kp": _vector(kp, "kp"),
        "kd": _vector(kd, "kd"),
        "action_scale": _vector(action_scale, "action_scale"),
        "action_offset": _vector(offset, "action_offset"),
        "action_base": action_base,
        "control_rate_hz": float(control_rate_hz),
        "observation": observation.to_dict(),
        "io": io,
        "provenance": {"created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                       **dict(provenance or {})},
    }
    if golden_inputs is None:
        rng = np.random.default_rng(seed)
        golden_inputs = rng.normal(0.0, 0.5, (num_golden_steps, observation.size)).astype(np.float32)
    golden_inputs = np.asarray(golden_inputs, dtype=np.float32)
    if golden_inputs.ndim != 2 or golden_inputs.shape[1] != observation.size:
        raise ContractError("golden", f"golden inputs must be (T, {observation.size}), got {golden_inputs.shape}")

    _set_metadata(model, {**meta, "golden": {"inputs": encode_array(golden_inputs)}})
    runner = OnnxPolicyRunner(model.SerializeToString(), model_kind, io)
    ort_outputs = runner.run_sequence(golden_inputs)
    if golden_outputs is not None:
        golden_outputs = np.asarray(golden_outputs, dtype=np.float32)
        _compare_golden(ort_outputs, golden_outputs, "the exporting framework's outputs")
    else:
        golden_outputs = ort_outputs
    meta["golden"] = {"inputs": encode_array(golden_inputs), "outputs": encode_array(golden_outputs),
                      "atol": GOLDEN_ATOL, "rtol": GOLDEN_RTOL, "reset_before": True}
    _set_metadata(model, meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return load_artifact(path, control_rate_hz=control_rate_hz)


def _set_metadata(model: onnx.ModelProto, meta: Mapping[str, Any]) -> None:
    keep = [p for p in model.metadata_props if not p.key.startswith(PREFIX)]
    del model.metadata_props[:]
    model.metadata_props.extend(keep)
    for key, value in meta.items():
        model.metadata_props.add(key=PREFIX + key, value=json.dumps(value))


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else d.dim_param for d in value_info.type.tensor_type.shape.dim]


def _io_from_graph(model: onnx.ModelProto, kind: str) -> dict:
    inputs = {i.name: _dims(i) for i in model.graph.input}
    outputs = {o.name: _dims(o) for o in model.graph.output}
    obs_in = INPUT_OBS
    need_in = {obs_in} | ({INPUT_PAST_KV, INPUT_PAST_LEN} if kind == "transformer_kv" else set()) \
        | ({INPUT_CONTEXT_LEN} if kind == "transformer_window" else set())
    need_out = {OUTPUT_ACTION} | ({OUTPUT_PRESENT_KV} if kind == "transformer_kv" else set())
    if not need_in <= set(inputs):
        raise ContractError("io", f"a {kind} model needs inputs {sorted(need_in)}, the graph has {sorted(inputs)}")
    if not need_out <= set(outputs):
        raise ContractError("io", f"a {kind} model needs outputs {sorted(need_out)}, the graph has {sorted(outputs)}")
    io = {"inputs": inputs, "outputs": outputs}
    if kind == "transformer_kv":
        io["kv_cache_shape"] = inputs[INPUT_PAST_KV]
        io["context_length"] = inputs[INPUT_PAST_KV][3]
    if kind == "transformer_window":
        io["context_length"] = inputs[INPUT_OBS][1]
    return io


# --- loader ------------------------------------------------------------------------------------------

def read_metadata(path: str | os.PathLike) -> tuple[onnx.ModelProto, dict]:
    path = Path(path)
    if not path.is_file():
        raise ContractError("path", f"no policy file at {path}")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a policy"
        raise ContractError("path", f"{path} is not a readable ONNX model ({exc})") from exc
    meta = {}
    for p in model.metadata_props:
        if p.key.startswith(PREFIX):
            try:
                meta[p.key[len(PREFIX):]] = json.loads(p.value)
            except json.JSONDecodeError as exc:
                raise ContractError(p.key[len(PREFIX):], f"metadata value is not JSON ({exc})") from exc
    return model, meta


def load_artifact(path: str | os.PathLike, *, control_rate_hz: float = robot.CONTROL_RATE_HZ,
                  future_offsets: Sequence[int] | None = None, check_golden: bool = True) -> PolicyArtifact:
    """Parse and check an artifact against this robot; raise ContractError naming the field if not.

    ``future_offsets``: those of the running motion server, when known (the node checks again on the
    first reference window it receives).
    """
    path = Path(path)
    model, meta = read_metadata(path)
    if meta.get("contract_version") == 1 and "action_base" not in meta:
        meta["action_base"] = ACTION_BASE_OFFSET  # version 1 predates the field; its actions are offset-based
    missing = [f for f in REQUIRED_FIELDS if f not in meta]
    if missing:
        raise ContractError(missing[0], f"missing from the metadata of {path.name} (all missing: {missing}); "
                            "export it with g1_tracker_policy.contract.write_artifact")
    _check_types(meta)
    if meta["contract_version"] not in READABLE_CONTRACT_VERSIONS:
        raise ContractError("contract_version", f"{meta['contract_version']} is not one this stack reads "
                            f"{READABLE_CONTRACT_VERSIONS}")
    if meta["action_base"] not in ACTION_BASES:
        raise ContractError("action_base", f"{meta['action_base']!r} is not one of {ACTION_BASES}")
    kind = meta["model_kind"]
    if kind not in MODEL_KINDS:
        raise ContractError("model_kind", f"{kind!r} is not one of {MODEL_KINDS}")
    names = tuple(meta["joint_names"])
    if names != robot.JOINT_NAMES:
        first = next((i for i, (a, b) in enumerate(zip(names, robot.JOINT_NAMES)) if a != b), min(len(names), 29))
        raise ContractError("joint_names", f"joint order differs from the G1 SDK order at index {first} "
                            f"(artifact {names[first] if first < len(names) else '<none>'!r}, robot "
                            f"{robot.JOINT_NAMES[first] if first < 29 else '<none>'!r}; {len(names)} names)")
    arrays = {}
    for key in _VECTOR_FIELDS:
        arr = np.asarray(meta[key], dtype=np.float64)  # _check_types: a list of 29 numbers
        if not np.all(np.isfinite(arr)):
            raise ContractError(key, f"expected {robot.NUM_JOINTS} finite values, found NaN or inf")
        arrays[key] = arr
    if not np.allclose(arrays["default_joint_pos"], robot.DEFAULT_JOINT_POS, atol=1e-6):
        j = int(np.argmax(np.abs(arrays["default_joint_pos"] - robot.DEFAULT_JOINT_POS)))
        raise ContractError("default_joint_pos", f"differs from the G1 description at {robot.JOINT_NAMES[j]} "
                            f"({arrays['default_joint_pos'][j]:.4f} vs {robot.DEFAULT_JOINT_POS[j]:.4f} rad)")
    for key, hi in (("kp", KP_MAX), ("kd", KD_MAX)):
        bad = np.flatnonzero((arrays[key] < 0) | (arrays[key] > hi))
        if bad.size:
            j = int(bad[0])
            raise ContractError(key, f"{arrays[key][j]:.2f} for {robot.JOINT_NAMES[j]} is outside [0, {hi[j]:.1f}]")
    if np.any(arrays["action_scale"] == 0):
        raise ContractError("action_scale", "zero entries (the last action could not be recovered from a target)")
    rate = float(meta["control_rate_hz"])
    if abs(rate - control_rate_hz) > 1e-6:
        raise ContractError("control_rate_hz", f"artifact trained at {rate} Hz, this stack runs {control_rate_hz} Hz")
    try:
        obs_cfg = ObservationConfig.from_dict(meta["observation"])
        obs_cfg.size  # noqa: B018 - computing the layout checks the term names
    except (ObservationError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ContractError("observation", f"malformed ({type(exc).__name__}: {exc})") from exc
    if tuple(obs_cfg.joint_names) != robot.JOINT_NAMES:
        raise ContractError("observation.joint_names", "observation joint order is not the G1 SDK order")
    if future_offsets is not None:
        check_future_offsets(obs_cfg, future_offsets)

    io = _io_from_graph(model, kind)
    obs_dims = io["inputs"][INPUT_OBS]
    if not isinstance(obs_dims[-1], int) or obs_dims[-1] != obs_cfg.size:
        raise ContractError("observation", f"the model's '{INPUT_OBS}' input is {obs_dims[-1]} wide but the "
                            f"observation layout gives {obs_cfg.size} ({obs_cfg.history_length} x "
                            f"{obs_cfg.proprio_frame_size} proprio + {obs_cfg.num_reference_frames} x "
                            f"{obs_cfg.reference_frame_size} reference)")
    act_dims = io["outputs"][OUTPUT_ACTION]
    if act_dims[-1] != robot.NUM_JOINTS:
        raise ContractError("io", f"the model's '{OUTPUT_ACTION}' output is {act_dims[-1]} wide, expected "
                            f"{robot.NUM_JOINTS}")
    artifact = PolicyArtifact(
        path=path, model_kind=kind, joint_names=names, default_joint_pos=arrays["default_joint_pos"],
        kp=arrays["kp"], kd=arrays["kd"], action_scale=arrays["action_scale"],
        action_offset=arrays["action_offset"], action_base=meta["action_base"], control_rate_hz=rate,
        observation=obs_cfg, io=io,
        provenance=dict(meta["provenance"]), golden=dict(meta["golden"]))
    if check_golden:
        verify_golden(artifact, model.SerializeToString())
    return artifact


_VECTOR_FIELDS = ("default_joint_pos", "kp", "kd", "action_scale", "action_offset")
_OBJECT_FIELDS = ("observation", "io", "provenance", "golden")


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_types(meta: Mapping) -> None:
    """Every field's JSON type, so that a malformed value is a ContractError naming it, never a traceback."""
    def refuse(key, expected):
        value = repr(meta[key])
        raise ContractError(key, f"expected {expected}, got {type(meta[key]).__name__} "
                            f"{value if len(value) <= 60 else value[:57] + '...'}")
    if not isinstance(meta["contract_version"], int) or isinstance(meta["contract_version"], bool):
        refuse("contract_version", f"an integer (one of {READABLE_CONTRACT_VERSIONS})")
    for key in ("model_kind", "action_base"):
        if not isinstance(meta[key], str):
            refuse(key, "a string")
    names = meta["joint_names"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        refuse("joint_names", f"a list of {robot.NUM_JOINTS} joint names")
    for key in _VECTOR_FIELDS:
        v = meta[key]
        if not isinstance(v, list) or len(v) != robot.NUM_JOINTS or not all(_is_number(x) for x in v):
            refuse(key, f"a list of {robot.NUM_JOINTS} numbers")
    if not _is_number(meta["control_rate_hz"]):
        refuse("control_rate_hz", "a number (Hz)")
    for key in _OBJECT_FIELDS:
        if not isinstance(meta[key], dict):
            refuse(key, "a JSON object")


def check_future_offsets(obs_cfg: ObservationConfig, future_offsets: Sequence[int]) -> None:
    if tuple(int(o) for o in future_offsets) != tuple(obs_cfg.future_offsets):
        raise ContractError("observation.future_offsets", f"the policy expects reference frames at "
                            f"{list(obs_cfg.future_offsets)} but the motion server sends {list(future_offsets)}")


def verify_golden(artifact: PolicyArtifact, model_bytes: bytes | None = None) -> None:
    """Re-run the golden inputs through ONNX Runtime and compare with the stored outputs."""
    from g1_tracker_policy.controllers import OnnxPolicyRunner

    g = artifact.golden
    if "inputs" not in g or "outputs" not in g:
        raise ContractError("golden", "needs 'inputs' and 'outputs'")
    arrays = {}
    for part in ("inputs", "outputs"):
        try:
            arrays[part] = decode_array(g[part])
        except (KeyError, ValueError, TypeError) as exc:
            raise ContractError(f"golden.{part}", f"cannot decode the stored vectors ({exc})") from exc
    inputs, outputs = arrays["inputs"], arrays["outputs"]
    if inputs.ndim != 2 or inputs.shape[0] == 0:
        raise ContractError("golden.inputs", f"expected (T >= 1, {artifact.observation.size}) observations, got "
                            f"shape {inputs.shape}: an empty golden set checks nothing")
    if inputs.shape[-1] != artifact.observation.size:
        raise ContractError("golden", f"golden inputs are {inputs.shape[-1]} wide, the observation is "
                            f"{artifact.observation.size}")
    # The stored tolerances are information only: the loader's constants decide. A looser stored value
    # is refused (the exporter expected a check this loader does not make).
    for key, ours in (("atol", GOLDEN_ATOL), ("rtol", GOLDEN_RTOL)):
        if key in g and not (_is_number(g[key]) and 0.0 <= g[key] <= ours):
            raise ContractError(f"golden.{key}", f"stored {g[key]!r}; golden tolerances belong to the loader "
                                f"({key} {ours}), an artifact may not loosen them")
    runner = OnnxPolicyRunner(model_bytes if model_bytes is not None else str(artifact.path),
                              artifact.model_kind, artifact.io)
    _compare_golden(runner.run_sequence(inputs), outputs, "the stored golden outputs")


def _compare_golden(got: np.ndarray, want: np.ndarray, what: str, atol: float = GOLDEN_ATOL,
                    rtol: float = GOLDEN_RTOL) -> None:
    if got.shape != want.shape:
        raise ContractError("golden", f"ONNX Runtime gave outputs of shape {got.shape}, {what} are {want.shape}")
    if not np.allclose(got, want, atol=atol, rtol=rtol):
        err = np.abs(got - want)
        t, j = np.unravel_index(int(np.argmax(err)), err.shape)
        raise ContractError("golden", f"ONNX Runtime output differs from {what}: max error {err.max():.3g} at "
                            f"step {t}, joint {robot.JOINT_NAMES[j] if j < 29 else j} (atol {atol}, rtol {rtol}); "
                            "the model file or the inference backend is not the one the policy was validated with")
