"""Test artifacts and synthetic inputs: small random ONNX policies of every model kind, built with the
onnx helper API (no torch), written through the real contract; and standing-robot reference windows.

The test policies are residual to the reference: ``action = (ref_joint_pos[next] - offset) / scale
+ gain * network(obs)``, so with the default small ``residual_gain`` they act like the pass-through
baseline plus a little learned-looking noise, stand in the simulator and exercise every code path
(observation layout, KV cache, golden vectors) without a trained network. They are NOT trackers.

``python -m g1_tracker_policy.testing make KIND PATH`` writes one; ``... feed`` publishes a standing
robot's joint_states/imu and a reference window at 50 Hz (for running the node alone).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from g1_description import robot
from g1_tracker_policy import contract as c
from g1_tracker_policy.observation import ObservationConfig

OPSET = 17
NJ = robot.NUM_JOINTS

#: network sizes: "small" for tests (fast to build and load), "bench" for the latency benchmark
SIZES = {
    "small": {"mlp": (256, 128), "moe_experts": 4, "moe_hidden": (128, 64), "d_model": 64, "layers": 2,
              "heads": 4, "ff": 128, "context": 16, "conv": (32, 16)},
    "bench": {"mlp": (512, 256, 128), "moe_experts": 4, "moe_hidden": (512, 256, 128), "d_model": 512,
              "layers": 6, "heads": 8, "ff": 2112, "context": 32, "conv": (64, 32)},
}


class _Graph:
    """Tiny helper over onnx.helper: named initialisers and nodes with generated names."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}_{self._n}"

    def const(self, value, prefix="c", dtype=np.float32) -> str:
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def weight(self, fan_in: int, fan_out: int, gain: float = 1.0) -> str:
        return self.const(self.rng.normal(0, gain / math.sqrt(fan_in), (fan_in, fan_out)), "w")

    def op(self, op_type: str, inputs: list[str], outputs: int | list[str] = 1, **attrs) -> str | list[str]:
        outs = [self.name(op_type.lower()) for _ in range(outputs)] if isinstance(outputs, int) else outputs
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if len(outs) == 1 else outs

    def linear(self, x: str, fan_in: int, fan_out: int, gain: float = 1.0) -> str:
        y = self.op("MatMul", [x, self.weight(fan_in, fan_out, gain)])
        return self.op("Add", [y, self.const(np.zeros(fan_out), "b")])

    def mlp(self, x: str, sizes: tuple[int, ...], fan_in: int, out: int, out_gain: float = 0.01) -> str:
        for h in sizes:
            x = self.op("Elu", [self.linear(x, fan_in, h)])
            fan_in = h
        return self.linear(x, fan_in, out, out_gain)

    def layer_norm(self, x: str, d: int) -> str:
        return self.op("LayerNormalization", [x, self.const(np.ones(d)), self.const(np.zeros(d))], axis=-1,
                       epsilon=1e-5)


def _reference_skip(g: _Graph, obs_2d: str, cfg: ObservationConfig, action_scale: np.ndarray,
                    action_offset: np.ndarray) -> str:
    """The linear map that makes a test policy residual to the reference's next-frame joints."""
    lay = cfg.layout()
    w = np.zeros((cfg.size, NJ))
    b = -action_offset / action_scale
    for name in ("ref_joint_pos", "ref_joint_pos_rel"):
        if name in cfg.reference_terms:
            t = lay.find(name, 0)
            w[t.start:t.start + NJ] = np.diag(1.0 / (t.scale * action_scale))
            if name == "ref_joint_pos_rel":
                b = b + np.asarray(cfg.default_joint_pos) / action_scale
            break
    else:  # no reference joints observed: the skip holds the offset (default pose)
        b = np.zeros(NJ)
    return g.op("Add", [g.op("MatMul", [obs_2d, g.const(w, "skip_w")]), g.const(b, "skip_b")])


