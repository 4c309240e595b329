"""The graph description shared by `g1 track` and the launch file; the Foxglove bridge serves the graph."""

from __future__ import annotations

import asyncio
import json
import random
import time

import numpy as np
import pytest

from g1_bringup.graph import GraphOptions, tracking_graph, uses_sim_time
from g1_common import topics


def test_lockstep_graph_waits_for_every_peer_and_scripts_the_run():
    nodes = {n.name: n for n in tracking_graph(GraphOptions(record="/tmp/x", motion="clip", motion_at_s=2.5))}
    assert set(nodes) == {"g1_recorder", "motion_server", "g1_policy", "g1_sim"}
    assert set(nodes["g1_sim"].params["ready_peers"]) == {"g1_recorder", "motion_server", "g1_policy"}
    assert nodes["motion_server"].params["autoplay"] == "clip"
    assert nodes["g1_policy"].params["auto_track"] is True
    args = nodes["g1_policy"].ros_args(use_sim_time=True)
    assert "use_sim_time:=true" in args and any(a.endswith("policy.yaml") for a in args)
    for spec in nodes.values():
        for f in spec.param_files:
            assert f.is_file(), f


def test_realtime_and_robot_graphs():
    assert not uses_sim_time(GraphOptions(realtime=True))
    sim = {n.name: n for n in tracking_graph(GraphOptions(realtime=True))}["g1_sim"].params
    # real time too: no physics before the policy runs (else it may find the robot already collapsed)
    assert sim["mode"] == "realtime" and sim["realtime_wait_for_peers"] is True
    assert set(sim["ready_peers"]) == {"motion_server", "g1_policy"}
    robot = {n.name: n for n in tracking_graph(GraphOptions(hardware="robot"))}
    # the robot has no ground truth: the policy and motion_server read leg odometry
    assert set(robot) == {"motion_server", "g1_policy", "g1_driver", "g1_leg_odometry"}
    assert robot["g1_policy"].params["odom_topic"] == robot["motion_server"].params["odom_topic"] == topics.LEG_ODOM
    with pytest.raises(ValueError, match="only the simulator has ground truth"):
        tracking_graph(GraphOptions(hardware="robot", odometry="ground_truth"))
    legs = {n.name: n for n in tracking_graph(GraphOptions(odometry="legs", record="/tmp/bag"))}
    assert "g1_leg_odometry" in legs["g1_sim"].params["ready_peers"]  # lockstep: the sim waits for it too
    assert topics.LEG_ODOM in legs["g1_recorder"].params["topics"]  # recorded beside the ground truth
    assert legs["g1_policy"].params["odom_topic"] == topics.LEG_ODOM
    sim = {n.name: n for n in tracking_graph(GraphOptions(record="/tmp/bag"))}
    assert "g1_leg_odometry" not in sim and "odom_topic" not in sim["g1_policy"].params
    with pytest.raises(ValueError, match="odometry"):
        tracking_graph(GraphOptions(odometry="gps"))
    with pytest.raises(ValueError, match="hardware"):
        tracking_graph(GraphOptions(hardware="moon"))


def test_foxglove_bridge_advertises_the_graph(node_processes):
    websockets = pytest.importorskip("websockets")
    port = random.randrange(20000, 40000)
    node_processes.start("-m", "g1_bringup.foxglove_bridge", "--ros-args", "-p", f"port:={port}", name="foxglove")

    async def channels():
        deadline = time.monotonic() + 30
        while True:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"]) as ws:
                    seen = {}
                    while time.monotonic() < deadline:
                        msg = await asyncio.wait_for(ws.recv(), timeout=10)
                        if isinstance(msg, str):
                            data = json.loads(msg)
                            if data.get("op") == "advertise":
                                seen.update({c["topic"]: c for c in data["channels"]})
                            if {"/joint_states", "/robot_description", "/tf", "/reference_window"} <= set(seen):
                                return seen
            except (OSError, asyncio.TimeoutError, websockets.exceptions.InvalidStatus):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    seen = asyncio.run(channels())
    assert seen["/joint_states"]["schemaName"] == "sensor_msgs/msg/JointState"
    assert seen["/joint_states"]["encoding"] == "cdr"
    assert seen["/reference_window"]["schemaName"] == "g1_interfaces/msg/ReferenceWindow"


