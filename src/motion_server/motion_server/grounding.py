"""Foot grounding: make a retargeted clip's stance feet flat and on the floor.

Retargeted mocap rarely respects the robot's feet: in the G1-Moves clips (``../shared/docs/data.md``)
the stance feet are tilted by ~6-11 degrees and float or sink by a few centimetres. Tracked exactly
(the pass-through baseline, or a residual policy's zero action), such a reference stands the robot on
the edges of its soles and it falls within ~1 s on every clip. Grounding fixes the reference where a
foot is in contact and leaves the rest of the motion alone:

0. the clip's floor: the 5th percentile over frames of the lowest sole point (clips float or sink by a
   few centimetres as a whole; J_Dance8_WestCoast stands ~3.4 cm up) is moved to z = 0;
1. per frame and foot, the sole height ``h`` above that floor (lowest contact point of the foot's collision spheres, from
   forward kinematics) gives a stance weight ``w = clip((swing_m - h) / (swing_m - stance_m), 0, 1)``:
   1 for a foot on the floor, 0 for a foot in the air, a linear blend in between;
2. the ankle pitch/roll that make that sole parallel to the floor (the sole normal = world up, the
   foot's yaw free - two ankle joints cannot set three angles) are solved in closed form from the shank
   orientation; the ankle joints move to ``q + w (q_flat - q)``, within the joint limits;
3. where both feet are in stance at different heights - the G1-Moves clips keep the right sole ~2 cm
   above the left while both "stand" - the lower foot is raised to the higher one (by the higher
   foot's ``w`` of the difference, faded out for differences of 2.5-4.5 cm: that is a step, not a
   defect) with its sole kept flat, by damped least-squares IK on its leg's six joints (bending a
   leg is well conditioned; stretching a nearly straight one is not);
4. the root height is shifted so that the lowest sole point of the frame is on the floor (z = 0) in
   every frame with a foot in stance; the shift is interpolated over flight phases (jumps keep their
   arc) and smoothed over ``smooth_s``.

Only the leg joints and the root height change; the pelvis, torso and arm key bodies move by the root
shift only (millimetres to ~2 cm). ``GroundingReport`` says by how much.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from g1_description import robot

#: soles within this height of the floor are in full stance (flattened), above ``SWING_M`` untouched
STANCE_M = 0.03
SWING_M = 0.07
SMOOTH_S = 0.1
#: two stance soles are levelled fully up to LEVEL_MAX_M - LEVEL_RAMP_M apart, not at all beyond LEVEL_MAX_M
LEVEL_MAX_M = 0.045
LEVEL_RAMP_M = 0.02
#: percentile over frames of the lowest sole point taken as the clip's floor
FLOOR_PERCENTILE = 5.0
FEET = ("left", "right")


@dataclass
class GroundingReport:
    """What grounding changed (degrees, metres); goes into the motion's import report."""

    frames: int
    stance_share: float            # share of frame-feet in full stance (w == 1)
    tilt_before_deg: float         # median sole tilt of stance feet before
    tilt_after_deg: float          # ... and after (0 unless an ankle limit binds)
    max_ankle_change_rad: float
    max_leg_ik_change_rad: float   # largest joint change of the stance-foot IK (step 3)
    root_shift_m: tuple[float, float]  # min, max root height shift

    def lines(self) -> list[str]:
        return [f"grounded the feet: stance-foot tilt median {self.tilt_before_deg:.1f} -> {self.tilt_after_deg:.1f} deg "
                f"({100 * self.stance_share:.0f} % of foot-frames in stance), ankle joints moved by at most "
                f"{self.max_ankle_change_rad:.3f} rad, leg joints by the stance IK by at most "
                f"{self.max_leg_ik_change_rad:.3f} rad, root height shifted by {self.root_shift_m[0]:+.3f} .. "
                f"{self.root_shift_m[1]:+.3f} m"]


def _rot_y(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, -s], -1), np.stack([z, s, c], -1)], -2)


