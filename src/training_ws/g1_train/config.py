"""Typed configs (dataclasses, mjlab-style) loaded from YAML.

A YAML file mirrors the dataclass tree; unknown keys are an error that names the key, so a typo in a
config never silently falls back to a default. ``to_dict`` gives the plain dict that goes into logs,
checkpoints and the exported artifact's provenance.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_type_hints

import yaml


@dataclass
class MotionCfg:
    #: motion sources: library .npz files, library directories (with index.json), or raw clips
    #: (.csv/.npz/.pkl) imported in memory through motion_server.importers. Globs allowed.
    sources: list[str] = field(default_factory=list)
    #: optional name filter (substring match) applied after loading
    names: list[str] = field(default_factory=list)
    max_clips: int = 0  # 0 = all
    #: stand-start clips (deployment start): for every clip also train on what `g1 track` plays
    #: after standing - motion_server's ReferencePlayer blending from the default standing pose into the
    #: clip's first frame over ``stand_start_blend_s``, then the first ``stand_start_s`` seconds of the
    #: clip. Episodes of these clips start at rest in the standing pose. 0 = off.
    stand_start_s: float = 0.0
    stand_start_blend_s: float = 2.0
    #: held-out clips (names = file stems): never trained on; `g1-train eval --split heldout` evaluates them
    heldout: list[str] = field(default_factory=list)
    #: augmentation: also train on every clip mirrored left/right (`<name>@mirror`) and, of the clips and
    #: their mirrors, on versions played at these speed factors (`<name>@x1.2`; 1.0 is ignored)
    mirror: bool = False
    time_scales: list[float] = field(default_factory=list)
    #: foot grounding (motion_server.grounding, what `g1 motions import --ground` stores): stance soles
    #: made flat, level and put on the floor (leg joints + root height only), applied to every loaded clip
    #: before augmentation; `g1 track --ground` plays clips the same way
    ground_feet: bool = False


@dataclass
class SamplingCfg:
    """GMT adaptive sampling (see field-notes.md) + clip cutting + HME-style balancing."""

    completion_init: float = 10.0
    completion_decay: float = 0.99      # c_i <- max(1, c_i * decay) per success
    error_low: float = 0.25             # e_i = low + (high - low) * (c_i - 1) / 9
    error_high: float = 0.6
    kp_err_norm: float = 0.15           # s_i = min((E_max_kp / norm)^5, 1) when c_i == 1
    max_segment_s: float = 10.0         # clips longer than this are cut into sub-clips
    max_offset_s: float = 2.0           # random offset of the cut points
    recut_every_resets: int = 4096      # re-cut the long clips after this many episode resets
    diversity_clusters: int = 4         # HME-style balanced sampling over motion embedding clusters
    diversity_weight: float = 1.0       # 0 = off; p_i ∝ s_i * (1 / |cluster(i)|)^weight
    #: episode starts: "segments" (GMT: a segment's first frame) or "adaptive" (mjlab-style: anywhere in
    #: the clip, weighted by where episodes failed; bins of start_bin_s per clip; see sampling.py)
    start_sampling: str = "segments"
    start_bin_s: float = 1.0
    start_uniform_ratio: float = 0.1    # share of the start mass spread uniformly over a clip's bins
    start_kernel_size: int = 3          # failures also raise the (kernel_size - 1) bins before them
    start_kernel_lambda: float = 0.8    # ... with weights lambda^k
    start_failure_alpha: float = 0.01   # EMA rate of the per-bin failure counts (per episode-end batch)


@dataclass
class RandomizationCfg:
    enabled: bool = True
    friction: tuple[float, float] = (0.4, 1.2)          # absolute sliding friction of the floor/feet
    base_mass_add_kg: tuple[float, float] = (-1.0, 3.0)  # added to the torso
    com_offset_m: tuple[float, float] = (-0.03, 0.03)   # torso CoM shift, each axis
    motor_strength: tuple[float, float] = (0.9, 1.1)    # per-motor torque scale
    push_interval_s: tuple[float, float] = (3.0, 6.0)
    push_vel_mps: float = 0.5                           # max xy velocity kick of the pelvis
    gravity_tilt_rad: float = 0.05                      # gravity direction tilt (emulates slopes)
    #: max bump height of a per-env heightfield (0 = flat). Needs per-env model copies: env.backend mujoco
    #: only (batch shares one model, warp one hfield; both refuse a config with terrain)
    terrain_height_m: float = 0.0
    #: 2 ms units (the drivers' PD period) before a new target acts; a physics profile with longer steps
    #: rounds it to its own steps (actuator_200hz: 5 ms), at most one control tick
    action_delay_steps: tuple[int, int] = (0, 10)
    init_joint_noise_rad: float = 0.05
    #: episodes start with the pelvis up to this far from the reference's, each of x and y, and turned
    #: up to ``init_yaw_rad`` about the vertical (BeyondMimic's reset pose range): a student whose teachers
    #: observe their position and heading error learns to walk back onto the clip's path instead of
    #: holding a wherever-it-is offset (0 = start on the reference: no draw at all)
    init_root_xy_m: float = 0.0
    init_yaw_rad: float = 0.0


@dataclass
class RewardCfg:
    """Tracking rewards, exp(-err^2 / sigma^2) kernels (BeyondMimic/GMT style) and regularisers."""

    joint_pos: float = 1.0
    joint_pos_sigma: float = 0.5
    key_body_pos: float = 1.0
    key_body_sigma_m: float = 0.15
    #: frame of the key-body position kernel: "heading" = pelvis-relative key bodies, robot and reference
    #: each rotated into its own heading frame (height and tilt of the pelvis do not count); "anchor" =
    #: BeyondMimic/mjlab's body-frame kernel: the reference's key bodies re-anchored at the robot's pelvis
    #: (its xy position and yaw, the reference pelvis height) and compared with the robot's key bodies, so
    #: pelvis height and roll/pitch errors show in every key body
    key_body_frame: str = "heading"
    root_orientation: float = 0.5
    root_orientation_sigma: float = 0.4
    root_lin_vel: float = 0.5
    root_lin_vel_sigma: float = 0.5
    root_ang_vel: float = 0.5
    root_ang_vel_sigma: float = 1.5
    #: world-frame pelvis xy position (the reference is anchored where the episode starts): without it
    #: nothing but the velocity term opposes drift, which `g1 eval`'s world-frame E_mpkpe counts
    root_pos_xy: float = 0.0
    root_pos_xy_sigma_m: float = 0.3
    action_rate: float = -0.05
    joint_limit: float = -1.0
    termination: float = -10.0


@dataclass
class TerminationCfg:
    root_height_error_m: float = 0.25
    orientation_error_rad: float = 0.9
    key_body_error_m: float = 0.6


@dataclass
class ObservationCfg:
    """Deployment observation (passed verbatim to g1_tracker_policy.observation.ObservationConfig)."""

    history_length: int = 5
    proprio_terms: list[str] = field(default_factory=lambda: ["base_ang_vel", "projected_gravity",
                                                               "joint_pos_rel", "joint_vel", "last_action"])
    reference_terms: list[str] = field(default_factory=lambda: ["ref_root_height", "ref_roll_pitch",
                                                                 "ref_lin_vel_heading", "ref_yaw_rate",
                                                                 "ref_joint_pos"])
    #: control periods ahead; empty = motion_server's DEFAULT_FUTURE_OFFSETS (1, 5, ..., 100 = 2 s)
    future_offsets: list[int] = field(default_factory=list)
    #: steps of context the transformer student sees (rolling window of full observations)
    student_context: int = 16


@dataclass
class EnvCfg:
    num_envs: int = 64
    seed: int = 0
    action_scale: float = 0.25
    #: how ``action_scale`` becomes the per-joint scale (written into the artifact): "constant" = the same
    #: ``action_scale`` rad for every joint; "effort_over_kp" = ``action_scale * effort_limit / kp`` per joint
    #: (BeyondMimic/mjlab: 0.25 * effort / stiffness; the effort limits are g1_description.robot's, kp the
    #: gains of ``gains``), so a unit action asks for the same share of each motor's torque
    action_scale_mode: str = "constant"
    #: what the scaled action is added to (the artifact's ``action_base``, g1_tracker_policy.contract):
    #: "offset": q* = default pose + scale * a (GMT); "reference_next_frame": q* = the reference's next
    #: frame + scale * a (a residual on the pass-through baseline: a zero action IS the baseline).
    action_base: str = "offset"
    #: balance feedback prior (g1_train.feedback): the 14 P/D gains of torso tilt -> ankles, knees, hips,
    #: waist, added to every action and exported inside the ONNX; [] = off. Fitted by
    #: scripts/fit_balance_feedback.py.
    balance_feedback: list[float] = field(default_factory=list)
    #: PD gains of the joint targets, written into the exported artifact: "tracking" = g1_description's
    #: robot.KP/KD (armature-derived), "stand" = robot.STAND_KP/STAND_KD (the stiff gains the policy node
    #: stands with and the pass-through baseline uses; within the contract's limits).
    gains: str = "tracking"
    #: motion experts (g1_train.experts): {clip name: an mjlab / BeyondMimic or holosoma tracking export}
    #: whose actions label the student's states in DAgger (`g1-train student` without --teacher); every
    #: loaded clip needs one, the env must simulate with their gains. {} = none (distil our own teacher).
    experts: dict[str, str] = field(default_factory=dict)
    #: position feedback of the experts' labels: an expert is shown the robot's pelvis this many times as
    #: far (world x/y) from the reference pelvis as it is, so its label walks the robot back onto the
    #: clip's path (1 = the expert as trained; its position term was trained under +-0.25 m of noise, and
    #: it barely corrects an offset: README "Position feedback of the labels"). The student observes the true
    #: offset (ref_root_pos_xy) and learns the correction; deployment is unchanged.
    expert_position_gain: float = 1.0
    #: physics backend (g1_train.physics): "batch" = MuJoCo 4's mujoco.batch, one MjModel for all envs,
    #: per-env randomised fields, stepped on a C++ thread pool over the CPU cores (the fastest on CPUs);
    #: "mujoco" = C-MuJoCo, one MjData (+ one 80 MB MjModel copy when randomised) per env in a Python
    #: loop (the only one with per-env heightfield terrain); "warp" = MuJoCo-Warp, one world per env, PD on
    #: the device and graph-captured substeps (GPUs). Observations, rewards, terminations are shared.
    backend: str = "batch"
    #: physics profile (g1_description.physics): "" = the backend's default (batch: actuator_200hz =
    #: 4 x 5 ms steps, PD in MuJoCo position actuators, the mjlab/BeyondMimic setting; mujoco and warp:
    #: drivers_500hz = 10 x 2 ms steps, PD in Python like the sim node's default). The batch backend
    #: runs both; mujoco and warp only drivers_500hz. Written into the exported artifact's provenance.
    physics_profile: str = ""
    #: threads of the batch backend (0 = the CPU cores this process may use / torchrun's local ranks)
    batch_threads: int = 0
    #: warp device: "auto" = cuda:<LOCAL_RANK or 0> when warp sees a CUDA device, else "cpu"; or e.g. "cuda:1"
    warp_device: str = "auto"
    #: MuJoCo-Warp buffer sizes per world (0 = this workspace's defaults: 64 contacts, 256 constraint
    #: rows; C-MuJoCo peaked at 26 / 133 in falling G1 rollouts). An overflow is an error naming these keys.
    warp_nconmax: int = 0
    warp_njmax: int = 0
    #: capture the 10 substeps (+ forward) into a graph replayed each control step (CUDA graph on GPUs,
    #: warp's C++ replay on CPU); false = launch kernels from Python every step (debugging)
    warp_graph: bool = True
    motions: MotionCfg = field(default_factory=MotionCfg)
    sampling: SamplingCfg = field(default_factory=SamplingCfg)
    randomization: RandomizationCfg = field(default_factory=RandomizationCfg)
    rewards: RewardCfg = field(default_factory=RewardCfg)
    terminations: TerminationCfg = field(default_factory=TerminationCfg)
    observation: ObservationCfg = field(default_factory=ObservationCfg)


@dataclass
class ModelCfg:
    kind: str = "moe"                   # teacher: moe | mlp ; student: moe | transformer
    num_experts: int = 4
    expert_hidden: list[int] = field(default_factory=lambda: [256, 128])
    gate_hidden: list[int] = field(default_factory=lambda: [128])
    encoder_channels: list[int] = field(default_factory=lambda: [32, 32])
    encoder_out: int = 64
    # transformer student
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    init_std: float = 0.6               # teacher: initial PPO std; student: fixed DAgger noise
    #: moe: zero the experts' output layers, so the initial mean action is 0 (a residual teacher starts at
    #: its base: the pass-through, plus env.balance_feedback when set)
    zero_output: bool = False


@dataclass
class AlgoCfg:
    #: teacher only: "ppo" (rsl-rl-lib's PPO) or "sac" (g1_train.sac, settings in the ``sac`` section)
    kind: str = "ppo"
    iterations: int = 100
    num_steps_per_env: int = 24
    save_interval: int = 50
    learning_rate: float = 1e-3
    num_learning_epochs: int = 5
    num_mini_batches: int = 4
    gamma: float = 0.99
    lam: float = 0.95
    entropy_coef: float = 0.005
    desired_kl: float = 0.01
    clip_param: float = 0.2
    #: PPO only: rsl-rl's ``use_mixed_precision`` - the update's forward and backward under bf16 autocast
    #: (the rollout and the stored data stay float32). A recipe change: bf16 matmuls round differently, so
    #: the learning differs; off by default and not validated by a training run here (README "Throughput")
    mixed_precision: bool = False
    # distillation
    gradient_length: int = 15
    loss_type: str = "mse"
    #: student only: keep an exponential moving average of the student's parameters, this decay per learning
    #: iteration (0 = off; 0.998 averages over ~500 iterations). The normaliser is taken as it is. Written to
    #: every checkpoint next to the live weights (which DAgger keeps acting and learning with); the slim
    #: policy.pt and ``g1-train export`` use the average (``export --live``: the live weights). Neighbouring
    #: snapshots of one DAgger run differed by up to 16 mm median E_mpkpe (README "Averaged weights")
    weight_average: float = 0.0


@dataclass
class SacCfg:
    """Off-policy teacher (``teacher_algo.kind: sac``, g1_train.sac): FastSAC/FastTD3-style SAC. An
    iteration = ``teacher_algo.num_steps_per_env`` vectorised env steps (progress and checkpoint cadence)."""

    buffer_size: int = 1_000_000        # transitions (all envs together), float32 on ``device``
    batch_size: int = 1024
    updates_per_step: int = 2           # gradient updates per vectorised env step
    learning_starts: int = 10_000       # transitions in the buffer before the first update
    gamma: float = 0.99
    tau: float = 0.01                   # Polyak rate of the target critics
    actor_lr: float = 3e-4
    critic_lr: float = 3e-4
    alpha_lr: float = 3e-4
    alpha_init: float = 0.01
    target_entropy: float | None = None  # None = -num_actions
    reward_scale: float = 1.0
    max_grad_norm: float = 10.0          # 0 = no clipping
    action_bound: float = 1.0            # the env's action = bound * tanh(u)
    critic_hidden: list[int] = field(default_factory=lambda: [512, 256, 128])


@dataclass
class CampaignCfg:
    """Campaign legs (g1_train.campaign): resumable checkpoints on a wall-clock schedule."""

    checkpoint_every_s: float = 300.0   # write a resumable checkpoint at least this often (and at the end)
    keep_checkpoints: int = 0           # keep only the newest N model_<it>.pt of the run (0 = all)


@dataclass
class TrainCfg:
    name: str = "g1_tracker"
    log_root: str = "runs"
    device: str = "cpu"
    #: torch intra-op threads of the learner (``torch.set_num_threads``; 0 = leave torch's default, which
    #: OMP_NUM_THREADS sets). 1: on a 2-core machine shared with the physics threads and other processes,
    #: two threads spin-wait on each other - one PPO update of general.yaml took 4.9-5.6 s with 2 threads
    #: against 0.85-0.91 s with 1 (README "Throughput"). The batch backend's physics threads are its own.
    torch_threads: int = 1
    #: Adam/AdamW with torch's fused kernel (one pass over all parameters per step) instead of its
    #: per-tensor loop on CPU: the same update rule, 13 % less PPO update time here (README "Throughput")
    fused_optimizer: bool = True
    env: EnvCfg = field(default_factory=EnvCfg)
    teacher: ModelCfg = field(default_factory=ModelCfg)
    teacher_algo: AlgoCfg = field(default_factory=AlgoCfg)
    student: ModelCfg = field(default_factory=lambda: ModelCfg(kind="moe", init_std=0.05))
    student_algo: AlgoCfg = field(default_factory=lambda: AlgoCfg(learning_rate=5e-4, num_learning_epochs=1))
    sac: SacCfg = field(default_factory=SacCfg)
    campaign: CampaignCfg = field(default_factory=CampaignCfg)


class ConfigError(ValueError):
    """A YAML config that does not match the dataclasses (unknown key, wrong type)."""


def _build(cls, data: Any, where: str):
    if not dataclasses.is_dataclass(cls):
        return data
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"config {where or '<root>'}: expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"config {where or '<root>'}: unknown keys {unknown} (known: {sorted(names)})")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        sub = f"{where}.{key}" if where else key
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, sub)
        elif getattr(hint, "__origin__", None) is tuple:
            kwargs[key] = tuple(value)
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _merged(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: mappings merge key by key, anything else (lists too) replaces."""
    out = dict(base)
    for key, value in over.items():
        out[key] = _merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_config_yaml(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict:
    """A config file as a dict, with its ``base:`` (a config path relative to this file) merged underneath:
    a variant names only what it changes."""
    path = Path(path).resolve()
    if path in _chain:
        raise ConfigError(f"{path}: base: cycle ({' -> '.join(p.name for p in (*_chain, path))})")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config sections, got {type(data).__name__}")
    base = data.pop("base", None)
    if base is None:
        return data
    base_path = path.parent / str(base)
    if not base_path.is_file():
        raise ConfigError(f"{path}: base: {base!r}: no such file ({base_path})")
    return _merged(read_config_yaml(base_path, (*_chain, path)), data)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> TrainCfg:
    """Load a TrainCfg from YAML (with its ``base:`` chain), then apply ``key.sub=value`` overrides (values
    parsed as YAML)."""
    data: dict = read_config_yaml(path) if path is not None else {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        key, value = item.split("=", 1)
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = yaml.safe_load(value)
    return _build(TrainCfg, data, "")


def to_dict(cfg) -> dict:
    d = dataclasses.asdict(cfg)
    return yaml.safe_load(yaml.safe_dump(d))  # tuples -> lists, plain types only