def test_foxglove_bridge_forwards_the_best_effort_reference_ghost_and_markers(node_processes):
    """motion_server publishes the ghost and the key-body markers best effort (topics.VIS_QOS): the bridge
    must match those publishers over DDS and pass their messages on to a Foxglove client."""
    websockets = pytest.importorskip("websockets")
    import rclpy
    from rclpy.node import Node
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import JointState
    from visualization_msgs.msg import Marker, MarkerArray

    from g1_common import conversions, ticks, topics
    from g1_description import robot

    port = random.randrange(20000, 40000)
    node_processes.start("-m", "g1_bringup.foxglove_bridge", "--ros-args", "-p", f"port:={port}", name="foxglove")
    rclpy.init()
    node = Node("ghost_publisher")
    ghost_pub = node.create_publisher(JointState, topics.REFERENCE_JOINT_STATES, topics.VIS_QOS)
    markers_pub = node.create_publisher(MarkerArray, topics.REFERENCE_MARKERS, topics.VIS_QOS)
    ghost = conversions.make_joint_state(ticks.stamp_from_tick(7), np.full(robot.NUM_JOINTS, 0.25), np.zeros(29))
    marker = Marker(ns="reference_key_bodies", id=0, type=Marker.SPHERE_LIST)
    marker.header.stamp = ticks.stamp_from_tick(7)
    wanted = {"/" + topics.REFERENCE_JOINT_STATES: JointState, "/" + topics.REFERENCE_MARKERS: MarkerArray}

    async def receive() -> dict[str, bytes]:
        deadline = time.monotonic() + 60
        while True:
            try:
                async with websockets.connect(f"ws://127.0.0.1:{port}", subprotocols=["foxglove.sdk.v1"]) as ws:
                    channels, subscribed, got, next_id, retry_at = {}, {}, {}, 1, 0.0
                    while time.monotonic() < deadline:
                        ghost_pub.publish(ghost)
                        markers_pub.publish(MarkerArray(markers=[marker]))
                        # (re)subscribe what has not arrived yet: a subscription sent while the server is
                        # still registering the client's channels can be refused as "unknown channel"
                        missing = [t for t in wanted if t in channels and t not in got]
                        if missing and time.monotonic() > retry_at:
                            stale = [i for i, t in subscribed.items() if t in missing]
                            if stale:
                                await ws.send(json.dumps({"op": "unsubscribe", "subscriptionIds": stale}))
                            subs = [{"id": next_id + i, "channelId": channels[t]} for i, t in enumerate(missing)]
                            next_id += len(subs)
                            subscribed.update({s["id"]: t for s, t in zip(subs, missing)})
                            await ws.send(json.dumps({"op": "subscribe", "subscriptions": subs}))
                            retry_at = time.monotonic() + 3.0
                        try:
                            msg = await asyncio.wait_for(ws.recv(), timeout=0.2)
                        except asyncio.TimeoutError:
                            continue
                        if isinstance(msg, str):
                            data = json.loads(msg)
                            if data.get("op") == "advertise":
                                channels.update({c["topic"]: c["id"] for c in data["channels"]})
                        elif msg[0] == 1:  # message data: opcode, subscription id, log time, payload
                            sub_id = int.from_bytes(msg[1:5], "little")
                            if sub_id in subscribed:
                                got[subscribed[sub_id]] = bytes(msg[13:])
                            if set(got) == set(wanted):
                                return got
                    return got
            except (OSError, websockets.exceptions.InvalidStatus):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.3)

    try:
        matched_before = ghost_pub.get_subscription_count(), markers_pub.get_subscription_count()
        got = asyncio.run(receive())
        matched = ghost_pub.get_subscription_count(), markers_pub.get_subscription_count()
    finally:
        node.destroy_node()
        rclpy.shutdown()
    assert set(got) == set(wanted), (f"Foxglove received only {sorted(got)}; DDS matches of the ghost and "
                                     f"markers publishers: {matched_before} -> {matched}\n{node_processes.logs()}")
    assert matched == (1, 1)
    received_ghost = deserialize_message(got["/" + topics.REFERENCE_JOINT_STATES], JointState)
    assert list(received_ghost.position) == [0.25] * robot.NUM_JOINTS
    received_markers = deserialize_message(got["/" + topics.REFERENCE_MARKERS], MarkerArray)
    assert received_markers.markers[0].ns == "reference_key_bodies"


def test_track_simulates_with_the_physics_profile_the_policy_was_trained_with(tmp_path):
    """A policy trained with the fast training profile (5 ms x 4, PD in actuators) falls in the 500 Hz
    simulator (and the shipped one the other way round): g1 track reads the profile from the artifact's
    provenance and hands it to the simulator; --physics-profile overrides; unknown names are refused."""
    import argparse

    from g1_bringup import track
    from g1_bringup.shipped import default_policy
    from g1_description import robot
    from g1_tracker_policy import contract, testing
    from g1_tracker_policy.observation import ObservationConfig

    cfg = ObservationConfig()
    path = tmp_path / "trained_200hz.onnx"
    contract.write_artifact(path, testing.build_model("mlp", cfg), model_kind="mlp", observation=cfg,
                            kp=robot.STAND_KP, kd=robot.STAND_KD, action_scale=0.25,
                            provenance={"name": "t", "physics_profile": "actuator_200hz"})
    args = argparse.Namespace(physics_profile=None, policy_sidecar=None, base_lin_vel=None)
    assert track._resolve_physics_profile(args, str(path)) == "actuator_200hz"
    shipped = default_policy()
    if shipped:  # the profile its provenance names; none (trained before profiles existed): sim.yaml's applies
        named = contract.load_artifact(shipped, check_golden=False).provenance.get("physics_profile", "")
        assert track._resolve_physics_profile(args, str(shipped)) == named
    args.physics_profile = "drivers_500hz"
    assert track._resolve_physics_profile(args, str(path)) == "drivers_500hz"
    args.physics_profile = "fast"
    with pytest.raises(track.TrackError, match="actuator_200hz"):
        track._resolve_physics_profile(args, str(path))
    sim = {n.name: n for n in tracking_graph(GraphOptions(physics_profile="actuator_200hz"))}["g1_sim"]
    assert sim.params["physics_profile"] == "actuator_200hz"
    assert "physics_profile" not in {n.name: n for n in tracking_graph(GraphOptions())}["g1_sim"].params


