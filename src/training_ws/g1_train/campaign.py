"""Campaign mode: training in legs of bounded wall time that resume exactly where the last one stopped.

A *campaign* is one run directory trained over many sessions and machines (``g1-train teacher
--max-seconds S``, then ``--resume RUN`` in the next session). Every checkpoint ``model_<it>.pt`` is
resumable: besides rsl-rl's networks + optimiser + observation normalisers (``alg.save()``) and the
iteration, it holds a ``campaign`` entry with, per rank,

- the whole task state (:func:`env_state`): every numpy array of the :class:`~g1_train.env.TrackingEnv`
  (episode bookkeeping, randomised parameters, targets, rolling histories, the last observations),
  the GMT sampler (completion levels, worst errors, the current cuts, start-time failure bins), the
  env's numpy ``Generator`` and the simulator state (C-MuJoCo: ``mj_getState(mjSTATE_INTEGRATION)``
  per env - positions, velocities, warm-start accelerations, controls, applied forces - and the
  randomised model fields);
- the RNG states of torch (CPU and CUDA), numpy's global generator and Python's ``random``;
- rsl-rl's episode statistics (reward/length buffers), so the logs continue seamlessly.

So K iterations + resume + K iterations give the parameters of 2K uninterrupted iterations, bit for
bit on CPU with the same seed (tested). The checkpoint holds only tensors and plain Python types
(generator states as JSON strings), so ``torch.load(..., weights_only=True)`` reads it.

A backend that cannot snapshot its simulator (it has neither ``state_dict()``/``load_state_dict()``
nor C-MuJoCo's ``datas``/``models``) still resumes the networks, optimiser, sampler and RNGs; its
environments then start fresh episodes (logged as ``"env_restored": false``), which is the closest
property such a backend allows. The same happens when the number of ranks or environments changed.

:class:`CampaignControl` decides at each iteration boundary whether to checkpoint (every
``campaign.checkpoint_every_s``, at ``--max-seconds`` and on SIGTERM/SIGINT) and whether to stop; under
torchrun the decision is all-reduced so that every rank stops at the same iteration.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import socket
import time
from pathlib import Path

import mujoco
import numpy as np
import torch

FORMAT = 1
#: the per-env model fields CMujocoPhysics.randomise writes (restored with the simulator state)
RANDOMISED_MODEL_FIELDS = ("geom_friction", "body_mass", "body_ipos", "hfield_data")
#: TrackingEnv attributes that are not state (configuration, derived constants, objects handled apart): a
#: resume under another recipe (gains, action scale) takes the new config's values, never the checkpoint's
_ENV_SKIP = {"cfg", "motions", "base_model", "physics", "sampler", "history", "rng", "obs_cfg", "offsets",
             "default_q", "kp", "kd", "effort", "action_scale", "terrain", "num_envs", "dt", "context_len",
             "profile"}


class StateMismatch(ValueError):
    """A saved task state that does not fit this task (other env count, clips or backend)."""


# --- plain-type conversion (weights_only-loadable) ---------------------------------------------------

def _to_plain(x):
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x).copy())
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {str(k): _to_plain(v) for k, v in x.items()}
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return {f.name: _to_plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (list, tuple)):
        return [_to_plain(v) for v in x]
    return x


def _assign(current, saved, where: str):
    """``saved`` (tensors/plain) written into ``current`` in place where it is an array; returns the value
    to store (the same array, or a new one)."""
    if isinstance(saved, torch.Tensor):
        value = saved.numpy()
        if isinstance(current, np.ndarray):
            if current.shape != value.shape:
                raise StateMismatch(f"{where}: saved shape {tuple(value.shape)} != {current.shape}")
            current[...] = value
            return current
        return value.copy()
    if isinstance(saved, dict) and isinstance(current, dict):
        for k, v in saved.items():
            current[k] = _assign(current.get(k), v, f"{where}.{k}")
        return current
    return saved


def generator_state(rng: np.random.Generator) -> str:
    return json.dumps(rng.bit_generator.state)  # 128-bit integers: JSON keeps them exactly


def set_generator_state(rng: np.random.Generator, state: str) -> None:
    rng.bit_generator.state = json.loads(state)


# --- the simulator ----------------------------------------------------------------------------------

def physics_state(physics) -> dict | None:
    """The backend's simulation state, or None when it cannot be captured (see the module docstring)."""
    if hasattr(physics, "state_dict"):
        return {"kind": "backend", "state": _to_plain(physics.state_dict())}
    if not (hasattr(physics, "datas") and hasattr(physics, "models")):
        return None
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    out = {"kind": "c_mujoco", "integration": [], "models": []}
    for m, d in zip(physics.models, physics.datas):
        s = np.empty(mujoco.mj_stateSize(m, spec))
        mujoco.mj_getState(m, d, s, spec)
        out["integration"].append(torch.from_numpy(s))
    if getattr(physics, "per_env_models", False):
        for m in physics.models:
            fields = {f: torch.from_numpy(np.array(getattr(m, f))) for f in RANDOMISED_MODEL_FIELDS}
            fields["gravity"] = torch.from_numpy(np.array(m.opt.gravity))
            out["models"].append(fields)
    return out


