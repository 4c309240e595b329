"""``env.backend: batch``: MuJoCo 4's ``mujoco.batch`` - one MjModel, N simulations, a C++ thread pool.

One :class:`mujoco.batch.Batch` holds every env's state as a row of one array; a call steps the chosen
simulations on ``nthread`` threads with the GIL released (results bit-identical to a loop over one
MjData per env, at any thread count). No per-env model copies: the randomised model fields
(floor/feet friction, torso mass and CoM, gravity, PD gains) get one row per env through
``Batch.expand`` and ``Batch.set_const`` recomputes what MuJoCo derives from them. Memory is one model
(~80 MB, mostly meshes) plus one MjData per thread, whatever the number of envs.

The physics profile (``g1_description.physics``) decides how a control tick is simulated:

- ``actuator_200hz`` (the default here): 4 x 5 ms steps, the joint PD inside MuJoCo's position actuators
  (per env: gain = strength * kp, bias = [0, -strength * kp, -strength * kd], force clamped to the
  effort limit by ``actuator_forcerange``); the PD costs no Python per physics step.
- ``drivers_500hz``: 10 x 2 ms steps of torque motors, the PD computed in numpy for all envs before each
  step (exactly the C-MuJoCo backend's and the sim node's formula).

Action delay (``delay``, in the profile's physics steps) is exact in both: an env keeps the previous
target for its first ``delay`` physics steps. Envs are stepped together between the steps at which
some env switches target, so a tick is at most ``substeps`` batch calls.

Heightfield terrain cannot be varied per env without model copies (``hfield_data`` is asset data,
shared by every simulation of a batch): a config that asks for it is refused.
"""

from __future__ import annotations

import os
from typing import Sequence

import mujoco
import mujoco.batch
import numpy as np

from g1_description import physics as profiles

from .physics import NQ0, NV0, ModelIds, mat_to_quat_wxyz