class _Feet:
    """The feet of the kinematic model: ankle joint indices (SDK order), sole contact spheres."""

    def __init__(self, model):
        import mujoco

        self.model = model
        self.data = mujoco.MjData(model)
        self._kin = mujoco.mj_kinematics
        names = list(robot.JOINT_NAMES)
        self.pitch = np.array([names.index(f"{f}_ankle_pitch_joint") for f in FEET])
        self.roll = np.array([names.index(f"{f}_ankle_roll_joint") for f in FEET])
        self.body = np.array([model.body(f"{f}_ankle_roll_link").id for f in FEET])
        #: per foot: the SDK indices and dof addresses of its leg's six joints (hip pitch .. ankle roll)
        self.leg = [np.array([i for i, n in enumerate(names) if n.startswith(f"{f}_") and
                              any(k in n for k in ("hip", "knee", "ankle"))]) for f in FEET]
        self.leg_dof = [np.array([model.jnt_dofadr[model.joint(names[i]).id] for i in leg]) for leg in self.leg]
        self.spheres = []  # per foot: (S, 3) sphere centres in the foot frame, (S,) radii
        for b in self.body:
            g = [i for i in range(model.ngeom) if model.geom_bodyid[i] == b
                 and model.geom_type[i] == mujoco.mjtGeom.mjGEOM_SPHERE
                 and (model.geom_contype[i] or model.geom_conaffinity[i])]
            if not g:
                raise ValueError("grounding: the G1 model has no collision spheres on the ankle roll links")
            self.spheres.append((model.geom_pos[g].copy(), model.geom_size[g, 0].copy()))

    def poses(self, root_pos, root_quat, joint_pos):
        """(T, 2, 3) foot positions and (T, 2, 3, 3) orientations (world)."""
        t = len(joint_pos)
        pos, rot = np.empty((t, 2, 3)), np.empty((t, 2, 3, 3))
        d = self.data
        for i in range(t):
            d.qpos[:3], d.qpos[3:7], d.qpos[7:] = root_pos[i], root_quat[i], joint_pos[i]
            self._kin(self.model, d)
            pos[i] = d.xpos[self.body]
            rot[i] = d.xmat[self.body].reshape(2, 3, 3)
        return pos, rot

    def sole_height(self, pos, rot):
        """(T, 2) lowest contact point of each foot (world z)."""
        out = np.empty(pos.shape[:2])
        for f, (centres, radii) in enumerate(self.spheres):
            z = pos[:, f, None, 2] + np.einsum("tj,sj->ts", rot[:, f, 2, :], centres) - radii
            out[:, f] = z.min(1)
        return out


    def level(self, root_pos, root_quat, q, w, iterations: int = 5, damping: float = 1e-3):
        """Raise the lower of two stance feet to the higher one (by its ``w`` of the difference) and keep
        its sole flat, by damped least-squares IK on that leg's joints; ``q`` is changed in place."""
        import mujoco

        m, d = self.model, self.data
        jacp, jacr = np.zeros((3, m.nv)), np.zeros((3, m.nv))
        lo, hi = robot.JOINT_LOWER, robot.JOINT_UPPER
        up = np.array([0.0, 0.0, 1.0])
        for i in np.flatnonzero((w > 0).all(1)):
            d.qpos[:3], d.qpos[3:7] = root_pos[i], root_quat[i]
            target = None
            for _ in range(iterations):
                d.qpos[7:] = q[i]
                self._kin(m, d)
                z, lowest = np.empty(2), []
                for f, (centres, radii) in enumerate(self.spheres):
                    rot = d.xmat[self.body[f]].reshape(3, 3)
                    zs = d.xpos[self.body[f], 2] + centres @ rot[2] - radii
                    z[f], _ = zs.min(), lowest.append(int(np.argmin(zs)))
                f = int(np.argmin(z))
                if target is None:  # the higher foot's stance weight, fading out for larger differences
                    gap = z[1 - f] - z[f]
                    share = w[i, 1 - f] * np.clip((LEVEL_MAX_M - gap) / LEVEL_RAMP_M, 0.0, 1.0)
                    target = z[f] + share * gap
                dz = target - z[f]
                b = self.body[f]
                rot = d.xmat[b].reshape(3, 3)
                tilt = np.cross(rot[:, 2], up)[:2]
                if abs(dz) < 2e-4 and np.abs(tilt).max() < 2e-3:
                    break
                point = d.xpos[b] + rot @ self.spheres[f][0][lowest[f]]
                mujoco.mj_comPos(m, d)
                mujoco.mj_jac(m, d, jacp, jacr, point, b)
                dof, leg = self.leg_dof[f], self.leg[f]
                jac = np.vstack([jacp[:, dof], jacr[:2, dof]])
                err = np.array([0.0, 0.0, dz, tilt[0], tilt[1]])
                dq = jac.T @ np.linalg.solve(jac @ jac.T + damping * np.eye(5), err)
                q[i, leg] = np.clip(q[i, leg] + np.clip(dq, -0.1, 0.1), lo[leg], hi[leg])


