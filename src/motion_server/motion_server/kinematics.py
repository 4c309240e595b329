"""Forward kinematics of key bodies on the G1 MJCF (the model the simulator and evaluator use).

One ``mj_kinematics`` call per frame costs about 4 µs here, so a 2-minute clip takes well under a
second; no batching trick is needed.
"""

from __future__ import annotations

import numpy as np

from g1_description import robot

_model = None


def _kinematic_model():
    global _model
    if _model is None:
        from g1_description import mjcf

        _model = mjcf.build_kinematic_model()
    return _model


class KeyBodyKinematics:
    """Computes world positions of ``robot.KEY_BODIES`` for (root pos, root quat wxyz, joint pos) frames."""

    def __init__(self, body_names: tuple[str, ...] = robot.KEY_BODIES):
        import mujoco

        self._mujoco = mujoco
        self.model = _kinematic_model()
        self.data = mujoco.MjData(self.model)
        self.body_names = tuple(body_names)
        self.body_ids = np.array([self.model.body(name).id for name in self.body_names])

    def key_body_positions(self, root_pos: np.ndarray, root_quat_wxyz: np.ndarray,
                           joint_pos: np.ndarray) -> np.ndarray:
        """(T, 3), (T, 4), (T, 29) -> (T, K, 3) metres, world frame."""
        qpos = np.concatenate([np.atleast_2d(root_pos), np.atleast_2d(root_quat_wxyz),
                               np.atleast_2d(joint_pos)], axis=1)
        out = np.empty((len(qpos), len(self.body_ids), 3))
        model, data, kinematics = self.model, self.data, self._mujoco.mj_kinematics
        for i, row in enumerate(qpos):
            data.qpos[:] = row
            kinematics(model, data)
            out[i] = data.xpos[self.body_ids]
        return out

    def body_poses(self, body, root_pos: np.ndarray, root_quat_wxyz: np.ndarray,
                   joint_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World positions and orientations (wxyz) of any bodies of the model for (T,) frames: one name
        (e.g. ``torso_link``, the anchor of mjlab and holosoma trackers) gives (T, 3), (T, 4); a list of
        names gives (T, B, 3), (T, B, 4)."""
        bid = self.model.body(body).id if isinstance(body, str) else np.array([self.model.body(b).id for b in body])
        qpos = np.concatenate([np.atleast_2d(root_pos), np.atleast_2d(root_quat_wxyz),
                               np.atleast_2d(joint_pos)], axis=1)
        shape = () if isinstance(body, str) else (len(bid),)
        pos, quat = np.empty((len(qpos), *shape, 3)), np.empty((len(qpos), *shape, 4))
        model, data, kinematics = self.model, self.data, self._mujoco.mj_kinematics
        for i, row in enumerate(qpos):
            data.qpos[:] = row
            kinematics(model, data)
            pos[i], quat[i] = data.xpos[bid], data.xquat[bid]
        return pos, quat


def robot_body_names() -> tuple[str, ...]:
    """Every body of the G1 model except the world, in MJCF order (the order of BeyondMimic/mjlab
    ``body_pos_w`` exported from MuJoCo)."""
    model = _kinematic_model()
    return tuple(model.body(i).name for i in range(1, model.nbody))


def isaaclab_joint_order() -> tuple[str, ...]:
    """The G1 joints as IsaacLab orders them: breadth-first over the kinematic tree (by depth below the
    pelvis, MJCF order within a depth). Motions exported from IsaacLab use this order, not the SDK's."""
    import mujoco

    model = _kinematic_model()

    def depth(body: int) -> int:
        d = 0
        while model.body_parentid[body] != 0:
            body, d = model.body_parentid[body], d + 1
        return d

    hinges = [j for j in range(model.njnt) if model.jnt_type[j] == mujoco.mjtJoint.mjJNT_HINGE]
    order = sorted(range(robot.NUM_JOINTS), key=lambda i: (depth(model.jnt_bodyid[hinges[i]]), i))
    return tuple(robot.JOINT_NAMES[i] for i in order)