def load_physics_state(physics, saved: dict) -> None:
    if saved["kind"] == "backend":
        if not hasattr(physics, "load_state_dict"):
            raise StateMismatch("the checkpoint's simulator state is of a backend with load_state_dict; this one has none")
        physics.load_state_dict(saved["state"])
        return
    if not hasattr(physics, "datas"):
        raise StateMismatch("the checkpoint holds a C-MuJoCo simulator state; this backend is not C-MuJoCo")
    if len(saved["integration"]) != len(physics.datas):
        raise StateMismatch(f"{len(saved['integration'])} saved envs != {len(physics.datas)}")
    for i, fields in enumerate(saved["models"]):
        m = physics.models[i]
        for f in RANDOMISED_MODEL_FIELDS:
            getattr(m, f)[...] = fields[f].numpy()
        m.opt.gravity[:] = fields["gravity"].numpy()
    spec = mujoco.mjtState.mjSTATE_INTEGRATION
    for m, d, s in zip(physics.models, physics.datas, saved["integration"]):
        s = s.numpy()
        if s.size != mujoco.mj_stateSize(m, spec):
            raise StateMismatch(f"saved simulator state size {s.size} != {mujoco.mj_stateSize(m, spec)}")
        mujoco.mj_setState(m, d, s, spec)
        mujoco.mj_forward(m, d)


# --- the task -----------------------------------------------------------------------------------------

#: the transformer student's rolling context (C x the observation per env: most of the task state's
#: bytes); saved only when the runner reads it (``with_context``), the teacher and MoE student never do
_CONTEXT = ("context", "policy_context")


def env_state(env, with_context: bool = True) -> dict:
    """Everything a TrackingEnv needs to continue exactly (plain types / tensors)."""
    arrays = {k: v for k, v in vars(env).items() if k not in _ENV_SKIP and (
        isinstance(v, (np.ndarray, dict, int, float, np.generic)) or dataclasses.is_dataclass(v))}
    if not with_context:
        arrays = {k: ({kk: vv for kk, vv in v.items() if kk not in _CONTEXT} if isinstance(v, dict) else v)
                  for k, v in arrays.items() if k not in _CONTEXT}
    return {"num_envs": env.num_envs, "clips": list(env.motions.names), "rng": generator_state(env.rng),
            "sampler": _to_plain(env.sampler.state_dict()), "arrays": _to_plain(arrays),
            "history": _to_plain({k: v for k, v in vars(env.history).items() if isinstance(v, np.ndarray)}),
            "physics": physics_state(env.physics)}