def _interpolate_flight(shift: np.ndarray, contact: np.ndarray) -> np.ndarray:
    if not contact.any():
        return np.zeros_like(shift)
    idx = np.arange(len(shift))
    return np.interp(idx, idx[contact], shift[contact])


def _smooth(x: np.ndarray, frames: int) -> np.ndarray:
    if frames < 2 or len(x) < 2:
        return x
    kernel = np.ones(frames) / frames
    padded = np.concatenate([np.full(frames // 2, x[0]), x, np.full(frames - 1 - frames // 2, x[-1])])
    return np.convolve(padded, kernel, mode="valid")


def ground_feet(root_pos: np.ndarray, root_quat_wxyz: np.ndarray, joint_pos: np.ndarray, dt_s: float,
                model=None, stance_m: float = STANCE_M, swing_m: float = SWING_M,
                smooth_s: float = SMOOTH_S) -> tuple[np.ndarray, np.ndarray, GroundingReport]:
    """(root_pos, joint_pos, report) of the grounded clip; inputs are not modified. ``model``: the
    kinematic MjModel (default: motion_server.kinematics' G1)."""
    if not 0 <= stance_m < swing_m:
        raise ValueError(f"grounding: need 0 <= stance_m < swing_m, got {stance_m}, {swing_m}")
    if model is None:
        from .kinematics import _kinematic_model
        model = _kinematic_model()
    feet = _Feet(model)
    root_pos = np.array(root_pos, dtype=np.float64)
    q = np.array(joint_pos, dtype=np.float64)
    pos, rot = feet.poses(root_pos, root_quat_wxyz, q)
    h = feet.sole_height(pos, rot)
    floor = float(np.percentile(h.min(1), FLOOR_PERCENTILE))
    h = h - floor
    w = np.clip((swing_m - h) / (swing_m - stance_m), 0.0, 1.0)           # (T, 2)
    tilt_before = np.degrees(np.arccos(np.clip(rot[..., 2, 2], -1, 1)))    # angle of the sole normal to up
    # foot = shank * Ry(pitch) * Rx(roll) (the G1's ankle axes; the links have no fixed rotation between)
    p, r = q[:, feet.pitch], q[:, feet.roll]
    shank = rot @ np.swapaxes(_rot_y(p) @ _rot_x(r), -1, -2)
    v = shank[..., 2, :]                                                   # world up in the shank frame
    r_flat = np.arcsin(np.clip(-v[..., 1], -1.0, 1.0))
    p_flat = np.arctan2(v[..., 0], v[..., 2])
    lo, hi = robot.JOINT_LOWER, robot.JOINT_UPPER
    p_new = np.clip(p + w * (p_flat - p), lo[feet.pitch], hi[feet.pitch])
    r_new = np.clip(r + w * (r_flat - r), lo[feet.roll], hi[feet.roll])
    q[:, feet.pitch], q[:, feet.roll] = p_new, r_new
    q_before_ik = q.copy()
    feet.level(root_pos, root_quat_wxyz, q, w)
    pos, rot = feet.poses(root_pos, root_quat_wxyz, q)
    h = feet.sole_height(pos, rot)
    contact = (w > 0.5).any(1)
    shift = _interpolate_flight(-h.min(1), contact)
    shift = _smooth(shift, int(round(smooth_s / dt_s)))
    root_pos[:, 2] += shift   # (relative to the clip as given: the floor offset is in it)
    tilt_after = np.degrees(np.arccos(np.clip(rot[..., 2, 2], -1, 1)))
    stance = w >= 1.0
    report = GroundingReport(
        frames=len(q), stance_share=float(stance.mean()),
        tilt_before_deg=float(np.median(tilt_before[stance])) if stance.any() else 0.0,
        tilt_after_deg=float(np.median(tilt_after[stance])) if stance.any() else 0.0,
        max_ankle_change_rad=float(max(np.abs(p_new - p).max(), np.abs(r_new - r).max())),
        max_leg_ik_change_rad=float(np.abs(q - q_before_ik).max()),
        root_shift_m=(float(shift.min()), float(shift.max())))
    return root_pos, q, report
