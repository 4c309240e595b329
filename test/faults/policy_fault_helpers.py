"""Shared helpers of the policy-side fault-injection tests (test_faults_policy.py).

A trigger policy (a real ONNX artifact through the real contract) that behaves like the pass-through
baseline until the reference asks for a root height above ``trigger_height_m``, then outputs ``magnitude``
on every joint: how a policy goes wrong mid-run. Plus checks every fault test applies to every command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from g1_description import robot
from g1_interfaces.msg import JointCommand, ReferenceWindow
from g1_tracker_policy import contract as c
from g1_tracker_policy.observation import ObservationConfig
from g1_tracker_policy.testing import standing_window

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "policy"))
from policy_harness import check_command  # noqa: E402  (the invariant of every command, shared)

TRIGGER_HEIGHT_M = 2.0


def make_trigger_policy(path: Path, magnitude: float = 1e6, trigger_height_m: float = TRIGGER_HEIGHT_M):
    """action = magnitude * relu(ref_root_height(next frame) - trigger_height_m) on all 29 joints, residual
    on the reference: exactly the baseline while the reference root is below the trigger height."""
    cfg = ObservationConfig()
    start = next(t.start for t in cfg.layout().terms if t.name == "ref_root_height" and t.block == "reference")
    nodes = [
        helper.make_node("Slice", ["obs", "st", "en", "ax"], ["h"]),
        helper.make_node("Sub", ["h", "trig"], ["d"]),
        helper.make_node("Relu", ["d"], ["r"]),
        helper.make_node("Mul", ["r", "gain"], ["action"]),  # (1,1) * (1,29) -> (1,29)
    ]
    inits = [numpy_helper.from_array(np.array([start], np.int64), "st"),
             numpy_helper.from_array(np.array([start + 1], np.int64), "en"),
             numpy_helper.from_array(np.array([1], np.int64), "ax"),
             numpy_helper.from_array(np.array([[trigger_height_m]], np.float32), "trig"),
             numpy_helper.from_array(np.full((1, robot.NUM_JOINTS), magnitude, np.float32), "gain")]
    graph = helper.make_graph(nodes, "trigger_policy",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, cfg.size])],
                              [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, robot.NUM_JOINTS])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return c.write_artifact(path, model, model_kind="mlp", observation=cfg, kp=robot.STAND_KP, kd=robot.STAND_KD,
                            action_scale=0.25, action_base=c.ACTION_BASE_REFERENCE,
                            provenance={"name": "fault-trigger", "note": "fault injection: NOT a tracker"})


def trigger_window(t: float = 0.0, name: str = "m1"):
    """A playing reference whose root is at 3 m: the trigger policy answers with its huge action."""
    w = standing_window(state=ReferenceWindow.STATE_PLAYING, motion_name=name, clip_time_s=t)
    w.root_pos[:, 2] = 3.0
    return w


def is_damping(cmd: JointCommand) -> bool:
    return all(k == 0.0 for k in cmd.kp) and all(d > 0.0 for d in cmd.kd)


def assert_all_commands_sane(commands) -> None:
    """Every command finite and inside the joint limits (each was also checked on arrival)."""
    assert commands, "no command received"
    for _, msg in commands:
        check_command(msg)