def load_env_state(env, saved: dict, with_episodes: bool = True) -> bool:
    """Restore the sampler and the env's generator; with ``with_episodes`` also the episodes in flight
    (arrays, histories, simulator). Returns whether the episodes were restored. Raises StateMismatch
    when the saved clips differ (the sampler's state would belong to other clips)."""
    if list(saved["clips"]) != list(env.motions.names):
        raise StateMismatch(f"the checkpoint was trained on other clips ({len(saved['clips'])} vs "
                            f"{len(env.motions.names)}; first difference: "
                            f"{next((a, b) for a, b in zip(saved['clips'] + [None], env.motions.names + [None]) if a != b)})")
    env.sampler.load_state_dict(saved["sampler"])
    set_generator_state(env.rng, saved["rng"])
    if not with_episodes or saved["physics"] is None or saved["num_envs"] != env.num_envs:
        return False
    load_physics_state(env.physics, saved["physics"])
    for k, v in saved["arrays"].items():
        if k in _ENV_SKIP:  # a checkpoint written before a key became config-derived
            continue
        cur = getattr(env, k, None)
        if dataclasses.is_dataclass(cur):
            for f, val in v.items():
                setattr(cur, f, _assign(getattr(cur, f), val, f"env.{k}.{f}"))
        else:
            setattr(env, k, _assign(cur, v, f"env.{k}"))
    for k, v in saved["history"].items():
        setattr(env.history, k, _assign(getattr(env.history, k), v, f"env.history.{k}"))
    return True


# --- RNGs and rsl-rl's episode statistics -------------------------------------------------------------

