"""Motion experts as DAgger teachers: a policy trained elsewhere (an mjlab / BeyondMimic or holosoma
tracking export, ``g1_tracker_policy.external``) labels every state the student visits.

Humanoid-GPT distils one student from per-motion experts; here an expert is any artifact the policy node
can already run unchanged. Its observation is built by the deployment's own
:class:`~g1_tracker_policy.external_controller.ExternalObservation` (the code the policy node runs for
it: one definition of every term) from the training env's state - pelvis IMU orientation and gyro,
the pelvis position (odometry in the graph), measured joints, the reference the env plays (frame 0 = the
next frame, as the motion server's window) and the env's previous action. Its raw action becomes a joint
target through the artifact's own default pose and action scale, and that target becomes a label in the
student's action space: ``(target - action_base) / action_scale`` (minus the balance feedback prior when
the student has one), so a student that reproduces the label commands exactly the expert's target.

The student simulates with the expert's PD gains (checked when the env is built: a label means nothing
under other gains) and with the same physics profile ``g1 track`` uses. An expert is only a teacher for
the motions it was trained on: ``env.experts`` maps every clip to its expert (several experts distil into
one student), and a clip without one is an error.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from g1_tracker_policy import external as ext
from g1_tracker_policy.controllers import RobotState
from g1_tracker_policy.external_controller import ExternalObservation, ExternalPolicyController
from g1_tracker_policy.observation import quat_to_rotmat

#: gains may differ by rounding in the artifact's metadata (mjlab writes 4-6 digits)
GAIN_RTOL = 1e-3


class ExternalExpert:
    """One external artifact: the policy node's controller for it (its ONNX Runtime call) and one
    observation builder per env (history terms are per robot)."""

    def __init__(self, path: str | Path, num_envs: int, kp: np.ndarray, kd: np.ndarray):
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"env.experts: {path} does not exist")
        art = ext.load_policy(path)
        if not isinstance(art, ext.ExternalArtifact):
            raise ValueError(f"env.experts: {path} is not an mjlab/holosoma export (formats "
                             f"{ext.EXTERNAL_FORMATS}); distil our own teachers with --teacher")
        for name, ours, theirs in (("kp", kp, art.kp), ("kd", kd, art.kd)):
            if not np.allclose(ours, theirs, rtol=GAIN_RTOL, atol=1e-3):
                worst = int(np.argmax(np.abs(ours - theirs)))
                raise ValueError(f"env.experts {path.name}: its {name} differs from the env's (env.gains) at joint "
                                 f"{worst}: {theirs[worst]:.4g} vs {ours[worst]:.4g}; the student must simulate "
                                 "with the expert's gains (env.gains: tracking for mjlab/BeyondMimic exports)")
        self.artifact = art
        self.controller = ExternalPolicyController(art, warm_up_runs=1)  # the policy node's model call
        self.builders = [ExternalObservation(art) for _ in range(num_envs)]

    def target(self, i: int, state: RobotState, window, last_target: np.ndarray | None) -> np.ndarray:
        """Env ``i``'s joint target (SDK order); ``last_target`` = the target applied last step (None at
        an episode start: a zero previous action, as the exporters reset it)."""
        art = self.artifact
        prev = np.zeros(art.default_joint_pos.size) if last_target is None else art.target_to_action(last_target)
        obs = self.builders[i].build(state, window, prev)
        return art.action_to_target(self.controller.run_model(obs, ExternalPolicyController.time_step(window)))


def shown_position(root_pos: np.ndarray, ref_root_pos: np.ndarray, gain: float) -> np.ndarray:
    """(N, 3) the pelvis position an expert is shown: moved away from the reference pelvis in x/y so that its
    offset is ``gain`` times the true one (height unchanged). Every position term an expert computes (its
    anchor body's offset from the reference's) grows by ``(gain - 1)`` times the pelvis offset; nothing else
    it observes depends on the world position."""
    if gain == 1.0:
        return root_pos
    shown = np.array(root_pos, dtype=np.float64, copy=True)
    shown[:, :2] -= (gain - 1.0) * (np.asarray(ref_root_pos)[:, :2] - shown[:, :2])
    return shown


def base_clip_name(name: str) -> str:
    """The clip a loaded motion came from (``B_Fence1@stand_start`` -> ``B_Fence1``)."""
    return name.split("@", 1)[0]


class MotionExperts:
    """``env.experts`` = {clip name: expert artifact}: every loaded clip (and its stand-start and
    time-scaled copies) is labelled by its own expert. Mirrored copies are refused: an expert never saw
    its motion mirrored."""

    def __init__(self, experts: dict[str, str], clip_names: list[str], num_envs: int, kp: np.ndarray,
                 kd: np.ndarray, position_gain: float = 1.0):
        if not (np.isfinite(position_gain) and position_gain >= 1.0):
            raise ValueError(f"env.expert_position_gain: {position_gain!r}; expected a number >= 1 (1 = the expert "
                             "as trained)")
        #: the experts are shown the pelvis x/y offset from the reference times this (env.expert_position_gain)
        self.position_gain = float(position_gain)
        if not isinstance(experts, dict) or not experts:
            raise ValueError(f"env.experts: expected a mapping {{clip name: policy.onnx}}, got {experts!r}")
        mirrored = [n for n in clip_names if "@mirror" in n]
        if mirrored:
            raise ValueError(f"env.experts: mirrored clips {mirrored[:3]} have no expert (an expert tracks its motion "
                             "as trained); set env.motions.mirror: false")
        uncovered = sorted({base_clip_name(n) for n in clip_names} - set(experts))
        if uncovered:
            raise ValueError(f"env.experts: no expert for the clips {uncovered[:6]} (every loaded clip needs one; "
                             f"experts given for {sorted(experts)})")
        paths = sorted({str(v) for v in experts.values()})
        self.experts = [ExternalExpert(p, num_envs, kp, kd) for p in paths]
        self.names = [Path(p).name for p in paths]
        self.of_clip = np.array([paths.index(str(experts[base_clip_name(n)])) for n in clip_names])
        self.last_target = np.zeros((num_envs, len(kp)))
        self.fresh = np.ones(num_envs, dtype=bool)

    def reset(self, ids: np.ndarray) -> None:
        """New episodes in envs ``ids``: fresh observation histories, zero previous action."""
        for e in self.experts:
            for i in np.asarray(ids).ravel():
                e.builders[int(i)].reset()
        self.fresh[ids] = True

    def observe_commanded(self, target: np.ndarray) -> None:
        """The joint targets commanded this step, before the env clips them to the joint limits: the next
        observation's ``actions`` term is the raw action that commands them (the expert's own action
        whenever it acted), as the policy node keeps an external policy's raw output."""
        self.last_target[:] = target
        self.fresh[:] = False

    def targets(self, state, ref, clip: np.ndarray) -> np.ndarray:
        """(N, 29) the experts' joint targets (SDK order) for the env state ``state`` (RobotStateBatch), the
        reference ``ref`` (frames from the next one on, (N, F, ...), like the motion server's window) and
        the clip each env plays."""
        n = self.last_target.shape[0]
        out = np.empty_like(self.last_target)
        lin_vel_body = np.einsum("nji,nj->ni", quat_to_rotmat(state.root_quat), state.root_lin_vel)  # R^T v
        base_pos = shown_position(state.root_pos, ref.root_pos[:, 0], self.position_gain)
        for i in range(n):
            rs = RobotState(joint_pos=state.joint_pos[i], joint_vel=state.joint_vel[i],
                            base_quat_wxyz=state.imu_quat[i], base_ang_vel_body=state.imu_gyro[i],
                            base_pos_world=base_pos[i], base_lin_vel_body=lin_vel_body[i])
            window = SimpleNamespace(joint_pos=ref.joint_pos[i], joint_vel=ref.joint_vel[i],
                                     root_pos=ref.root_pos[i], root_quat_wxyz=ref.root_quat_wxyz[i],
                                     times_s=ref.times_s[i])
            out[i] = self.experts[self.of_clip[clip[i]]].target(i, rs, window,
                                                                None if self.fresh[i] else self.last_target[i])
        return out
