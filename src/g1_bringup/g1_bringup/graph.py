"""The tracking graph, described once: which nodes run, with which parameters.

Both ``launch/track.launch.py`` (ROS 2 distro installs, ``ros2 launch``) and ``g1 track`` (the pip
world) build their processes from ``tracking_graph()``, so the two cannot drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from g1_description.paths import package_share


@dataclass
class NodeSpec:
    """One node of the graph."""

    name: str                       # node name (also the readiness name in lockstep)
    package: str                    # ROS package (for launch_ros)
    executable: str                 # console script (for launch_ros / ros2 run)
    module: str                     # python module with main() (for `python -m`)
    param_files: list[Path] = field(default_factory=list)
    params: dict = field(default_factory=dict)
    required: bool = True           # if it dies, the run is stopped
    env: dict = field(default_factory=dict)  # environment the process gets on top of the caller's (DDS)

    def ros_args(self, use_sim_time: bool) -> list[str]:
        args = ["--ros-args", "-r", f"__node:={self.name}"]
        for f in self.param_files:
            args += ["--params-file", str(f)]
        for k, v in {"use_sim_time": use_sim_time, **self.params}.items():  # a node's own setting wins
            args += ["-p", f"{k}:={_param_literal(v)}"]
        return args


def _param_literal(value) -> str:
    """A parameter value as the YAML literal that `-p name:=value` expects."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_param_literal(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return yaml.safe_dump(value, default_style="'").strip() if value == "" or ":" in value or " " in value \
            else value
    return repr(value)


#: DDS domain of simulation graphs (`g1 track`, the launch file with hardware:=sim) when ROS_DOMAIN_ID is
#: not set: not 0, the domain every default ROS 2 node (and the Unitree SDK) joins, so a stray node on the
#: machine never sees, nor sends, joint commands of a simulation run. Within 0-101 (ports clear of Linux's
#: ephemeral range) and outside the 20-199 the test suite draws per run.
SIM_DOMAIN_ID = 17
#: The robot's DDS domain: Unitree's SDK and the G1's own processes use domain 0.
ROBOT_DOMAIN_ID = 0
DOMAIN_VAR, RANGE_VAR, PROFILE_VAR = "ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "FASTDDS_DEFAULT_PROFILES_FILE"


@dataclass
class DdsSettings:
    """Where the graph's DDS traffic goes. ``env``: what every local node gets; ``driver_env``: the robot
    driver's (the only participant that must reach another machine); ``report``: each variable's value
    and whether it came from the user's environment or is this stack's default; ``notes``: warnings."""

    env: dict
    driver_env: dict
    report: dict
    notes: list

    def describe(self) -> str:
        return ", ".join(f"{k}={v['value']} ({v['source']})" for k, v in self.report.items())


def dds_settings(hardware: str = "sim", environ: Mapping[str, str] | None = None) -> DdsSettings:
    """DDS isolation by default, the user's explicit ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE always
    respected (and reported as such).

    - sim: domain ``SIM_DOMAIN_ID``, discovery LOCALHOST (nothing leaves the machine).
    - robot: domain ``ROBOT_DOMAIN_ID`` (the G1's); every node LOCALHOST except the driver, which needs
      SUBNET to reach the robot. Confining the driver to the robot's network interface is the Fast DDS
      profile's job (FASTDDS_DEFAULT_PROFILES_FILE; an example in g1_hardware/config): without one a note
      says so."""
    environ = os.environ if environ is None else environ
    report, notes = {}, []

    def pick(var: str, default: str) -> str:
        user = environ.get(var, "").strip()
        report[var] = {"value": user or default, "source": "environment" if user else "default"}
        return user or default

    robot = hardware == "robot"
    env = {DOMAIN_VAR: pick(DOMAIN_VAR, str(ROBOT_DOMAIN_ID if robot else SIM_DOMAIN_ID)),
           RANGE_VAR: pick(RANGE_VAR, "LOCALHOST")}
    driver_env = {}
    if robot:
        if report[RANGE_VAR]["source"] == "default":
            driver_env[RANGE_VAR] = "SUBNET"
            report[RANGE_VAR]["value"] = "LOCALHOST (g1_driver: SUBNET)"
        profile = environ.get(PROFILE_VAR, "").strip()
        report[PROFILE_VAR] = {"value": profile or "(none)", "source": "environment" if profile else "default"}
        if not profile:
            notes.append(f"{PROFILE_VAR} is not set: g1_driver's DDS traffic is not confined to the robot's network "
                         "interface; see src/g1_hardware/README.md (config/fastdds_robot_interface.xml)")
    return DdsSettings(env, driver_env, report, notes)