def rng_state() -> dict:
    np_state = np.random.get_state(legacy=False)
    np_state["state"]["key"] = np_state["state"]["key"].tolist()
    out = {"torch": torch.get_rng_state(), "numpy": json.dumps(np_state), "python": json.dumps(random.getstate())}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_state(saved: dict) -> None:
    torch.set_rng_state(saved["torch"])
    np_state = json.loads(saved["numpy"])
    np_state["state"]["key"] = np.array(np_state["state"]["key"], dtype=np.uint32)
    np.random.set_state(np_state)
    py = json.loads(saved["python"])
    random.setstate((py[0], tuple(py[1]), py[2]))
    if "cuda" in saved and torch.cuda.is_available() and len(saved["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved["cuda"])


def logger_state(logger) -> dict:
    return {"rewbuffer": list(logger.rewbuffer), "lenbuffer": list(logger.lenbuffer),
            "cur_reward_sum": logger.cur_reward_sum.detach().cpu().clone(),
            "cur_episode_length": logger.cur_episode_length.detach().cpu().clone(),
            "tot_timesteps": int(logger.tot_timesteps), "tot_time": float(logger.tot_time)}


def load_logger_state(logger, saved: dict) -> None:
    logger.rewbuffer.clear(), logger.rewbuffer.extend(saved["rewbuffer"])
    logger.lenbuffer.clear(), logger.lenbuffer.extend(saved["lenbuffer"])
    if saved["cur_reward_sum"].shape == logger.cur_reward_sum.shape:
        logger.cur_reward_sum.copy_(saved["cur_reward_sum"])
        logger.cur_episode_length.copy_(saved["cur_episode_length"])
    logger.tot_timesteps, logger.tot_time = saved["tot_timesteps"], saved["tot_time"]


def rank_state(runner, env) -> dict:
    return {"env": env_state(env, with_context=getattr(runner.env, "with_context", True)), "rng": rng_state(),
            "logger": logger_state(runner.logger)}


def _world() -> tuple[int, int]:
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def gather_rank_states(runner, env) -> list[dict] | None:
    """Every rank's state on rank 0 (a list by rank), None on the other ranks."""
    mine = rank_state(runner, env)
    rank, world = _world()
    if world <= 1 or not torch.distributed.is_initialized():
        return [mine]
    allstates = [None] * world
    torch.distributed.all_gather_object(allstates, mine)
    return allstates if rank == 0 else None


def restore_rank_state(runner, env, campaign: dict) -> dict:
    """This rank's part of a checkpoint's ``campaign`` entry; returns what was restored (logged)."""
    rank, world = _world()
    states = campaign["ranks"]
    same_world = len(states) == world
    mine = states[rank % len(states)]
    info = {"saved_world_size": len(states)}
    try:
        restored = load_env_state(env, mine["env"], with_episodes=same_world)
        sampler = True
    except ValueError as exc:  # other clips or sampler settings: the networks continue, the task starts afresh
        print(f"campaign: task state not restored ({exc}); sampler and episodes start afresh")
        restored, sampler = False, False
        info["task_state_mismatch"] = str(exc)[:300]
    rng = same_world and sampler
    if rng:  # other rank counts or another task: each rank keeps its own seed-derived RNG streams
        set_rng_state(mine["rng"])
        load_logger_state(runner.logger, mine["logger"])
    return {"env_restored": restored, "sampler_restored": sampler, "rng_restored": rng, **info}


# --- slim policy snapshot -------------------------------------------------------------------------------

SLIM_NAME = "policy.pt"


#: a student checkpoint's averaged weights (train.WeightAverage, AlgoCfg.weight_average) and their settings
AVERAGE_KEY, AVERAGE_INFO_KEY = "student_average_state_dict", "weight_average"


def write_slim_snapshot(run_dir: Path, saved: dict, iteration: int, config: dict) -> Path:
    """``policy.pt``: only what acting needs - the actor (teacher) or student network with its observation
    normaliser - plus the iteration and the config. Small enough to commit; ``--teacher policy.pt``
    distils from it, ``export`` exports a student's."""
    key = "student_state_dict" if "student_state_dict" in saved else "actor_state_dict"
    weights = saved.get(AVERAGE_KEY, saved[key])  # a student's averaged weights where it keeps them
    slim = {key: {k: v.detach().cpu().clone() for k, v in weights.items()}, "iter": int(iteration), "infos": None,
            "slim": True, "config": config}
    if AVERAGE_KEY in saved:
        slim["weights"] = {"average": saved.get(AVERAGE_INFO_KEY, {})}
    return atomic_save(slim, Path(run_dir) / SLIM_NAME)


def atomic_save(obj, path: Path) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)
    return path


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Keep the newest ``keep`` model_<it>.pt (0 = keep all)."""
    if keep <= 0:
        return
    ckpts = sorted(Path(run_dir).glob("model_*.pt"), key=lambda q: int(q.stem.split("_")[1]))
    for p in ckpts[:-keep]:
        p.unlink(missing_ok=True)


# --- when to checkpoint and stop ------------------------------------------------------------------------

class CampaignControl:
    """Iteration-boundary decisions: checkpoint every ``checkpoint_every_s``; stop (after a checkpoint)
    when the next iteration would not end before ``max_seconds`` after ``started`` or on SIGTERM/SIGINT.
    A second SIGINT interrupts at once (KeyboardInterrupt)."""

    def __init__(self, max_seconds: float | None, checkpoint_every_s: float, started: float | None = None,
                 device: str = "cpu"):
        self.max_seconds = max_seconds
        self.checkpoint_every_s = checkpoint_every_s
        self.started = time.monotonic() if started is None else started
        self.last_checkpoint = time.monotonic()
        self.last_boundary = time.monotonic()
        self.iteration_s = 0.0      # the longest recent iteration (budget estimate)
        self.checkpoint_s = 0.0     # the longest checkpoint write so far
        self.signal: str | None = None
        self.device = device
        self._old = {}

    def install_signals(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                self._old[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread (tests calling train_* from a thread)
                pass

    def restore_signals(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _on_signal(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signal.Signals(signum).name

    def decide(self) -> tuple[bool, str | None]:
        """(checkpoint now, stop reason or None), the same on every rank."""
        now = time.monotonic()
        self.iteration_s = max(0.8 * self.iteration_s, now - self.last_boundary)
        self.last_boundary = now
        stop = 0
        if self.signal is not None:
            stop = 2
        elif self.max_seconds is not None and \
                now - self.started + self.iteration_s * 1.5 + self.checkpoint_s + 1.0 > self.max_seconds:
            stop = 1
        ckpt = int(stop > 0 or now - self.last_checkpoint >= self.checkpoint_every_s)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and torch.distributed.is_initialized():
            flags = torch.tensor([stop, ckpt], dtype=torch.int64, device=self.device)
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
            stop, ckpt = int(flags[0]), int(flags[1])
        reason = {0: None, 1: "max_seconds", 2: f"signal {self.signal or '(another rank)'}"}[stop]
        return bool(ckpt), reason

    def checkpointed(self, seconds: float) -> None:
        self.last_checkpoint = time.monotonic()
        self.checkpoint_s = max(self.checkpoint_s, seconds)


def leg_record(event: str, **kw) -> dict:
    return {"event": event, "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "host": socket.gethostname(), **kw}
