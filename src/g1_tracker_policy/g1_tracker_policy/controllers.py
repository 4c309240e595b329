"""Controllers the safety state machine can hand the robot to: an ONNX policy, or a labelled baseline.

No ROS here. A controller turns (robot state, reference window) into joint targets and gains; the
safety state machine decides when it may, and the command sanitiser has the last word.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import onnxruntime as ort

from g1_description import robot
from g1_tracker_policy import contract as c
from g1_tracker_policy.observation import ObservationBuilder

BASELINE_PASSTHROUGH = "baseline:passthrough"


@dataclass
class RobotState:
    """What the robot reports at one tick (SDK joint order, SI units)."""

    joint_pos: np.ndarray          # (29,) rad
    joint_vel: np.ndarray          # (29,) rad/s
    base_quat_wxyz: np.ndarray     # (4,) pelvis orientation (IMU)
    base_ang_vel_body: np.ndarray  # (3,) rad/s, body frame (IMU gyro)
    #: from odometry (sim: ground truth; robot: a state estimator), only for controllers that ask for it
    #: (``needs_odometry``): pelvis position, world, m; pelvis linear velocity, pelvis frame, m/s
    base_pos_world: np.ndarray | None = None
    base_lin_vel_body: np.ndarray | None = None


@dataclass
class ControllerOutput:
    position: np.ndarray           # (29,) rad targets
    kp: np.ndarray
    kd: np.ndarray
    action: np.ndarray             # (29,) raw action (policy units); the baseline reports target - offset
    observation_ms: float = 0.0
    inference_ms: float = 0.0


class Controller(Protocol):
    name: str
    is_baseline: bool

    def reset(self) -> None: ...
    def compute(self, state: RobotState, window, last_action: np.ndarray) -> ControllerOutput: ...
    def observe_command(self, position: np.ndarray, window=None) -> np.ndarray: ...


# --- ONNX Runtime ------------------------------------------------------------------------------------

def make_session(model: str | bytes, intra_op_threads: int = 1) -> ort.InferenceSession:
    """One intra-op thread, sequential execution, full graph optimisation: the lowest-jitter setup on a
    shared CPU (thread pools wake late and contend with the DDS threads)."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model, sess_options=opts, providers=["CPUExecutionProvider"])


