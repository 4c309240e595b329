"""Teacher (PPO) and student (DAgger distillation) training on rsl-rl-lib's runners.

The runners, algorithms and storage are rsl-rl's; this module only builds their config dicts from our
typed config, wires our env and model classes in, and adds a progress bar, a run directory with the
resolved config, and resuming from a checkpoint.

Multi-process training (``torchrun --nproc_per_node=N -m g1_train.cli teacher|student ...``) is
rsl-rl-lib's distributed path: every rank simulates its own environments (seed + rank), rank 0's
parameters are broadcast at the start, gradients (and the observation normalisers' statistics) are
all-reduced, and only rank 0 writes the run directory (config, TensorBoard, progress, checkpoints) and
shows a progress bar. ``device: cuda`` gives rank r ``cuda:<LOCAL_RANK>`` and NCCL (rsl-rl's own setup);
``device: cpu`` gives CPU ranks over gloo (rsl-rl hard-codes NCCL; :class:`_CpuRanks` adds this), which
is how it is tested here and how more CPU cores can simulate more environments.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from rsl_rl.runners import DistillationRunner, OnPolicyRunner
from tqdm import tqdm

from . import campaign
from .checkpoint_io import WeightsOnlyLoad, load_checkpoint
from .config import ModelCfg, TrainCfg, to_dict
from .env import TrackingEnv, deployment_observation_config
from .models import transformer_arch_of
from .motions import load_motion_set
from .vecenv import RslRlTrackingEnv


def layout_kwargs(cfg: TrainCfg) -> dict:
    """Where the networks find proprioception and reference frames inside the deployment observation."""
    obs_cfg = deployment_observation_config(cfg.env)
    return {"proprio_size": obs_cfg.history_length * obs_cfg.proprio_frame_size,
            "num_frames": obs_cfg.num_reference_frames, "frame_size": obs_cfg.reference_frame_size}


def model_dict(m: ModelCfg, cfg: TrainCfg, stochastic: bool, learn_std: bool = True) -> dict:
    lay = layout_kwargs(cfg)
    if m.kind == "moe":
        d = {"class_name": "g1_train.models:MotionMoEModel", **lay, "num_experts": m.num_experts,
             "expert_hidden": list(m.expert_hidden), "gate_hidden": list(m.gate_hidden),
             "encoder_channels": list(m.encoder_channels), "encoder_out": m.encoder_out, "obs_normalization": True}
        if m.zero_output:
            d["zero_output"] = True
    elif m.kind == "transformer":
        d = {"class_name": "g1_train.models:CausalTransformerModel", **lay, "d_model": m.d_model,
             "num_layers": m.num_layers, "num_heads": m.num_heads, "encoder_channels": list(m.encoder_channels),
             "encoder_out": m.encoder_out, "obs_normalization": True}
    elif m.kind == "mlp":
        d = {"class_name": "rsl_rl.models:MLPModel", "hidden_dims": list(m.expert_hidden), "activation": "elu",
             "obs_normalization": True}
    else:
        raise ValueError(f"model kind {m.kind!r}: expected moe, transformer or mlp")
    if stochastic:
        d["distribution_cfg"] = {"class_name": "rsl_rl.modules.distribution:GaussianDistribution",
                                 "init_std": m.init_std, "std_type": "scalar", "learn_std": learn_std}
    return d


def teacher_runner_cfg(cfg: TrainCfg) -> dict:
    a = cfg.teacher_algo
    return {
        "num_steps_per_env": a.num_steps_per_env, "save_interval": a.save_interval, "logger": "tensorboard",
        "obs_groups": {"actor": ["policy", "privileged"], "critic": ["policy", "privileged"]},
        "actor": model_dict(cfg.teacher, cfg, stochastic=True),
        "critic": {"class_name": "rsl_rl.models:MLPModel", "hidden_dims": [512, 256, 128], "activation": "elu",
                   "obs_normalization": True},
        "algorithm": {"class_name": "rsl_rl.algorithms:PPO", "learning_rate": a.learning_rate,
                      "num_learning_epochs": a.num_learning_epochs, "num_mini_batches": a.num_mini_batches,
                      "gamma": a.gamma, "lam": a.lam, "entropy_coef": a.entropy_coef, "desired_kl": a.desired_kl,
                      "clip_param": a.clip_param, "schedule": "adaptive", "max_grad_norm": 1.0,
                      "use_mixed_precision": a.mixed_precision},
        "check_for_nan": True, "multi_gpu": None,
    }


def student_runner_cfg(cfg: TrainCfg) -> dict:
    a = cfg.student_algo
    # DAgger: the student acts (with a small fixed exploration noise, init_std), the teacher labels: our
    # PPO teacher, or motion experts whose labels the env computes (env.experts, g1_train.experts).
    expert = bool(cfg.env.experts)
    student = model_dict(cfg.student, cfg, stochastic=True, learn_std=False)
    student_groups = ["policy_context", "context_len"] if cfg.student.kind == "transformer" else ["policy"]
    return {
        "num_steps_per_env": a.num_steps_per_env, "save_interval": a.save_interval, "logger": "tensorboard",
        "obs_groups": {"student": student_groups, "teacher": ["expert_action"] if expert else ["policy", "privileged"]},
        "student": student,
        "teacher": {"class_name": "g1_train.models:ExpertActionModel"} if expert
        else model_dict(cfg.teacher, cfg, stochastic=True),
        "algorithm": {"class_name": "rsl_rl.algorithms:Distillation", "learning_rate": a.learning_rate,
                      "num_learning_epochs": a.num_learning_epochs, "gradient_length": a.gradient_length,
                      "loss_type": a.loss_type, "max_grad_norm": 1.0},
        "check_for_nan": True, "multi_gpu": None,
    }


#: when set (a directory), every rank writes ``rank<R>.json`` there at the end of training: its device,
#: seed, process-group backend and digests of its parameters before and after learning (tests use it)
PARAM_DIGEST_ENV = "G1_TRAIN_PARAM_DIGEST_DIR"


#: the process-group backend resolve_distributed chose for this rank ("gloo" or "nccl"; None = single process)
PG_BACKEND_ENV = "G1_TRAIN_PG_BACKEND"


def rank_device(device: str, local_rank: int, local_world: int, gpu_count: int) -> tuple[str, str]:
    """(this rank's device, process-group backend) under torchrun. ``cpu``: CPU ranks over gloo.
    ``cuda``: one GPU per rank over NCCL (rsl-rl's path, ``cuda:<LOCAL_RANK>``) while there are at least
    as many GPUs as local ranks (or none visible: then torch reports the missing GPU itself); with more
    ranks than GPUs - a 1-GPU machine with 16 cores simulating on all of them - rank r shares
    ``cuda:<r mod GPUs>`` with the others over gloo (NCCL refuses two ranks on one GPU)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return "cpu", "gloo"
    if kind != "cuda":
        raise ValueError(f"device {device!r}: multi-process training runs on 'cuda' or 'cpu' (gloo)")
    if gpu_count <= 0 or local_world <= gpu_count:
        return f"cuda:{local_rank}", "nccl"
    return f"cuda:{local_rank % gpu_count}", "gloo"


def resolve_distributed(cfg: TrainCfg, gpu_count: int | None = None) -> None:
    """Under ``torchrun`` (WORLD_SIZE > 1): the rank's device and backend by :func:`rank_device` (``cuda`` ->
    ``cuda:<LOCAL_RANK>`` + NCCL, or ranks sharing GPUs over gloo; ``cpu`` -> gloo, :class:`_CpuRanks`);
    every rank simulates its own environments with seed + RANK (the torch seed follows it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return
    kind = torch.device(cfg.device).type
    if kind not in ("cuda", "cpu"):
        raise ValueError(f"device {cfg.device!r}: multi-process training (WORLD_SIZE={world}) runs on 'cuda' "
                         "(one GPU per rank, NCCL, or ranks sharing GPUs over gloo) or 'cpu' (gloo)")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    gpus = torch.cuda.device_count() if gpu_count is None else gpu_count
    cfg.device, backend = rank_device(cfg.device, local_rank, local_world, gpus)
    os.environ[PG_BACKEND_ENV] = backend
    cfg.env.seed += int(os.environ.get("RANK", "0"))


def _is_main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


class _CpuRanks:
    """rsl-rl's ``_configure_multi_gpu`` hard-codes NCCL and ``cuda:<LOCAL_RANK>``. For CPU ranks, and for
    ranks sharing a GPU (more ranks than GPUs), this does the same set-up over gloo (rsl-rl's
    broadcast/all-reduce then run for real); one-GPU-per-rank and single-process runs go to rsl-rl
    unchanged."""

    def _configure_multi_gpu(self) -> None:
        world = int(os.getenv("WORLD_SIZE", "1"))
        shared_gpu = torch.device(self.device).type == "cuda" and os.getenv(PG_BACKEND_ENV) == "gloo"
        if world <= 1 or (torch.device(self.device).type != "cpu" and not shared_gpu):
            return super()._configure_multi_gpu()
        if shared_gpu:  # several ranks on one GPU (resolve_distributed): gloo, which handles CUDA tensors
            torch.cuda.set_device(torch.device(self.device))
        self.gpu_world_size, self.is_distributed = world, True
        self.gpu_local_rank = int(os.getenv("LOCAL_RANK", "0"))
        self.gpu_global_rank = int(os.getenv("RANK", "0"))
        if not 0 <= self.gpu_global_rank < world or not 0 <= self.gpu_local_rank < world:
            raise ValueError(f"RANK {self.gpu_global_rank} / LOCAL_RANK {self.gpu_local_rank} outside "
                             f"WORLD_SIZE {world}")
        self.cfg["multi_gpu"] = {"global_rank": self.gpu_global_rank, "local_rank": self.gpu_local_rank,
                                 "world_size": world}
        if not torch.distributed.is_initialized():
            torch.distributed.init_process_group(backend="gloo", rank=self.gpu_global_rank, world_size=world)


class _CampaignCheckpoints:
    """Checkpoints are written by :func:`_with_progress` (every rank's task state gathered, then rank 0
    writes, see :mod:`g1_train.campaign`) at exactly the iterations where rsl-rl's ``learn`` calls
    ``save`` (every ``save_interval`` and the last one) and on the campaign schedule; rsl-rl's own
    ``save`` calls are then duplicates and skipped."""

    saved_iteration: int | None = None

    def save(self, path: str, infos: dict | None = None) -> None:
        if self.saved_iteration == self.current_learning_iteration:
            return
        super().save(path, infos)  # not reached in training; kept for direct use


def set_fused_optimizer(optimizer: torch.optim.Optimizer, fused: bool) -> None:
    """Adam/AdamW's fused kernel (``fused=True``: one pass over all parameters per step) or torch's default
    (``None``: on CPU a Python loop over the parameter tensors). The same update rule. Kept in ``param_groups``, which ``load_state_dict`` overwrites with the
    saved groups: :class:`_FusedOptimizer` sets it again after a load. Other optimisers are left alone."""
    if isinstance(optimizer, (torch.optim.Adam, torch.optim.AdamW)):
        for group in optimizer.param_groups:
            group["fused"], group["foreach"] = (True, False) if fused else (None, None)


class _FusedOptimizer:
    """``use_fused_optimizer(True)`` switches the algorithm's optimiser to the fused kernel, also after every
    ``load`` (a checkpoint's optimiser state brings its own flags: older ones none)."""

    fused_optimizer: bool = False

    def use_fused_optimizer(self, fused: bool) -> None:
        self.fused_optimizer = fused
        set_fused_optimizer(self.alg.optimizer, fused)

    def load(self, *args, **kwargs):
        infos = super().load(*args, **kwargs)
        set_fused_optimizer(self.alg.optimizer, self.fused_optimizer)
        return infos


class TeacherRunner(_CampaignCheckpoints, _CpuRanks, _FusedOptimizer, WeightsOnlyLoad, OnPolicyRunner):
    """rsl-rl's PPO runner (+ CPU ranks over gloo, campaign checkpoints, fused Adam; checkpoints read
    weights-only)."""


class StudentRunner(_CampaignCheckpoints, _CpuRanks, _FusedOptimizer, WeightsOnlyLoad, DistillationRunner):
    """rsl-rl's DAgger distillation runner (+ CPU ranks over gloo, campaign checkpoints, fused Adam;
    checkpoints read weights-only)."""


def apply_learner_settings(runner, cfg: TrainCfg) -> None:
    """The learner's CPU settings from the config: torch threads (``torch_threads``) and fused Adam
    (``fused_optimizer``). Neither changes what is learned: the same networks, data and update rule."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    runner.use_fused_optimizer(cfg.fused_optimizer)


def state_digest(saved: dict) -> str:
    """sha256 over the model state dicts (``*_state_dict`` but the optimiser's) of ``alg.save()`` or a
    checkpoint: equal digests = bit-identical parameters and normaliser statistics."""
    h = hashlib.sha256()
    for key in sorted(k for k in saved if k.endswith("_state_dict") and not k.startswith("optimizer")):
        for name, tensor in sorted(saved[key].items()):
            h.update(f"{key}/{name}".encode())
            h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _finish_distributed(runner, initial_digest: str | None, cfg: TrainCfg) -> None:
    """Optional per-rank digest file (``PARAM_DIGEST_ENV``), then leave the process group."""
    out = os.environ.get(PARAM_DIGEST_ENV)
    if out:
        rank = int(os.environ.get("RANK", "0"))
        info = {"rank": rank, "world_size": int(os.environ.get("WORLD_SIZE", "1")), "device": cfg.device,
                "seed": cfg.env.seed, "num_envs": runner.env.num_envs,
                "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
                "iteration": runner.current_learning_iteration, "initial": initial_digest,
                "final": state_digest(runner.alg.save())}
        Path(out).mkdir(parents=True, exist_ok=True)
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(info))
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def _final_checkpoint(log_dir: Path | None) -> Path | None:
    return latest_checkpoint(log_dir) if log_dir is not None else None  # only rank 0 writes checkpoints


def make_env(cfg: TrainCfg, with_context: bool) -> tuple[TrackingEnv, RslRlTrackingEnv]:
    motions = load_motion_set(cfg.env.motions)
    env = TrackingEnv(cfg.env, motions)
    return env, RslRlTrackingEnv(env, cfg.device, with_context=with_context)


def run_dir(cfg: TrainCfg, stage: str, out: str | None) -> Path:
    path = Path(out) if out else Path(cfg.log_root) / cfg.name / f"{stage}_{time.strftime('%Y%m%d-%H%M%S')}"
    path.mkdir(parents=True, exist_ok=True)
    with open(path / "config.yaml", "w") as f:
        yaml.safe_dump(to_dict(cfg), f, sort_keys=False)
    return path


def latest_checkpoint(path: str | Path) -> Path:
    """``path`` itself if it is a file, else the newest model_*.pt in it."""
    p = Path(path)
    if p.is_file():
        return p
    ckpts = sorted(p.glob("model_*.pt"), key=lambda q: int(q.stem.split("_")[1]))
    if not ckpts:
        raise FileNotFoundError(f"no model_*.pt checkpoint in {p}")
    return ckpts[-1]


class WeightAverage:
    """Exponential moving average of a module's parameters, ``decay`` per :meth:`update` (one learning
    iteration); :meth:`state_dict` is the module's state dict with the averaged parameters in place of the
    live ones and its buffers (the observation normaliser) as they are now. DAgger goes on acting and
    learning with the live weights; the average is what gets exported."""

    def __init__(self, module: torch.nn.Module, decay: float, average: dict | None = None, updates: int = 0):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"student_algo.weight_average {decay}: a decay per iteration in (0, 1), e.g. 0.998 "
                             "(0 turns averaging off)")
        self.decay, self.updates = float(decay), int(updates)
        live = dict(module.named_parameters())
        self.average = {n: p.detach().clone() for n, p in live.items()}
        if average is not None:
            missing = sorted(set(live) - set(average))
            if missing:
                raise ValueError(f"the checkpoint's averaged weights lack {missing[:5]}: not this student")
            for n in live:
                self.average[n].copy_(average[n])

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for n, p in module.named_parameters():
            self.average[n].lerp_(p.detach(), 1.0 - self.decay)
        self.updates += 1

    def state_dict(self, module: torch.nn.Module) -> dict:
        sd = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}
        sd.update({n: a.detach().cpu().clone() for n, a in self.average.items()})
        return sd

    def info(self) -> dict:
        return {"decay": self.decay, "updates": self.updates}


class _LegOver(Exception):
    """Raised at an iteration boundary (after the checkpoint) to end a campaign leg early."""


def _write_checkpoint(runner, cfg: TrainCfg, it: int, totals: dict, reason: str) -> None:
    """Gather every rank's task state; rank 0 writes model_<it>.pt (resumable), policy.pt (slim) and a
    campaign.jsonl record."""
    t0 = time.monotonic()
    states = campaign.gather_rank_states(runner, runner.env.env)
    runner.saved_iteration = it
    log_dir = runner.logger.log_dir
    if states is None or not log_dir:
        return
    saved = runner.alg.save()
    saved["iter"], saved["infos"] = it, None
    average = getattr(runner, "weight_average", None)
    if average is not None:
        saved[campaign.AVERAGE_KEY] = average.state_dict(runner.alg._raw_student)
        saved[campaign.AVERAGE_INFO_KEY] = average.info()
    saved["campaign"] = {"format": campaign.FORMAT, "ranks": states, "env_steps": int(totals["env_steps"]),
                         "wall_s": float(totals["wall_s"]), "leg": int(totals["leg"])}
    path = campaign.atomic_save(saved, Path(log_dir) / f"model_{it}.pt")
    campaign.write_slim_snapshot(Path(log_dir), saved, it, to_dict(cfg))
    campaign.prune_checkpoints(Path(log_dir), cfg.campaign.keep_checkpoints)
    with open(Path(log_dir) / "campaign.jsonl", "a") as f:
        f.write(json.dumps(campaign.leg_record("checkpoint", it=it, path=path.name, reason=reason,
                                               env_steps=int(totals["env_steps"]),
                                               write_s=round(time.monotonic() - t0, 3))) + "\n")


def _with_progress(runner, iterations: int, desc: str, cfg: TrainCfg | None = None,
                   control: campaign.CampaignControl | None = None, totals: dict | None = None) -> str | None:
    """rsl-rl prints a long block per iteration; show a tqdm bar instead and append one JSON line per
    iteration to ``progress.jsonl`` (written as it goes, so a killed run keeps its history).
    TensorBoard gets everything rsl-rl logs. With ``control``, checkpoints and stops the leg on its
    schedule (see :mod:`g1_train.campaign`). Returns why the leg stopped early, or None."""
    bar = tqdm(total=iterations, desc=desc, unit="it", dynamic_ncols=True, disable=not _is_main_rank())
    original = runner.logger.log
    progress = Path(runner.logger.log_dir) / "progress.jsonl" if runner.logger.log_dir else None
    save_interval = runner.cfg["save_interval"]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    totals = totals if totals is not None else {"env_steps": 0, "wall_s": 0.0, "leg": 0}
    stopped: list[str] = []

    def log(*args, **kwargs):
        extras = list(runner.logger.ep_extras)
        with contextlib.redirect_stdout(io.StringIO()):
            original(*args, **kwargs)
        it = int(kwargs.get("it", args[0] if args else 0))
        loss = kwargs.get("loss_dict", {})
        steps = runner.cfg["num_steps_per_env"] * runner.env.num_envs
        seconds = kwargs.get("collect_time", 0) + kwargs.get("learn_time", 0)
        totals["env_steps"] += steps * world
        totals["wall_s"] += seconds
        fps = steps / max(seconds, 1e-9)
        rew, length = runner.logger.rewbuffer, runner.logger.lenbuffer
        entry = {"it": it, "fps": round(fps, 1), "env_steps": int(totals["env_steps"]),
                 "wall_s": round(totals["wall_s"], 1), **{k: round(float(v), 5) for k, v in loss.items()}}
        if len(rew):
            entry["mean_reward"] = round(float(sum(rew) / len(rew)), 4)
            entry["mean_episode_s"] = round(float(sum(length) / len(length)) * runner.env.env.dt, 3)
        rates = [e["/tracking/success_rate"] for e in extras if "/tracking/success_rate" in e]
        if rates:
            entry["train_success"] = round(float(np.mean(rates)), 4)
        average = getattr(runner, "weight_average", None)
        if average is not None:  # after this iteration's update (rsl-rl logs after learning)
            average.update(runner.alg._raw_student)
        if progress is not None:
            with open(progress, "a") as f:
                f.write(json.dumps(entry) + "\n")
        bar.set_postfix({k: v for k, v in entry.items() if k not in ("it", "env_steps", "wall_s")})
        bar.update(1)
        # checkpoints: where rsl-rl would save (every save_interval, the last iteration) + the campaign schedule
        due = it % save_interval == 0 or it == int(kwargs.get("total_it", it + 1)) - 1
        reason = None
        if control is not None:
            timed, reason = control.decide()
            due = due or timed
        if due:
            t0 = time.monotonic()
            last = it == int(kwargs.get("total_it", it + 1)) - 1
            why = reason or ("interval" if it % save_interval == 0 else "end" if last else "timer")
            _write_checkpoint(runner, cfg, it, totals, why)
            if control is not None:
                control.checkpointed(time.monotonic() - t0)
        if reason is not None:
            stopped.append(reason)
            raise _LegOver(reason)

    runner.logger.log = log
    try:
        runner.learn(iterations, init_at_random_ep_len=False)
    except _LegOver:
        if runner.logger.writer is not None:
            runner.logger.stop_logging_writer()
    finally:
        bar.close()
        runner.logger.log = original
    return stopped[0] if stopped else None


def _resolve_out(out: str | None, resume: str | None) -> str | None:
    """``--resume RUN`` without ``--out`` continues in RUN itself (one run directory per campaign)."""
    if out or not resume:
        return out
    p = Path(resume)
    return str(p if p.is_dir() else p.parent)


def _init_student(runner, init: str, device: str) -> None:
    """A new student run starts from another student's weights and observation normaliser (not its
    optimiser, iteration, task state or RNG): growing the expert or clip set keeps what was learned."""
    ckpt = latest_checkpoint(init)
    state = load_checkpoint(ckpt, map_location=device)
    if "student_state_dict" not in state:
        raise ValueError(f"--init {ckpt}: not a student checkpoint (no student_state_dict; a teacher goes to "
                         "--teacher)")
    try:
        runner.alg.load(state, {"student": True}, True)
    except RuntimeError as e:  # torch names every missing / unexpected key and shape mismatch
        detail = " ".join(str(e).split())
        raise ValueError(f"--init {ckpt}: its student does not fit this config's student "
                         f"(student.* and env.observation must be the ones it was trained with): {detail[:600]}") from e
    print(f"student initialised from {ckpt} (iteration {state.get('iter')}; fresh optimiser)")


def _start_average(runner, decay: float, state: dict) -> WeightAverage:
    """The averaged weights: restored from the resumed checkpoint's ``state`` where it has them, else
    started at the live ones."""
    module = runner.alg._raw_student
    if campaign.AVERAGE_KEY in state:
        info = state.get(campaign.AVERAGE_INFO_KEY, {})
        print(f"averaged weights restored ({info.get('updates', '?')} iterations, decay {info.get('decay', '?')}; "
              f"decay now {decay})")
        return WeightAverage(module, decay, state[campaign.AVERAGE_KEY], int(info.get("updates", 0)))
    print(f"averaging the student's weights from here (decay {decay} per iteration)")
    return WeightAverage(module, decay)


def _resume_campaign(runner, ckpt: Path, log_dir: Path | None, state: dict) -> dict:
    """Restore this rank's task state, RNGs and logger statistics from a campaign checkpoint (``state``:
    ``ckpt`` as read by ``load_checkpoint``, weights-only: the format holds tensors and plain types only);
    truncate progress.jsonl after the checkpoint's iteration. Returns the running totals."""
    it = int(state["iter"])
    totals = {"env_steps": 0, "wall_s": 0.0, "leg": 0}
    info: dict = {"env_restored": False, "rng_restored": False}
    if "campaign" in state:
        c = state["campaign"]
        totals = {"env_steps": c["env_steps"], "wall_s": c["wall_s"], "leg": c["leg"] + 1}
        info = campaign.restore_rank_state(runner, runner.env.env, c)
        runner.env.episode_length_buf = torch.as_tensor(runner.env.env.episode_len, device=runner.env.device)
    if log_dir is not None:
        prog = log_dir / "progress.jsonl"
        if prog.is_file():
            keep = [ln for ln in prog.read_text().splitlines() if ln and json.loads(ln).get("it", -1) <= it]
            prog.write_text("".join(ln + "\n" for ln in keep))
        with open(log_dir / "campaign.jsonl", "a") as f:
            f.write(json.dumps(campaign.leg_record("resume", it=it, checkpoint=str(ckpt), **info,
                                                   env_steps=int(totals["env_steps"]),
                                                   wall_s=float(totals["wall_s"]))) + "\n")
    print(f"resumed from {ckpt} at iteration {it + 1} (episodes in flight restored: {info['env_restored']}, "
          f"RNG restored: {info['rng_restored']})")
    return totals


def _run_leg(runner, cfg: TrainCfg, iterations: int, desc: str, log_dir: Path | None, totals: dict,
             max_seconds: float | None, started: float | None, resumed_from: Path | None) -> None:
    control = campaign.CampaignControl(max_seconds, cfg.campaign.checkpoint_every_s, started, cfg.device)
    control.install_signals()
    if log_dir is not None:
        with open(log_dir / "campaign.jsonl", "a") as f:
            f.write(json.dumps(campaign.leg_record(
                "start", leg=int(totals["leg"]), it=runner.current_learning_iteration, iterations=iterations,
                max_seconds=max_seconds, device=cfg.device, world_size=int(os.environ.get("WORLD_SIZE", "1")),
                num_envs=runner.env.num_envs, resumed_from=str(resumed_from) if resumed_from else None)) + "\n")
    try:
        reason = _with_progress(runner, iterations, desc, cfg, control, totals)
    finally:
        control.restore_signals()
    if log_dir is not None:
        with open(log_dir / "campaign.jsonl", "a") as f:
            f.write(json.dumps(campaign.leg_record("stop", it=runner.current_learning_iteration,
                                                   reason=reason or "iterations done",
                                                   env_steps=int(totals["env_steps"]))) + "\n")
    if reason:
        print(f"leg stopped at iteration {runner.current_learning_iteration}: {reason} (checkpoint written)")


def train_teacher(cfg: TrainCfg, out: str | None = None, resume: str | None = None,
                  iterations: int | None = None, max_seconds: float | None = None,
                  started: float | None = None) -> Path | None:
    """Returns the final checkpoint (None on ranks other than 0, which write nothing). ``max_seconds``:
    end the leg (with a resumable checkpoint) so that it finishes within this many seconds of
    ``started`` (time.monotonic(); default: now)."""
    out = _resolve_out(out, resume)
    if cfg.teacher_algo.kind not in TEACHER_ALGOS:
        raise ValueError(f"teacher_algo.kind {cfg.teacher_algo.kind!r}: expected one of {TEACHER_ALGOS}")
    if cfg.teacher_algo.kind == "sac":
        return _train_teacher_sac(cfg, out, resume, iterations, max_seconds, started)
    log_dir = run_dir(cfg, "teacher", out) if _is_main_rank() else None  # config as given, not per rank
    resolve_distributed(cfg)
    torch.manual_seed(cfg.env.seed)
    _, venv = make_env(cfg, with_context=False)
    runner = TeacherRunner(venv, teacher_runner_cfg(cfg), log_dir=log_dir and str(log_dir), device=cfg.device)
    runner.logger.git_status_repos = []  # the repository state is in config.yaml + the artifact provenance
    apply_learner_settings(runner, cfg)
    totals, ckpt = {"env_steps": 0, "wall_s": 0.0, "leg": 0}, None
    if resume:
        ckpt = latest_checkpoint(resume)
        runner.load(str(ckpt), map_location=cfg.device)
        totals = _resume_campaign(runner, ckpt, log_dir, load_checkpoint(ckpt, map_location="cpu"))
        runner.current_learning_iteration += 1  # the checkpoint's iteration is done: continue after it
    initial = state_digest(runner.alg.save()) if os.environ.get(PARAM_DIGEST_ENV) else None
    _run_leg(runner, cfg, iterations or cfg.teacher_algo.iterations, "teacher PPO", log_dir, totals,
             max_seconds, started, ckpt)
    _finish_distributed(runner, initial, cfg)
    return _final_checkpoint(log_dir)


TEACHER_ALGOS = ("ppo", "sac")


def _train_teacher_sac(cfg: TrainCfg, out: str | None, resume: str | None, iterations: int | None,
                       max_seconds: float | None, started: float | None) -> Path:
    """``teacher_algo.kind: sac``: g1_train.sac on the same task (one process; torchrun is PPO's)."""
    from .sac import train_sac

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError("teacher_algo.kind sac runs in one process (no torchrun); use teacher_algo.kind ppo "
                         "for multi-process training")
    ckpt = latest_checkpoint(resume) if resume else None
    log_dir = run_dir(cfg, "teacher", out)
    motions = load_motion_set(cfg.env.motions)
    env = TrackingEnv(cfg.env, motions)
    return train_sac(cfg, env, log_dir, iterations or cfg.teacher_algo.iterations, max_seconds, started, ckpt)


def train_student(cfg: TrainCfg, teacher: str | None, out: str | None = None, resume: str | None = None,
                  iterations: int | None = None, max_seconds: float | None = None,
                  started: float | None = None, init: str | None = None) -> Path | None:
    out = _resolve_out(out, resume)
    log_dir = run_dir(cfg, f"student_{cfg.student.kind}", out) if _is_main_rank() else None
    resolve_distributed(cfg)
    torch.manual_seed(cfg.env.seed)
    _, venv = make_env(cfg, with_context=cfg.student.kind == "transformer")
    runner_cfg = student_runner_cfg(cfg)
    # the resumed checkpoint, read once: architecture, campaign state and averaged weights come from it
    ckpt = latest_checkpoint(resume) if resume else None
    state = load_checkpoint(ckpt, map_location="cpu") if resume else {}
    if resume and cfg.student.kind == "transformer":  # a run of the first (window-only) architecture resumes as one
        runner_cfg["student"]["arch"] = transformer_arch_of(state["student_state_dict"])
    runner = StudentRunner(venv, runner_cfg, log_dir=log_dir and str(log_dir), device=cfg.device)
    runner.logger.git_status_repos = []
    apply_learner_settings(runner, cfg)
    totals = {"env_steps": 0, "wall_s": 0.0, "leg": 0}
    if resume:
        if cfg.env.experts:  # the env labels: no teacher weights to load (rsl-rl would look for an actor)
            runner.load(str(ckpt), load_cfg={"student": True, "optimizer": True, "iteration": True},
                        map_location=cfg.device)
            runner.alg.teacher_loaded = True
        else:  # a distillation checkpoint: student, teacher, optimiser, iteration
            runner.load(str(ckpt), map_location=cfg.device)
        totals = _resume_campaign(runner, ckpt, log_dir, state)
        runner.current_learning_iteration += 1
    elif cfg.env.experts:
        if teacher:
            raise ValueError(f"--teacher {teacher} and env.experts {cfg.env.experts}: one teacher, not two")
        runner.alg.teacher_loaded = True  # the labels come from the env (ExpertActionModel has no parameters)
        print(f"motion experts label the student's states: {cfg.env.experts}")
    else:
        if not teacher:
            raise ValueError("g1-train student needs --teacher RUN (or env.experts: motion experts)")
        tckpt = latest_checkpoint(teacher)
        tstate = load_checkpoint(tckpt, map_location=cfg.device)
        if tstate.get("algorithm") == "sac":
            raise ValueError(f"{tckpt} is a SAC teacher (teacher_algo.kind: sac): DAgger distils PPO teachers "
                             "(rsl-rl actor) only; evaluate a SAC teacher with `g1-train eval --teacher`")
        # a teacher checkpoint or its slim policy.pt (actor + normaliser): only the teacher is taken
        runner.alg.load(tstate, {"teacher": True, "iteration": False}, True)
        print(f"teacher loaded from {tckpt}")
    if init and not resume:
        _init_student(runner, init, cfg.device)
    if resume:  # the config's rate, not the one the optimiser was saved with (DAgger has no schedule)
        for group in runner.alg.optimizer.param_groups:
            group["lr"] = cfg.student_algo.learning_rate
    if cfg.student_algo.weight_average:
        runner.weight_average = _start_average(runner, cfg.student_algo.weight_average, state)
    initial = state_digest(runner.alg.save()) if os.environ.get(PARAM_DIGEST_ENV) else None
    _run_leg(runner, cfg, iterations or cfg.student_algo.iterations, f"student {cfg.student.kind} DAgger",
             log_dir, totals, max_seconds, started, ckpt)
    _finish_distributed(runner, initial, cfg)
    return _final_checkpoint(log_dir)