def test_track_grounds_the_clip_for_a_policy_trained_on_grounded_clips(tmp_path, shared_data):
    """`g1 track --ground auto` grounds the clip's feet (motion_server.grounding) when the policy's
    provenance says it was trained on grounded clips (`reference_grounding`), not for the baseline or
    policies that do not say; on/off override; the clip in the run's library is the grounded one."""
    import argparse

    from g1_bringup import track
    from g1_bringup.shipped import default_policy
    from g1_description import robot
    from g1_tracker_policy import contract, testing
    from g1_tracker_policy.observation import ObservationConfig
    from motion_server.library import MotionLibrary

    cfg = ObservationConfig()
    grounded_policy = tmp_path / "grounded.onnx"
    contract.write_artifact(grounded_policy, testing.build_model("mlp", cfg), model_kind="mlp", observation=cfg,
                            kp=robot.STAND_KP, kd=robot.STAND_KD, action_scale=0.25,
                            provenance={"name": "t", "reference_grounding": True})
    args = argparse.Namespace(ground="auto", policy_sidecar=None, base_lin_vel=None,
                              motion=str(shared_data / "motions" / "g1_moves" / "karate" / "M_ShortMove14.csv"),
                              library=None)
    assert track._resolve_grounding(args, str(grounded_policy)) is True
    assert track._resolve_grounding(args, "") is False                      # the baseline
    shipped = default_policy()
    if shipped:
        assert track._resolve_grounding(args, str(shipped)) is False        # trained on raw clips
    args.ground = "off"
    assert track._resolve_grounding(args, str(grounded_policy)) is False
    args.ground = "on"
    assert track._resolve_grounding(args, "") is True
    for ground in (False, True):
        out = tmp_path / f"run_{ground}"
        out.mkdir()
        name, lib, _ = track._resolve_motion(args, out, "", ground)
        motion = MotionLibrary(lib).load(name)
        assert bool(motion.provenance.get("grounding")) == ground


def test_clip_is_reanchored_after_the_blend_for_policies_that_observe_its_position(tmp_path):
    """auto: a policy that observes where the reference is (an mjlab export's anchor position, ours with
    ref_root_pos_xy) gets its clip moved to where the robot stands when the blend-in ends - else it walks
    back to the clip's first spot; a policy that does not (the shipped one, the baseline) keeps the clip
    where the start put it. on / off force it; anything else is an error."""
    from g1_bringup.shipped import default_policy
    from g1_tracker_policy.observation import ObservationConfig
    from g1_tracker_policy.testing import make_external_test_policy, make_test_policy

    ours_pos = tmp_path / "ours_pos.onnx"
    make_test_policy("moe", ours_pos, obs_config=ObservationConfig(
        reference_terms=("ref_root_height", "ref_roll_pitch", "ref_root_pos_xy", "ref_joint_pos")))
    ours_plain = tmp_path / "ours.onnx"
    make_test_policy("moe", ours_plain)
    mjlab = make_external_test_policy("mjlab", tmp_path / "mjlab.onnx")

    def reanchors(policy, mode="auto") -> bool:
        motion = {n.name: n for n in tracking_graph(GraphOptions(policy=str(policy), reanchor_after_blend=mode))}
        return bool(motion["motion_server"].params.get("reanchor_after_blend", False))

    assert reanchors(ours_pos) and reanchors(mjlab)
    assert not reanchors(ours_plain) and not reanchors("")
    shipped = default_policy()
    assert shipped is not None  # re-anchored exactly when it observes the reference's position
    from g1_tracker_policy import contract
    assert reanchors(shipped) == contract.load_artifact(shipped, check_golden=False).observation.needs_odometry
    assert reanchors(ours_plain, "on") and not reanchors(ours_pos, "off")
    with pytest.raises(ValueError, match="reanchor_after_blend"):
        tracking_graph(GraphOptions(policy=str(ours_pos), reanchor_after_blend="maybe"))
