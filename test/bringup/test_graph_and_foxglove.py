"""The graph description shared by `g1 track` and the launch file; the Foxglove bridge serves the graph."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest

from g1_bringup.graph import GraphOptions, tracking_graph, uses_sim_time


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
    robot = {n.name for n in tracking_graph(GraphOptions(hardware="robot"))}
    assert robot == {"motion_server", "g1_policy", "g1_driver"}
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
