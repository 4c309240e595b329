"""MuJoCo-Warp physics backend (``env.backend: warp``): one MuJoCo-Warp world per env.

Same contract as :class:`g1_train.physics.CMujocoPhysics` (see :mod:`g1_train.physics`), on a warp device:

- the model is ``mujoco_warp.put_model`` of the env's MjModel; when randomised, ``geom_friction``,
  ``body_mass`` and ``body_ipos`` get one row per world (``put_model(batch_sizes=...)``) and
  ``opt.gravity`` is replaced by an (nworld,) array (MuJoCo-Warp's kernels index every batched model
  field with ``worldid % shape[0]``, so a per-world array is honoured; that is what mjlab's
  ``expand_model_fields`` does too). ``hfield_data`` has no world axis in MuJoCo-Warp 4.0.0, so
  per-env terrain cannot be randomised: asking for it is an error (set
  ``env.randomization.terrain_height_m: 0``), never silently flat;
- the drivers' PD (delay, motor strength, effort clip) is a warp kernel run before each of the 10
  ``mujoco_warp.step`` substeps; the substeps and the final ``forward`` are captured once into a graph
  (a CUDA graph on GPUs, warp's C++ replay on CPU) and replayed every control step, and so is a reset
  (``reset_data`` of the masked worlds, their new qpos/qvel, ``forward``);
- ``gather`` packs the state of all worlds into one (nworld, D) array on the device (one copy to the
  host); the IMU orientation and world angular velocity are formed on the host in float64 exactly like
  the C backend does (``mju_mat2Quat`` branches, pelvis xmat @ free-joint angular velocity).

MuJoCo-Warp computes in float32 (C MuJoCo in float64) and its collision and solver differ in detail,
so the two backends agree closely but not bit for bit (test_physics_backends.py measures it).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Sequence

import mujoco
import numpy as np
import warp as wp

import mujoco_warp as mjw

from .physics import NQ0, NV0, PHYSICS_STEPS, ModelIds, mat_to_quat_wxyz

DEFAULT_NCONMAX = 64   # contacts per world (a shared pool of nconmax * nworld)
DEFAULT_NJMAX = 256    # constraint rows per world (pyramidal cones: 4 rows per contact, + joint limits)
# capacity overflows that lose contacts or constraints (solver iteration limits are not errors, as in C)
_CAPACITY_OVERFLOWS = (mjw.OverflowType.NEFC | mjw.OverflowType.NJMAX_NNZ | mjw.OverflowType.BROADPHASE
                       | mjw.OverflowType.NARROWPHASE | mjw.OverflowType.CCD)


@wp.kernel
def _pd_control(substep: int, qpos: wp.array2d(dtype=wp.float32), qvel: wp.array2d(dtype=wp.float32),
                new_target: wp.array2d(dtype=wp.float32), prev_target: wp.array2d(dtype=wp.float32),
                delay: wp.array(dtype=wp.int32), strength: wp.array2d(dtype=wp.float32),
                kp: wp.array(dtype=wp.float32), kd: wp.array(dtype=wp.float32), effort: wp.array(dtype=wp.float32),
                ctrl: wp.array2d(dtype=wp.float32)):
    w, j = wp.tid()
    tgt = new_target[w, j]
    if substep < delay[w]:  # the drivers keep the previous target for `delay` physics steps
        tgt = prev_target[w, j]
    tau = strength[w, j] * (kp[j] * (tgt - qpos[w, NQ0 + j]) - kd[j] * qvel[w, NV0 + j])
    ctrl[w, j] = wp.clamp(tau, -effort[j], effort[j])


@wp.kernel
def _set_state(mask: wp.array(dtype=bool), qpos_new: wp.array2d(dtype=wp.float32),
               qvel_new: wp.array2d(dtype=wp.float32), qpos: wp.array2d(dtype=wp.float32),
               qvel: wp.array2d(dtype=wp.float32)):
    w = wp.tid()
    if not mask[w]:
        return
    for k in range(qpos.shape[1]):
        qpos[w, k] = qpos_new[w, k]
    for k in range(qvel.shape[1]):
        qvel[w, k] = qvel_new[w, k]


@wp.kernel
def _push(ids: wp.array(dtype=wp.int32), dv: wp.array2d(dtype=wp.float32), qvel: wp.array2d(dtype=wp.float32)):
    r = wp.tid()
    w = ids[r]
    qvel[w, 0] = qvel[w, 0] + dv[r, 0]
    qvel[w, 1] = qvel[w, 1] + dv[r, 1]


@wp.kernel
def _randomise(ids: wp.array(dtype=wp.int32), friction: wp.array(dtype=wp.float32),
               mass: wp.array(dtype=wp.float32), ipos: wp.array(dtype=wp.vec3), gravity: wp.array(dtype=wp.vec3),
               body: int, geom_friction: wp.array2d(dtype=wp.vec3), body_mass: wp.array2d(dtype=wp.float32),
               body_ipos: wp.array2d(dtype=wp.vec3), opt_gravity: wp.array(dtype=wp.vec3)):
    r = wp.tid()
    w = ids[r]
    for g in range(geom_friction.shape[1]):  # sliding friction of every geom (contacts take the max)
        f = geom_friction[w, g]
        geom_friction[w, g] = wp.vec3(friction[r], f[1], f[2])
    body_mass[w, body] = mass[r]
    body_ipos[w, body] = ipos[r]
    opt_gravity[w] = gravity[r]


@wp.kernel
def _gather(qpos: wp.array2d(dtype=wp.float32), qvel: wp.array2d(dtype=wp.float32),
            xpos: wp.array2d(dtype=wp.vec3), xmat: wp.array2d(dtype=wp.mat33),
            site_xmat: wp.array2d(dtype=wp.mat33), sensordata: wp.array2d(dtype=wp.float32),
            key_ids: wp.array(dtype=wp.int32), pelvis: int, site: int, gyro_adr: int,
            nefc: wp.array(dtype=wp.int32), overflow: wp.array(dtype=wp.int32), nacon: wp.array(dtype=wp.int32),
            ncollision: wp.array(dtype=wp.int32), out: wp.array2d(dtype=wp.float32)):
    """Row w = [nefc, overflow bits, nacon, ncollision (buffer checks) | qpos | qvel | pelvis xmat (9,
    row-major) | IMU site xmat (9) | gyro (3) | key-body xpos (3K)]."""
    w = wp.tid()
    out[w, 0] = float(nefc[w])
    out[w, 1] = float(overflow[w])
    out[w, 2] = float(nacon[0])
    out[w, 3] = float(ncollision[0])
    c = int(4)
    for k in range(qpos.shape[1]):
        out[w, c] = qpos[w, k]
        c += 1
    for k in range(qvel.shape[1]):
        out[w, c] = qvel[w, k]
        c += 1
    for a in range(3):
        for b in range(3):
            out[w, c] = xmat[w, pelvis][a, b]
            out[w, c + 9] = site_xmat[w, site][a, b]
            c += 1
    c += 9
    for k in range(3):
        out[w, c] = sensordata[w, gyro_adr + k]
        c += 1
    for i in range(key_ids.shape[0]):
        p = xpos[w, key_ids[i]]
        for k in range(3):
            out[w, c] = p[k]
            c += 1


def resolve_device(name: str) -> str:
    """``env.warp_device`` -> a warp device name; "auto" = cuda:<LOCAL_RANK or 0> if warp sees CUDA, else cpu."""
    if name in ("", "auto"):
        if wp.is_cuda_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        return "cpu"
    if name.startswith("cuda") and not wp.is_cuda_available():
        raise ValueError(f"env.warp_device {name!r}: warp sees no CUDA device (driver missing or no GPU); "
                         "use env.warp_device: cpu (or auto), or env.backend: mujoco")
    try:
        return str(wp.get_device(name))
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"env.warp_device {name!r}: {e}") from e


def _f32(a) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32)


class WarpPhysics:
    """MuJoCo-Warp backend: ``num_envs`` worlds on ``device`` (see the module docstring)."""

    name = "warp"

    def __init__(self, model: mujoco.MjModel, num_envs: int, key_body_names: Sequence[str], randomised: bool,
                 device: str = "auto", nconmax: int = 0, njmax: int = 0, graph: bool = True):
        if randomised and model.nhfield:
            raise ValueError(
                "env.backend: warp cannot randomise the terrain: MuJoCo-Warp 4.0.0 has one hfield_data for all "
                "worlds (no per-world axis), so per-env heightfields are impossible. Set "
                "env.randomization.terrain_height_m: 0 (flat floor) with the warp backend, or use env.backend: mujoco")
        if wp.config.log_level <= wp.LOG_INFO:
            wp.config.log_level = wp.LOG_WARNING  # no per-module "load ... took ms" lines
        wp.init()
        self.device = resolve_device(device)
        self.num_envs = n = num_envs
        self.model = model
        self.ids = ModelIds(model, key_body_names)
        self.randomised = randomised
        self.use_graph = graph
        self._graphs: dict[str, object] = {}  # captured launch sequences: "step", "reset"
        self._nominal = (float(model.body_mass[self.ids.torso_id]), model.body_ipos[self.ids.torso_id].copy())
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        with wp.ScopedDevice(self.device):
            batch = {"geom_friction": n, "body_mass": n, "body_ipos": n} if randomised else None
            self.m = mjw.put_model(model, batch_sizes=batch)
            if randomised:
                g = np.tile(_f32(model.opt.gravity), (n, 1))
                self.m.opt.gravity = wp.array(g, dtype=wp.vec3)
                self.m.opt.gravity._is_batched = True  # as mjw.put_model marks its batched arrays
            # device-side printing of capacity overflows stays on; solver iteration limits are not errors
            self.m.opt.warn_overflow = int(_CAPACITY_OVERFLOWS)
            if wp.get_device(self.device).is_cuda and not wp.is_conditional_graph_supported():
                self.m.opt.graph_conditional = False  # CUDA < 12.4: no conditional graph nodes (mjw's advice)
            try:
                self.d = mjw.put_data(model, data, nworld=n, nconmax=nconmax or DEFAULT_NCONMAX,
                                      njmax=njmax or DEFAULT_NJMAX)
            except ValueError as e:  # e.g. "njmax overflow (njmax must be >= 29)"
                raise ValueError(f"MuJoCo-Warp buffers: {e}; set env.warp_njmax / env.warp_nconmax (per world) "
                                 "larger, or 0 for the defaults") from e
            nu, nk = model.nu, len(self.ids.key_ids)
            self._new_target = wp.zeros((n, nu), dtype=wp.float32)
            self._prev_target = wp.zeros((n, nu), dtype=wp.float32)
            self._delay = wp.zeros(n, dtype=wp.int32)
            self._strength = wp.ones((n, nu), dtype=wp.float32)
            self._kp = wp.zeros(nu, dtype=wp.float32)
            self._kd = wp.zeros(nu, dtype=wp.float32)
            self._effort = wp.zeros(nu, dtype=wp.float32)
            self._key_ids = wp.array(self.ids.key_ids.astype(np.int32), dtype=wp.int32)
            self._width = 4 + model.nq + model.nv + 9 + 9 + 3 + 3 * nk
            self._out = wp.zeros((n, self._width), dtype=wp.float32)
            self._reset_mask = wp.zeros(n, dtype=bool)
            self._reset_qpos = wp.array(np.tile(_f32(model.qpos0), (n, 1)), dtype=wp.float32)
            self._reset_qvel = wp.zeros((n, model.nv), dtype=wp.float32)
        self.compile_s = self._compile()

    # --- kernels ---------------------------------------------------------------------------------------
    def _compile(self) -> float:
        """Load (on a cold cache: compile, about a minute on CPU) every kernel by running one step, then
        reset every world: the first real step is no outlier and graph capture finds all modules loaded."""
        t0 = time.perf_counter()
        cache = os.path.join(wp.config.kernel_cache_dir or "~/.cache/warp", "")
        print(f"[g1_train] MuJoCo-Warp on {self.device}: loading kernels (cache {cache}; a cold cache compiles "
              "for about a minute on CPU)", file=sys.stderr, flush=True)
        with wp.ScopedDevice(self.device):
            self._substeps()
            self._launch_gather()  # loads this module's kernels too
            self._reset_mask.fill_(True)
            self._reset()  # the env resets every world before stepping
            wp.synchronize_device(self.device)
        return time.perf_counter() - t0

    def _substeps(self) -> None:
        for k in range(PHYSICS_STEPS):
            wp.launch(_pd_control, dim=(self.num_envs, self.model.nu),
                      inputs=[k, self.d.qpos, self.d.qvel, self._new_target, self._prev_target, self._delay,
                              self._strength, self._kp, self._kd, self._effort], outputs=[self.d.ctrl])
            mjw.step(self.m, self.d)
        mjw.forward(self.m, self.d)  # sensors and body poses of the state at this tick

    def _reset(self) -> None:
        mjw.reset_data(self.m, self.d, reset=self._reset_mask)
        wp.launch(_set_state, dim=self.num_envs, inputs=[self._reset_mask, self._reset_qpos, self._reset_qvel],
                  outputs=[self.d.qpos, self.d.qvel])
        # forward runs on every world; it only recomputes derived quantities (it keeps qpos, qvel, ctrl
        # and the solver warm start), so the other worlds' state is unchanged
        mjw.forward(self.m, self.d)

    def _run(self, key: str, launches) -> None:
        """Run ``launches`` (kernel launches only, on persistent arrays): captured into a graph on the first
        call and replayed after (a CUDA graph on GPUs, warp's C++ replay on CPU), or launched directly."""
        if not self.use_graph:
            launches()
            return
        if key not in self._graphs:
            with wp.ScopedCapture(device=self.device) as capture:
                launches()
            self._graphs[key] = capture.graph
        wp.capture_launch(self._graphs[key])

    def _launch_gather(self) -> None:
        mi = self.ids
        wp.launch(_gather, dim=self.num_envs,
                  inputs=[self.d.qpos, self.d.qvel, self.d.xpos, self.d.xmat, self.d.site_xmat, self.d.sensordata,
                          self._key_ids, mi.pelvis_id, mi.imu_site, mi.gyro_adr, self.d.nefc, self.d.overflow,
                          self.d.nacon, self.d.ncollision], outputs=[self._out])

    # --- the Physics interface -------------------------------------------------------------------------
    def randomise(self, ids, friction, mass_add, com_offset, gravity, terrain=None) -> None:
        if not self.randomised:
            raise RuntimeError("WarpPhysics.randomise: built without per-world model fields (randomisation disabled)")
        if terrain is not None:
            raise ValueError("WarpPhysics.randomise: per-world terrain is not supported by MuJoCo-Warp 4.0.0")
        mass, ipos = self._nominal
        with wp.ScopedDevice(self.device):
            wp.launch(_randomise, dim=len(ids),
                      inputs=[wp.array(np.asarray(ids, dtype=np.int32), dtype=wp.int32),
                              wp.array(_f32(friction), dtype=wp.float32),
                              wp.array(_f32(mass + np.asarray(mass_add)), dtype=wp.float32),
                              wp.array(_f32(ipos + np.asarray(com_offset)), dtype=wp.vec3),
                              wp.array(_f32(gravity), dtype=wp.vec3), self.ids.torso_id],
                      outputs=[self.m.geom_friction, self.m.body_mass, self.m.body_ipos, self.m.opt.gravity])

    def reset_envs(self, ids, qpos, qvel) -> None:
        n, m = self.num_envs, self.model
        mask = np.zeros(n, dtype=bool)
        mask[ids] = True
        qpos_all, qvel_all = np.zeros((n, m.nq), np.float32), np.zeros((n, m.nv), np.float32)
        qpos_all[ids], qvel_all[ids] = qpos, qvel
        with wp.ScopedDevice(self.device):
            self._reset_mask.assign(mask)
            self._reset_qpos.assign(qpos_all)
            self._reset_qvel.assign(qvel_all)
            self._run("reset", self._reset)

    def step(self, new_target, prev_target, delay, strength, kp, kd, effort) -> None:
        with wp.ScopedDevice(self.device):
            self._new_target.assign(_f32(new_target))
            self._prev_target.assign(_f32(prev_target))
            self._delay.assign(np.asarray(delay, dtype=np.int32))
            self._strength.assign(_f32(strength))
            self._kp.assign(_f32(kp))
            self._kd.assign(_f32(kd))
            self._effort.assign(_f32(effort))
            self._run("step", self._substeps)

    def push(self, ids, dv_xy) -> None:
        with wp.ScopedDevice(self.device):
            wp.launch(_push, dim=len(ids), inputs=[wp.array(np.asarray(ids, dtype=np.int32), dtype=wp.int32),
                                                   wp.array(_f32(dv_xy), dtype=wp.float32)], outputs=[self.d.qvel])

    def _check_buffers(self, counts: np.ndarray) -> None:
        """Dropped contacts or constraint rows make a different (wrong) simulation: stop with the fix."""
        nefc, flags, nacon, ncollision = counts[:, 0], counts[:, 1].astype(np.int64), counts[0, 2], counts[0, 3]
        bad = (nefc > self.d.njmax) | ((flags & int(_CAPACITY_OVERFLOWS)) != 0)
        pool = max(nacon, ncollision) > self.d.naconmax
        if bad.any() or pool:
            raise RuntimeError(
                f"MuJoCo-Warp buffer overflow ({int(bad.sum())} of {self.num_envs} worlds over "
                f"{self.d.njmax} constraint rows: max {int(nefc.max())}; contacts {int(nacon)} / collision pairs "
                f"{int(ncollision)} of a {self.d.naconmax} pool): contacts or constraints were dropped. Raise "
                f"env.warp_njmax (rows per world, now {self.d.njmax}) or env.warp_nconmax (contacts per world, "
                f"now {self.d.naconmax // self.num_envs})")

    def gather(self, state, ids) -> None:
        with wp.ScopedDevice(self.device):
            self._launch_gather()
            out = self._out.numpy().astype(np.float64)  # one copy from the device
        self._check_buffers(out[:, :4])
        ids = np.asarray(ids)
        o, m = out[ids, 4:], self.model
        nq, nv = m.nq, m.nv
        qpos, qvel = o[:, :nq], o[:, nq:nq + nv]
        c = nq + nv
        pelvis_mat, site_mat, gyro = o[:, c:c + 9], o[:, c + 9:c + 18], o[:, c + 18:c + 21]
        s = state
        s.root_pos[ids] = qpos[:, :3]
        s.root_quat[ids] = qpos[:, 3:7]
        s.root_lin_vel[ids] = qvel[:, :3]
        s.root_ang_vel[ids] = np.einsum("nij,nj->ni", pelvis_mat.reshape(-1, 3, 3), qvel[:, 3:6])
        s.imu_quat[ids] = mat_to_quat_wxyz(site_mat)
        s.imu_gyro[ids] = gyro
        s.joint_pos[ids] = qpos[:, NQ0:]
        s.joint_vel[ids] = qvel[:, NV0:]
        s.key_body_pos[ids] = o[:, c + 21:].reshape(len(ids), -1, 3)