def default_threads() -> int:
    """The CPU cores this process may use, shared among the local torchrun ranks."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


class BatchPhysics:
    """All envs in one ``mujoco.batch.Batch`` of the training model (see the module docstring)."""

    name = "batch"

    def __init__(self, model: mujoco.MjModel, num_envs: int, key_body_names: Sequence[str], randomised: bool,
                 profile: str | profiles.PhysicsProfile, nthread: int = 0):
        self.profile = profiles.get_profile(profile)
        if model.nhfield:
            raise ValueError(
                "env.backend: batch runs every env on one MjModel, and a heightfield's data is asset data that "
                "mujoco.batch cannot vary per simulation: set env.randomization.terrain_height_m: 0, or use "
                "env.backend: mujoco (per-env model copies, ~80 MB each) for terrain randomisation")
        if abs(model.opt.timestep - self.profile.timestep_s) > 1e-12:
            raise ValueError(f"batch physics: the model's timestep {model.opt.timestep} is not profile "
                             f"{self.profile.name}'s {self.profile.timestep_s}; build it with that profile")
        self.actuator_pd = self.profile.pd == profiles.PD_ACTUATOR
        is_position = model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE
        if self.actuator_pd != bool(np.all(is_position)):
            raise ValueError(f"batch physics: profile {self.profile.name} needs "
                             f"{'position actuators' if self.actuator_pd else 'torque motors'}; the model has "
                             "the other kind (build it with g1_description.mjcf.build_sim_spec(profile=...))")
        self.base_model = model
        self.num_envs = num_envs
        self.ids = ModelIds(model, key_body_names)
        self.nthread = nthread or default_threads()
        self.batch = b = mujoco.batch.Batch(model, num_envs, self.nthread)
        self.qpos, self.qvel, self.ctrl = b.bind("qpos"), b.bind("qvel"), b.bind("ctrl")
        self.xpos, self.xmat = b.bind("xpos"), b.bind("xmat")
        self.site_xmat, self.sensordata = b.bind("site_xmat"), b.bind("sensordata")
        self.randomised = randomised
        if randomised:
            self.friction = b.expand("geom_friction")
            self.body_mass = b.expand("body_mass")
            self.body_ipos = b.expand("body_ipos")
            self.gravity = b.expand("opt.gravity")
        self._nominal = (model.body_mass[self.ids.torso_id], model.body_ipos[self.ids.torso_id].copy())
        if self.actuator_pd:
            self.gainprm = b.expand("actuator_gainprm")
            self.biasprm = b.expand("actuator_biasprm")
            self._forcerange = None
            self._gain_key: tuple | None = None

    # --- model parameters ------------------------------------------------------------------------------
    def randomise(self, ids, friction, mass_add, com_offset, gravity, terrain=None) -> None:
        if not self.randomised:
            raise RuntimeError("BatchPhysics.randomise: built without randomisation")
        if terrain is not None:
            raise ValueError("env.backend: batch cannot randomise heightfield terrain (one shared model)")
        ids = np.asarray(ids)
        mass, ipos = self._nominal
        torso = self.ids.torso_id
        self.friction[ids, :, 0] = np.asarray(friction)[:, None]
        self.body_mass[ids, torso] = mass + np.asarray(mass_add)
        self.body_ipos[ids, torso] = ipos + np.asarray(com_offset)
        self.gravity[ids] = gravity
        # masses and gravity feed mj_setConst's derived constants (like sim_core after its randomisation)
        self.batch.set_const(np.sort(ids))

    def _set_gains(self, strength: np.ndarray, kp: np.ndarray, kd: np.ndarray, effort: np.ndarray) -> None:
        key = (strength.tobytes(), np.asarray(kp).tobytes(), np.asarray(kd).tobytes(), np.asarray(effort).tobytes())
        if key == self._gain_key:
            return
        skp, skd = strength * kp, strength * kd
        self.gainprm[:, :, 0] = skp
        self.biasprm[:, :, 0] = 0.0
        self.biasprm[:, :, 1] = -skp
        self.biasprm[:, :, 2] = -skd
        effort = np.asarray(effort, dtype=np.float64)
        if not np.array_equal(effort, self.base_model.actuator_forcerange[:, 1]):
            if self._forcerange is None:
                self._forcerange = self.batch.expand("actuator_forcerange")
            self._forcerange[..., 0], self._forcerange[..., 1] = -effort, effort
        self._gain_key = key

    # --- state -------------------------------------------------------------------------------------------
    def reset_envs(self, ids, qpos, qvel) -> None:
        ids = np.asarray(ids)
        order = np.argsort(ids)
        ids = ids[order]
        b = self.batch
        b.reset(ids, stage=mujoco.mjtStage.mjSTAGE_NONE)
        self.qpos[ids] = np.asarray(qpos)[order]
        self.qvel[ids] = np.asarray(qvel)[order]
        b.forward(ids)

    def step(self, new_target, prev_target, delay, strength, kp, kd, effort) -> None:
        b, n_sub = self.batch, self.profile.substeps
        delay = np.minimum(np.asarray(delay), n_sub)
        delayed = delay > 0
        # the last call also computes positions, velocities and sensors at the new state: body poses and the
        # gyro of the state at this tick (what C-MuJoCo's and the sim node's closing mj_forward give)
        vel = mujoco.mjtStage.mjSTAGE_VEL
        if self.actuator_pd:
            self._set_gains(np.asarray(strength, dtype=np.float64), kp, kd, effort)
            self.ctrl[:] = np.where(delayed[:, None], prev_target, new_target)
            # step every env up to the next substep at which some env switches to its new target
            done = 0
            for switch in np.unique(delay[delayed & (delay < n_sub)]):  # delay >= n_sub: old target all tick
                b.step(nstep=int(switch - done))
                done = int(switch)
                now = delay == switch
                self.ctrl[now] = new_target[now]
            b.step(nstep=n_sub - done, stage=vel)
        else:
            for k in range(n_sub):
                tgt = np.where((k < delay)[:, None], prev_target, new_target)
                tau = strength * (kp * (tgt - self.qpos[:, NQ0:]) - kd * self.qvel[:, NV0:])
                self.ctrl[:] = np.clip(tau, -effort, effort)
                b.step(stage=vel if k == n_sub - 1 else mujoco.mjtStage.mjSTAGE_NONE)

    #: MjData fields that make up the simulation state (mjSTATE_INTEGRATION's, less the unused mocap/plugin)
    STATE_FIELDS = ("time", "qpos", "qvel", "act", "ctrl", "qacc_warmstart", "qfrc_applied", "xfrc_applied",
                    "history", "userdata")

    def _expanded_fields(self) -> dict[str, np.ndarray]:
        fields = {}
        if self.randomised:
            fields.update(geom_friction=self.friction, body_mass=self.body_mass, body_ipos=self.body_ipos,
                          gravity=self.gravity)
        if self.actuator_pd:
            fields.update(actuator_gainprm=self.gainprm, actuator_biasprm=self.biasprm)
            if self._forcerange is not None:
                fields["actuator_forcerange"] = self._forcerange
        return fields

    def state_dict(self) -> dict:
        """Everything needed to continue bit for bit (campaign checkpoints): each sim's integration state
        and the per-sim model fields this backend expanded (randomisation, actuator gains)."""
        b = self.batch
        state = {f: np.array(b.bind(f)) for f in self.STATE_FIELDS}
        model = {f: np.array(v) for f, v in self._expanded_fields().items()}
        return {"num_envs": self.num_envs, "profile": self.profile.name, "state": state, "model": model,
                "gain_key": None if self._gain_key is None else [k.hex() for k in self._gain_key]}

    def load_state_dict(self, saved: dict) -> None:
        if saved["num_envs"] != self.num_envs or saved["profile"] != self.profile.name:
            raise ValueError(f"batch physics state of {saved['num_envs']} envs / profile {saved['profile']!r} "
                             f"cannot be loaded into {self.num_envs} envs / {self.profile.name!r}")
        if "actuator_forcerange" in saved["model"] and self._forcerange is None:
            self._forcerange = self.batch.expand("actuator_forcerange")
        fields = self._expanded_fields()
        if set(saved["model"]) != set(fields):
            raise ValueError(f"batch physics state expands {sorted(saved['model'])}, this backend "
                             f"{sorted(fields)} (randomisation or PD mode differ)")
        for f, v in saved["model"].items():
            fields[f][...] = np.asarray(v)
        all_ids = np.arange(self.num_envs)
        if self.randomised:
            self.batch.set_const(all_ids)
        for f, v in saved["state"].items():
            self.batch.bind(f)[...] = np.asarray(v)
        key = saved.get("gain_key")
        self._gain_key = None if key is None else tuple(bytes.fromhex(k) for k in key)
        # positions, velocities and sensors of the restored state (what step's last stage computes); the
        # integration state itself is untouched by a forward pass
        self.batch.forward(all_ids)

    def push(self, ids, dv_xy) -> None:
        self.qvel[np.asarray(ids), :2] += dv_xy

    def gather(self, state, ids) -> None:
        s, mi = state, self.ids
        ids = np.asarray(ids)
        qpos, qvel = self.qpos[ids], self.qvel[ids]
        s.root_pos[ids] = qpos[:, :3]
        s.root_quat[ids] = qpos[:, 3:7]
        s.root_lin_vel[ids] = qvel[:, :3]
        rot = self.xmat[ids, mi.pelvis_id].reshape(-1, 3, 3)
        s.root_ang_vel[ids] = np.einsum("nij,nj->ni", rot, qvel[:, 3:6])
        s.imu_quat[ids] = mat_to_quat_wxyz(self.site_xmat[ids, mi.imu_site])
        s.imu_gyro[ids] = self.sensordata[ids, mi.gyro_adr:mi.gyro_adr + 3]
        s.joint_pos[ids] = qpos[:, NQ0:]
        s.joint_vel[ids] = qvel[:, NV0:]
        s.key_body_pos[ids] = self.xpos[ids][:, mi.key_ids]