def config_file(package: str, name: str) -> Path:
    return package_share(package) / "config" / name


@dataclass
class GraphOptions:
    """Arguments of track.launch.py and `g1 track` (same names)."""

    hardware: str = "sim"            # "sim" | "robot"
    policy: str = ""                 # ONNX artifact; "" -> the labelled baseline (reference pass-through)
    policy_sidecar: str = ""         # facts a policy trained elsewhere lacks ("" -> <policy>.g1.yaml if present)
    base_lin_vel: str = ""           # policies that observe base_lin_vel: zero | odometry ("" -> policy.yaml's)
    #: where the robot's position comes from (policy + motion_server): ground_truth (the simulator's),
    #: legs (g1_leg_odometry from joint_states + imu; what a G1 without another estimator has), auto =
    #: ground_truth in simulation, legs on the robot
    odometry: str = "auto"
    #: re-anchor the clip where the robot stands when the blend-in ends: auto = for policies that observe
    #: where the reference is (trained elsewhere, or ours with a position term), on, off
    reanchor_after_blend: str = "auto"
    motion_library: str = ""         # motion library directory ("" -> the default library)
    record: str = ""                 # bag directory to write ("" -> no recording)
    realtime: bool = False           # sim clock mode: realtime instead of lockstep
    physics_profile: str = ""        # sim: g1_description.physics profile ("" -> sim.yaml's)
    duration_s: float = 0.0          # sim: stop after this much sim time (0 = unlimited)
    seed: int = 0
    final_state_file: str = ""       # sim: JSON summary at exit
    motion: str = ""                 # play this motion by itself (motion_server autoplay) ...
    motion_at_s: float = 3.0         # ... at this time, once the robot stands (policy starts standing)
    visualization: bool = True       # reference ghost + key-body markers (RViz / Foxglove)
    pushes: list = field(default_factory=list)  # sim: [(t_s, (vx, vy, vz)), ...] scheduled velocity kicks
    extra_peers: list = field(default_factory=list)  # lockstep: more readiness names (e.g. g1_track's monitor)


def uses_sim_time(opts: GraphOptions) -> bool:
    """Lockstep simulation is the only mode with a simulated clock (/clock); real-time simulation and
    the robot run on the wall clock."""
    return opts.hardware == "sim" and not opts.realtime


def _trained_elsewhere(policy: str) -> bool:
    from g1_tracker_policy import external

    try:
        return external.policy_format(policy) in external.EXTERNAL_FORMATS
    except Exception:  # noqa: BLE001 - an unreadable file is refused, with its reason, by the policy node
        return False


def _observes_reference_position(policy: str) -> bool:
    """A policy of ours whose observation places the reference relative to the robot (odometry terms)."""
    from g1_tracker_policy import contract

    try:
        # metadata only: the policy node runs the golden vectors when it loads the policy
        return contract.load_artifact(policy, check_golden=False).observation.needs_odometry
    except Exception:  # noqa: BLE001 - an unreadable file is refused, with its reason, by the policy node
        return False


REANCHOR_CHOICES = ("auto", "on", "off")
ODOMETRY_CHOICES = ("auto", "ground_truth", "legs")


def odometry_source(opts: GraphOptions) -> str:
    """ground_truth or legs (see GraphOptions.odometry); the robot has no ground truth."""
    if opts.odometry not in ODOMETRY_CHOICES:
        raise ValueError(f"odometry {opts.odometry!r}: expected one of {ODOMETRY_CHOICES}")
    if opts.odometry == "auto":
        return "legs" if opts.hardware == "robot" else "ground_truth"
    if opts.odometry == "ground_truth" and opts.hardware == "robot":
        raise ValueError("odometry ground_truth: only the simulator has ground truth; use legs (or auto) on the robot")
    return opts.odometry


def reanchors_after_blend(opts: GraphOptions) -> bool:
    """Whether the clip starts where the robot stands when the blend-in ends. A blend from standing into
    the clip's first frame cannot move the feet and a policy taking over from the stand may step; a
    policy that observes the reference's position would then walk back to the clip's original spot
    before and while tracking it, so for those (auto) the clip is moved to where the robot stands."""
    if opts.reanchor_after_blend not in REANCHOR_CHOICES:
        raise ValueError(f"reanchor_after_blend {opts.reanchor_after_blend!r}: expected one of {REANCHOR_CHOICES}")
    if opts.reanchor_after_blend != "auto":
        return opts.reanchor_after_blend == "on"
    return bool(opts.policy) and (_trained_elsewhere(opts.policy) or _observes_reference_position(opts.policy))