def _attention_block(g: _Graph, x: str, d: int, heads: int, ff: int, kv_past: tuple[str, str] | None,
                     mask: str, seq: int) -> tuple[str, str, str]:
    """Pre-LN causal self-attention + MLP on x (seq, d); returns (x, k_all, v_all), keys (heads, T, dh)."""
    dh = d // heads
    h = g.layer_norm(x, d)

    def split(t):  # (seq, d) -> (heads, seq, dh)
        return g.op("Transpose", [g.op("Reshape", [t, g.const([seq, heads, dh], "shape", np.int64)])], perm=[1, 0, 2])

    q, k, v = (split(g.linear(h, d, d)) for _ in range(3))
    if kv_past is not None:
        k = g.op("Concat", [kv_past[0], k], axis=1)
        v = g.op("Concat", [kv_past[1], v], axis=1)
    scores = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 2, 1])]),
                          g.const(1.0 / math.sqrt(dh))])
    att = g.op("MatMul", [g.op("Softmax", [g.op("Add", [scores, mask])], axis=-1), v])  # (heads, seq, dh)
    att = g.op("Reshape", [g.op("Transpose", [att], perm=[1, 0, 2]), g.const([seq, d], "shape", np.int64)])
    x = g.op("Add", [x, g.linear(att, d, d)])
    hidden = g.op("Relu", [g.linear(g.layer_norm(x, d), d, ff)])
    x = g.op("Add", [x, g.linear(hidden, ff, d)])
    return x, k, v