class OnnxPolicyRunner:
    """Runs one artifact's model tick by tick, carrying recurrent state for the transformer kinds.

    - mlp / moe / conv_encoder: ``action = f(obs)``.
    - transformer_kv: ``action, present_kv = f(obs, past_kv, past_len)``; present_kv is fed back as
      past_kv next tick, past_len counts valid cached steps (capped at the context length).
    - transformer_window: ``action = f(obs_context, context_len)``; the runner keeps the last C
      observations (oldest first, zero-padded at the front until C steps have been seen).
    ``reset()`` clears the state: at motion start, so a new clip never attends to the previous one.
    """

    def __init__(self, model: str | bytes, kind: str, io: dict, intra_op_threads: int = 1):
        self.kind = kind
        self.io = io
        self.session = make_session(model, intra_op_threads)
        self._obs_width = int(io["inputs"][c.INPUT_OBS][-1])
        self.warm_inference_s = 0.0  # back-to-back (cache-warm) inference time, measured by warm_up
        self.reset()

    def reset(self) -> None:
        self.steps = 0
        self._last_feed: dict | None = None
        if self.kind == "transformer_kv":
            self._kv = np.zeros([int(d) for d in self.io["kv_cache_shape"]], dtype=np.float32)
            self._context = int(self.io["context_length"])
        elif self.kind == "transformer_window":
            self._context = int(self.io["context_length"])
            self._window = np.zeros((1, self._context, self._obs_width), dtype=np.float32)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32).reshape(1, -1)
        if self.kind == "transformer_kv":
            past_len = np.array([min(self.steps, self._context)], dtype=np.int64)
            feed = {c.INPUT_OBS: obs, c.INPUT_PAST_KV: self._kv, c.INPUT_PAST_LEN: past_len}
            action, self._kv = self.session.run([c.OUTPUT_ACTION, c.OUTPUT_PRESENT_KV], feed)
        elif self.kind == "transformer_window":
            self._window[:, :-1] = self._window[:, 1:]
            self._window[:, -1] = obs
            n = np.array([min(self.steps + 1, self._context)], dtype=np.int64)
            feed = {c.INPUT_OBS: self._window.copy(), c.INPUT_CONTEXT_LEN: n}
            (action,) = self.session.run([c.OUTPUT_ACTION], feed)
        else:
            feed = {c.INPUT_OBS: obs}
            (action,) = self.session.run([c.OUTPUT_ACTION], feed)
        self._last_feed = feed
        self.steps += 1
        return np.asarray(action, dtype=np.float32).reshape(-1)

    def prewarm(self, obs: np.ndarray | None = None) -> bool:
        """Re-run the last inference (with ``obs`` in place of the last observation if given) and discard it (no state changes): brings the weights and the
        kernels back into the CPU caches just before a tick. On a shared CPU they are evicted within a
        few ms, and a cold inference is 2-4x slower than a warm one (bench/policy_tick.py)."""
        if self._last_feed is None:
            return False
        feed = self._last_feed
        if obs is not None and self.kind != "transformer_window":
            feed = dict(feed)
            feed[c.INPUT_OBS] = np.asarray(obs, dtype=np.float32).reshape(1, -1)
        self.session.run([c.OUTPUT_ACTION], feed)
        return True

    def run_sequence(self, observations: np.ndarray) -> np.ndarray:
        """Actions for (T, D) observations fed in order from a reset (the golden-vector protocol)."""
        self.reset()
        out = np.stack([self(o) for o in np.asarray(observations, dtype=np.float32)])
        self.reset()
        return out

    def warm_up(self, width: int, runs: int = 20) -> None:
        """First runs allocate arenas and pick kernels; do them before the first real tick."""
        rng = np.random.default_rng(0)
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            self(rng.normal(0, 0.1, width).astype(np.float32))
            times.append(time.perf_counter() - t)
        self.warm_inference_s = float(np.median(times[runs // 2:])) if runs > 1 else float(times[-1])
        self.reset()


def _next_frame_joints(window) -> np.ndarray | None:
    return None if window is None else np.asarray(window.joint_pos[0], dtype=np.float64)


class PolicyController:
    """A trained policy: observation builder + ONNX runner + the artifact's action mapping and gains."""

    is_baseline = False

    def __init__(self, artifact: c.PolicyArtifact, warm_up_runs: int = 20):
        self.artifact = artifact
        self.name = f"policy:{artifact.name}"
        self.builder = ObservationBuilder(artifact.observation)
        #: the policy observes its position relative to the reference (the node then subscribes odometry)
        self.needs_odometry = artifact.observation.needs_odometry
        self.runner = OnnxPolicyRunner(str(artifact.path), artifact.model_kind, artifact.io)
        self.runner.warm_up(artifact.observation.size, warm_up_runs)

    def reset(self) -> None:
        self.builder.reset()
        self.runner.reset()

    def prewarm(self, state: RobotState | None = None, window=None, last_action: np.ndarray | None = None) -> bool:
        """A discarded dry run of :meth:`compute` (observation + inference on these inputs, history
        restored after), or of the inference alone when no inputs are given: pulls the code and the
        weights back into the CPU caches before a tick. Changes no state."""
        obs = None
        if state is not None and window is not None and last_action is not None:
            hist = self.builder.history
            saved = hist.buffer.copy(), hist._needs_fill.copy()
            try:
                obs = self.observation(state, window, last_action)
            except Exception:  # noqa: BLE001 - a dry run; the real tick reports the problem
                obs = None
            finally:
                hist.buffer[...], hist._needs_fill[...] = saved
        return self.runner.prewarm(obs)

    def prepare(self, window) -> None:
        """Precompute what depends on the reference window only (call when a window arrives)."""
        self.builder.prepare(window)

    def accept_window(self, window) -> None:
        """On every reference window: refuse offsets the policy was not trained with, then precompute
        its window-only terms. Raises ContractError / ObservationError."""
        c.check_future_offsets(self.artifact.observation, window.future_offsets)
        self.prepare(window)

    def observe_command(self, position: np.ndarray, window=None) -> np.ndarray:
        """The action that would have commanded ``position`` (``window``: the reference of that tick,
        needed when the policy's actions are residuals on the reference)."""
        return self.artifact.target_to_action(position, _next_frame_joints(window))

    def observation(self, state: RobotState, window, last_action: np.ndarray) -> np.ndarray:
        return self.builder.build(base_quat_wxyz=state.base_quat_wxyz, base_ang_vel_body=state.base_ang_vel_body,
                                  joint_pos=state.joint_pos, joint_vel=state.joint_vel, last_action=last_action,
                                  window=window, base_pos_world=state.base_pos_world)

    def compute(self, state: RobotState, window, last_action: np.ndarray) -> ControllerOutput:
        t0 = time.perf_counter()
        obs = self.observation(state, window, last_action)
        t1 = time.perf_counter()
        action = self.runner(obs)
        t2 = time.perf_counter()
        ref = _next_frame_joints(window) if self.artifact.uses_reference else None
        return ControllerOutput(position=self.artifact.action_to_target(action, ref), kp=self.artifact.kp,
                                kd=self.artifact.kd, action=action.astype(np.float64),
                                observation_ms=(t1 - t0) * 1e3, inference_ms=(t2 - t1) * 1e3)


class PassthroughController:
    """BASELINE, not a tracker: PD targets = the reference's next-frame joints, no feedback at all.

    It exists so that the pipeline runs end to end without a trained policy and so that the evaluator
    has a floor to beat. Uses the stiff STAND gains (the realistic gains cannot even hold a pose).
    """

    name = BASELINE_PASSTHROUGH
    is_baseline = True

    def reset(self) -> None:
        pass

    def observe_command(self, position: np.ndarray, window=None) -> np.ndarray:
        return np.asarray(position, dtype=np.float64) - robot.DEFAULT_JOINT_POS

    def compute(self, state: RobotState, window, last_action: np.ndarray) -> ControllerOutput:
        target = np.asarray(window.joint_pos[0], dtype=np.float64)
        return ControllerOutput(position=target, kp=np.asarray(robot.STAND_KP), kd=np.asarray(robot.STAND_KD),
                                action=target - robot.DEFAULT_JOINT_POS)