def tracking_graph(opts: GraphOptions, environ: Mapping[str, str] | None = None) -> list[NodeSpec]:
    """The nodes of one tracking run, each with its DDS environment (:func:`dds_settings` of ``environ``,
    default ``os.environ``)."""
    from g1_common import topics

    lockstep = uses_sim_time(opts)
    legs = odometry_source(opts) == "legs"
    nodes: list[NodeSpec] = []

    if opts.record:
        # The recorder logs every message at its header stamp and needs no clock: without use_sim_time it
        # is one /clock reader fewer for the simulator to serve every tick.
        recorder_params = {"output": opts.record, "use_sim_time": False}
        if legs:
            from g1_bringup.recorder import DEFAULT_TOPICS

            recorder_params["topics"] = [*DEFAULT_TOPICS, topics.LEG_ODOM]
        nodes.append(NodeSpec("g1_recorder", "g1_bringup", "g1_recorder", "g1_bringup.recorder",
                              params=recorder_params))
    if legs:
        nodes.append(NodeSpec("g1_leg_odometry", "g1_hardware", "g1_leg_odometry", "g1_hardware.leg_odometry_node"))
    # motion_server and the policy run lockstep exactly when they use the simulator's clock
    motion_params = {"library": opts.motion_library} if opts.motion_library else {}
    if not opts.visualization:
        motion_params["publish_visualization"] = False
    policy_params = {"policy_path": opts.policy}
    if opts.policy_sidecar:
        policy_params["policy_sidecar"] = opts.policy_sidecar
    if opts.base_lin_vel:
        policy_params["base_lin_vel"] = opts.base_lin_vel
    if reanchors_after_blend(opts):
        motion_params["reanchor_after_blend"] = True
    if legs:  # the policy and motion_server read the estimate; the recorder keeps it beside the ground truth
        policy_params["odom_topic"] = motion_params["odom_topic"] = topics.LEG_ODOM
    if opts.hardware == "sim":
        # the simulated robot is created standing and collapses within ~0.5 s of damping: stand at the
        # first upright state instead of waiting for set_mode (the real robot starts in PASSIVE)
        policy_params["mode_on_start"] = "stand"
    if opts.motion:
        # A scripted run: stand up at start, play the motion at an exact time, track it as it starts.
        # No service call races the simulation, so lockstep runs repeat exactly.
        motion_params.update(autoplay=opts.motion, autoplay_at_s=float(opts.motion_at_s))
        policy_params.update(auto_track=True)
    nodes.append(NodeSpec("motion_server", "motion_server", "motion_server", "motion_server.node",
                          param_files=[config_file("motion_server", "motion_server.yaml")], params=motion_params))
    nodes.append(NodeSpec("g1_policy", "g1_tracker_policy", "g1_policy", "g1_tracker_policy.node",
                          param_files=[config_file("g1_tracker_policy", "policy.yaml")],
                          params=policy_params))
    if opts.hardware == "sim":
        peers = [n.name for n in nodes] + list(opts.extra_peers)
        # Both modes: no physics before every peer runs (real time: else a slow-starting policy finds
        # the robot already collapsed under the simulator's initial damping).
        sim_params = {"mode": "lockstep" if lockstep else "realtime", "seed": opts.seed,
                      "duration_s": float(opts.duration_s), "ready_peers": peers,
                      "realtime_wait_for_peers": not lockstep}
        if lockstep and opts.motion:  # a scripted evaluation run ends 1 s after the robot was handed to damping
            sim_params["stop_after_damping_s"] = 1.0
        if opts.pushes:
            sim_params["scheduled_pushes"] = [float(x) for t, v in opts.pushes for x in (t, *v)]
        if opts.final_state_file:
            sim_params["final_state_file"] = opts.final_state_file
        if opts.physics_profile:
            sim_params["physics_profile"] = opts.physics_profile
        nodes.append(NodeSpec("g1_sim", "g1_hardware", "g1_sim", "g1_hardware.sim_node",
                              param_files=[config_file("g1_hardware", "sim.yaml")], params=sim_params))
    elif opts.hardware == "robot":
        nodes.append(NodeSpec("g1_driver", "g1_hardware", "g1_driver", "g1_hardware.g1_driver",
                              param_files=[config_file("g1_hardware", "driver.yaml")]))
    else:
        raise ValueError(f"hardware={opts.hardware!r}: use 'sim' or 'robot'")
    dds = dds_settings(opts.hardware, environ)
    for spec in nodes:
        spec.env = {**dds.env, **(dds.driver_env if spec.name == "g1_driver" else {})}
    return nodes