def build_model(kind: str, cfg: ObservationConfig, *, size: str = "small", seed: int = 0,
                action_scale: float | np.ndarray = 0.25, residual_gain: float = 1.0) -> onnx.ModelProto:
    """A random model of ``kind`` with the contract's tensor names and shapes."""
    if kind not in c.MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; one of {c.MODEL_KINDS}")
    s = SIZES[size]
    g = _Graph(seed)
    scale = np.broadcast_to(np.asarray(action_scale, dtype=np.float64), (NJ,))
    offset = np.asarray(robot.DEFAULT_JOINT_POS)
    D = cfg.size
    inputs, outputs = [], [helper.make_tensor_value_info(c.OUTPUT_ACTION, TensorProto.FLOAT, [1, NJ])]

    if kind in ("mlp", "moe", "conv_encoder", "transformer_kv"):
        inputs.append(helper.make_tensor_value_info(c.INPUT_OBS, TensorProto.FLOAT, [1, D]))
        obs = c.INPUT_OBS
    if kind == "mlp":
        net = g.mlp(obs, s["mlp"], D, NJ, out_gain=0.01 * residual_gain)
    elif kind == "moe":
        e = s["moe_experts"]
        gate = g.op("Softmax", [g.linear(obs, D, e)], axis=-1)                          # (1, E)
        experts = [g.mlp(obs, s["moe_hidden"], D, NJ, out_gain=0.01 * residual_gain) for _ in range(e)]
        net = g.op("MatMul", [gate, g.op("Concat", experts, axis=0)])                  # (1,E)@(E,29)
    elif kind == "conv_encoder":
        lay = cfg.layout()
        f, r = cfg.num_reference_frames, cfg.reference_frame_size
        p0 = lay.proprio_slice.stop
        ref = g.op("Slice", [obs, g.const([p0], "st", np.int64), g.const([D], "en", np.int64),
                             g.const([1], "ax", np.int64)])
        ref = g.op("Transpose", [g.op("Reshape", [ref, g.const([1, f, r], "shape", np.int64)])], perm=[0, 2, 1])
        ch_in = r
        for ch in s["conv"]:  # 1-D convolution over the future-frame axis
            w = g.const(g.rng.normal(0, 1 / math.sqrt(ch_in * 3), (ch, ch_in, 3)), "conv_w")
            ref = g.op("Relu", [g.op("Conv", [ref, w, g.const(np.zeros(ch), "conv_b")], pads=[1, 1])])
            ch_in = ch
        enc = g.op("Reshape", [ref, g.const([1, ch_in * f], "shape", np.int64)])
        prop = g.op("Slice", [obs, g.const([0], "st", np.int64), g.const([p0], "en", np.int64),
                              g.const([1], "ax", np.int64)])
        net = g.mlp(g.op("Concat", [prop, enc], axis=1), s["mlp"], p0 + ch_in * f, NJ, out_gain=0.01 * residual_gain)
    elif kind == "transformer_kv":
        d, L, H, C = s["d_model"], s["layers"], s["heads"], s["context"]
        kv_shape = [L, 2, H, C, d // H]
        inputs += [helper.make_tensor_value_info(c.INPUT_PAST_KV, TensorProto.FLOAT, kv_shape),
                   helper.make_tensor_value_info(c.INPUT_PAST_LEN, TensorProto.INT64, [1])]
        outputs.append(helper.make_tensor_value_info(c.OUTPUT_PRESENT_KV, TensorProto.FLOAT, kv_shape))
        # additive mask over the C cached steps + the new one: the newest past_len cache slots are valid
        thr = g.op("Sub", [g.const([float(C)]), g.op("Cast", [c.INPUT_PAST_LEN], to=TensorProto.FLOAT)])
        valid = g.op("GreaterOrEqual", [g.const(np.arange(C + 1)), thr])
        mask = g.op("Where", [valid, g.const(0.0), g.const(-1e9)])
        x = g.linear(obs, D, d)
        presents = []
        for layer in range(L):
            past = g.op("Gather", [c.INPUT_PAST_KV, g.const(layer, "i", np.int64)], axis=0)      # (2,H,C,dh)
            pk = g.op("Gather", [past, g.const(0, "i", np.int64)], axis=0)
            pv = g.op("Gather", [past, g.const(1, "i", np.int64)], axis=0)
            x, k_all, v_all = _attention_block(g, x, d, H, s["ff"], (pk, pv), mask, 1)
            drop_oldest = [g.const([1], "st", np.int64), g.const([C + 1], "en", np.int64), g.const([1], "ax", np.int64)]
            pk_new = g.op("Slice", [k_all, *drop_oldest])
            pv_new = g.op("Slice", [v_all, *drop_oldest])
            ax0 = g.const([0], "ax", np.int64)
            kv = g.op("Concat", [g.op("Unsqueeze", [pk_new, ax0]), g.op("Unsqueeze", [pv_new, ax0])], axis=0)
            presents.append(g.op("Unsqueeze", [kv, ax0]))
        g.op("Concat", presents, [c.OUTPUT_PRESENT_KV], axis=0)
        net = g.linear(g.layer_norm(x, d), d, NJ, 0.01 * residual_gain)
    else:  # transformer_window: full causal attention over the last C observations
        d, L, H, C = s["d_model"], s["layers"], s["heads"], s["context"]
        inputs += [helper.make_tensor_value_info(c.INPUT_OBS, TensorProto.FLOAT, [1, C, D]),
                   helper.make_tensor_value_info(c.INPUT_CONTEXT_LEN, TensorProto.INT64, [1])]
        seq = g.op("Reshape", [c.INPUT_OBS, g.const([C, D], "shape", np.int64)])
        causal = np.triu(np.full((C, C), -1e9), 1)
        thr = g.op("Sub", [g.const([float(C)]), g.op("Cast", [c.INPUT_CONTEXT_LEN], to=TensorProto.FLOAT)])
        pad = g.op("Where", [g.op("GreaterOrEqual", [g.const(np.arange(C)), thr]), g.const(0.0), g.const(-1e9)])
        mask = g.op("Add", [g.const(causal), pad])
        x = g.linear(seq, D, d)
        for _ in range(L):
            x, _, _ = _attention_block(g, x, d, H, s["ff"], None, mask, C)
        last = g.op("Gather", [x, g.const([C - 1], "i", np.int64)], axis=0)                     # (1, d)
        net = g.linear(g.layer_norm(last, d), d, NJ, 0.01 * residual_gain)
        obs = g.op("Gather", [seq, g.const([C - 1], "i", np.int64)], axis=0)                    # newest obs
    action = g.op("Add", [net, _reference_skip(g, obs, cfg, scale, offset)], [c.OUTPUT_ACTION])
    del action
    graph = helper.make_graph(g.nodes, f"g1_test_{kind}", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="g1_tracker_policy.testing")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def count_parameters(model: onnx.ModelProto) -> int:
    return int(sum(np.prod(i.dims) for i in model.graph.initializer if i.data_type == TensorProto.FLOAT))


def make_test_policy(kind: str, path: str | Path, *, obs_config: ObservationConfig | None = None, size: str = "small",
                     seed: int = 0, action_scale: float = 0.25, residual_gain: float = 1.0, kp=None, kd=None,
                     control_rate_hz: float = robot.CONTROL_RATE_HZ) -> c.PolicyArtifact:
    """Build a random ``kind`` model and write it with the contract. Gains default to the STAND gains:
    a residual-to-reference test policy needs them to stand (the realistic gains cannot hold a pose)."""
    cfg = obs_config or ObservationConfig()
    model = build_model(kind, cfg, size=size, seed=seed, action_scale=action_scale, residual_gain=residual_gain)
    return c.write_artifact(
        path, model, model_kind=kind, observation=cfg,
        kp=robot.STAND_KP if kp is None else kp, kd=robot.STAND_KD if kd is None else kd,
        action_scale=action_scale, control_rate_hz=control_rate_hz,
        provenance={"name": f"test-{kind}-{size}", "source": "g1_tracker_policy.testing.make_test_policy",
                    "seed": seed, "parameters": count_parameters(model),
                    "note": "random residual-to-reference test network, NOT a trained tracker"})


# --- policies as other frameworks export them (for the external adapters) ------------------------------

def make_external_test_policy(fmt: str, path: str | Path, *, joint_names=None, num_frames: int = 40,
                              with_config: bool = True, seed: int = 0, obs_terms=None,
                              actions_use_time_step: bool = False) -> Path:
    """A small random ONNX laid out like an mjlab (``fmt="mjlab"``) or holosoma (``"holosoma"``) tracking
    export, with its own metadata: inputs ``obs`` and ``time_step``, outputs ``actions`` (obs @ W) and an
    embedded motion of ``num_frames`` frames (clamped at the last one, as both exporters do) moving
    linearly: pelvis/torso forward 0.5 m/s, joints from the default pose by +0.1 rad/s. Per-joint facts
    are written in ``joint_names`` order (default: the SDK order). holosoma with ``with_config=False``
    is like its FastSAC export: no experiment_config (no action scale, default pose or observation list).
    NOT a policy: for testing the adapters only."""
    from g1_tracker_policy import external as ext

    names = list(robot.JOINT_NAMES if joint_names is None else joint_names)
    theirs = np.array([robot.JOINT_INDEX[n] for n in names])  # artifact position -> SDK index
    if obs_terms is None:
        obs_terms = (["command", "motion_anchor_pos_b", "motion_anchor_ori_b", "base_lin_vel", "base_ang_vel",
                      "joint_pos", "joint_vel", "actions"] if fmt == "mjlab" else
                     ["actions", "base_ang_vel", "dof_pos", "dof_vel", "motion_command", "motion_ref_ori_b"])
    width = sum(ext.TERM_SIZES[fmt].get(t, 1) for t in obs_terms)  # unknown terms (refusal tests): 1 wide
    g = _Graph(seed)
    dt = robot.CONTROL_PERIOD_S
    t = g.op("Clip", ["time_step", g.const(0.0), g.const(float(num_frames - 1))])      # (1, 1)
    act = g.op("MatMul", ["obs", g.weight(width, NJ, 0.1)])
    if actions_use_time_step:
        act = g.op("Add", [act, t])
    g.op("Identity", [act], ["actions"])
    q0 = robot.DEFAULT_JOINT_POS[theirs]
    g.op("Add", [g.const(q0[None]), g.op("Mul", [t, g.const(np.full((1, NJ), 0.1 * dt))])], ["joint_pos"])
    g.op("Add", [g.op("Mul", [t, g.const(np.zeros((1, NJ)))]), g.const(np.full((1, NJ), 0.1))], ["joint_vel"])
    outputs = [("actions", [1, NJ]), ("joint_pos", [1, NJ]), ("joint_vel", [1, NJ])]
    if fmt == "mjlab":
        bodies = list(robot.KEY_BODIES)
        base = np.zeros((1, len(bodies), 3))
        base[..., 2] = robot.DEFAULT_ROOT_HEIGHT_M
        slope = np.zeros((1, len(bodies), 3))
        slope[..., 0] = 0.5 * dt
        t3 = g.op("Reshape", [t, g.const(np.array([1, 1, 1]), dtype=np.int64)])
        g.op("Add", [g.const(base), g.op("Mul", [t3, g.const(slope)])], ["body_pos_w"])
        quat = np.zeros((1, len(bodies), 4))
        quat[..., 0] = 1.0
        g.op("Add", [g.const(quat), g.op("Mul", [t3, g.const(np.zeros((1, len(bodies), 4)))])], ["body_quat_w"])
        outputs += [("body_pos_w", [1, len(bodies), 3]), ("body_quat_w", [1, len(bodies), 4])]
        join = lambda v: ",".join(f"{x:.6g}" if not isinstance(x, str) else x for x in v)  # noqa: E731
        meta = {"joint_names": join(names), "joint_stiffness": join(robot.KP[theirs]),
                "joint_damping": join(robot.KD[theirs]), "default_joint_pos": join(q0),
                "action_scale": join(0.25 * robot.EFFORT_LIMIT[theirs] / robot.KP[theirs]),
                "observation_names": join(obs_terms), "anchor_body_name": "torso_link", "body_names": join(bodies)}
    else:
        g.op("Add", [g.const(np.array([[0.0, 0.0, 1.0]])), g.op("Mul", [t, g.const(np.array([[0.5 * dt, 0, 0]]))])],
             ["ref_pos_xyz"])
        yaw = math.pi / 2  # the reference torso faces +y: xyzw (0, 0, sin 45, cos 45)
        g.op("Add", [g.const(np.array([[0.0, 0.0, math.sin(yaw / 2), math.cos(yaw / 2)]])),
                     g.op("Mul", [t, g.const(np.zeros((1, 4)))])], ["ref_quat_xyzw"])
        outputs += [("ref_pos_xyz", [1, 3]), ("ref_quat_xyzw", [1, 4])]
        meta = {"dof_names": json.dumps(names), "kp": json.dumps(list(robot.KP[theirs])),
                "kd": json.dumps(list(robot.KD[theirs])), "robot_urdf": json.dumps("<robot name='g1'/>")}
        if with_config:
            meta["experiment_config"] = json.dumps({
                "robot": {"dof_names": names, "dof_effort_limit_list": list(robot.EFFORT_LIMIT[theirs]),
                          "init_state": {"default_joint_angles": dict(zip(names, q0.tolist()))},
                          "control": {"action_scale": 0.25, "action_scales_by_effort_limit_over_p_gain": True,
                                      "clip_actions": True, "action_clip_value": 100.0}},
                "observation": {"groups": {"actor_obs": {"terms": {n: {"scale": 1.0} for n in obs_terms},
                                                         "history_length": 1}}},
                "command": {"setup_terms": {"motion_command": {"params": {"motion_config": {
                    "body_name_ref": ["torso_link"]}}}}},
                "simulator": {"config": {"sim": {"fps": 200, "control_decimation": 4}}}})
    graph = helper.make_graph(g.nodes, f"{fmt}_test_export",
                              [helper.make_tensor_value_info("obs", TensorProto.FLOAT, [1, width]),
                               helper.make_tensor_value_info("time_step", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


# --- synthetic inputs ---------------------------------------------------------------------------------

def yaw_quat_wxyz(yaw_rad: float) -> np.ndarray:
    return np.array([math.cos(yaw_rad / 2), 0.0, 0.0, math.sin(yaw_rad / 2)])


def standing_window(*, future_offsets=None, state: int = 2, motion_name: str = "stand_still", clip_time_s: float = 0.0,
                    clip_duration_s: float = 10.0, yaw_rad: float = 0.0, joint_pos=None, root_xy=(0.0, 0.0)):
    """A reference window of the robot standing still in the default pose (a ReferenceWindowData)."""
    from motion_server.reference import DEFAULT_FUTURE_OFFSETS, ReferenceWindowData

    offsets = tuple(DEFAULT_FUTURE_OFFSETS if future_offsets is None else future_offsets)
    f = 1 + len(offsets)
    k = len(robot.KEY_BODIES)
    q = np.asarray(robot.DEFAULT_JOINT_POS if joint_pos is None else joint_pos, dtype=np.float64)
    root = np.array([root_xy[0], root_xy[1], robot.DEFAULT_ROOT_HEIGHT_M])
    key = root + np.linspace(-0.5, 0.5, k * 3).reshape(k, 3) * [0.3, 0.3, 1.0]
    return ReferenceWindowData(
        times_s=clip_time_s + robot.CONTROL_PERIOD_S * np.array([1, *offsets], dtype=np.float64),
        joint_pos=np.tile(q, (f, 1)), joint_vel=np.zeros((f, NJ)), root_pos=np.tile(root, (f, 1)),
        root_quat_wxyz=np.tile(yaw_quat_wxyz(yaw_rad), (f, 1)), root_lin_vel=np.zeros((f, 3)),
        root_ang_vel=np.zeros((f, 3)), key_body_pos=np.tile(key, (f, 1, 1)), future_offsets=offsets,
        motion_name=motion_name, clip_time_s=clip_time_s, clip_duration_s=clip_duration_s, state=state)


def _feed(args) -> None:
    """Publish a standing robot (joint_states + imu) and a standing reference at 50 Hz, stamped with
    real time. For trying the node alone; tests use their own publishers."""
    import rclpy
    import rclpy.executors
    from rclpy.node import Node
    from sensor_msgs.msg import Imu

    from g1_common import conversions, shutdown, topics
    from g1_interfaces.msg import ReferenceWindow

    shutdown.init()
    node = Node("g1_policy_feeder")
    pubs = (node.create_publisher(conversions.JointState, topics.JOINT_STATES, topics.CONTROL_QOS),
            node.create_publisher(Imu, topics.IMU, topics.CONTROL_QOS),
            node.create_publisher(ReferenceWindow, topics.REFERENCE_WINDOW, topics.CONTROL_QOS))
    window = standing_window(state=args.ref_state)
    seq = [0]

    def tick():
        stamp = node.get_clock().now().to_msg()
        pubs[0].publish(conversions.make_joint_state(stamp, robot.DEFAULT_JOINT_POS, np.zeros(NJ)))
        imu = Imu()
        imu.header.stamp = stamp
        imu.orientation.w = 1.0
        pubs[1].publish(imu)
        if not args.no_reference:
            pubs[2].publish(conversions.window_to_msg(window, stamp, seq[0]))
        seq[0] += 1

    node.create_timer(1.0 / args.rate_hz, tick)
    try:
        executor = rclpy.executors.SingleThreadedExecutor()
        executor.add_node(node)
        shutdown.spin(executor)
    except (KeyboardInterrupt, rclpy.executors.ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m g1_tracker_policy.testing", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    mk = sub.add_parser("make", help="write a random test policy artifact")
    mk.add_argument("kind", choices=c.MODEL_KINDS)
    mk.add_argument("path")
    mk.add_argument("--size", choices=sorted(SIZES), default="small")
    mk.add_argument("--seed", type=int, default=0)
    fd = sub.add_parser("feed", help="publish a standing robot and reference at 50 Hz")
    fd.add_argument("--rate-hz", type=float, default=50.0)
    fd.add_argument("--ref-state", type=int, default=2)
    fd.add_argument("--no-reference", action="store_true")
    args = ap.parse_args(argv)
    if args.cmd == "make":
        art = make_test_policy(args.kind, args.path, size=args.size, seed=args.seed)
        print(f"wrote {art.path} ({art.model_kind}, {art.provenance['parameters']} parameters, "
              f"observation {art.observation.size})")
    else:
        _feed(args)


if __name__ == "__main__":
    main()
