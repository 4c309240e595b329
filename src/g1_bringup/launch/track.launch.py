"""ros2 launch g1_bringup track.launch.py [hardware:=sim|robot] [policy:=FILE] [motion:=NAME]
[record:=DIR] [rviz:=true] [use_sim_time:=true] [realtime:=false] [library:=DIR] [policy_sidecar:=YAML]
[base_lin_vel:=zero|odometry] [reanchor_after_blend:=auto|on|off] [odometry:=auto|ground_truth|legs]

A policy trained elsewhere (mjlab/BeyondMimic, holosoma) carries its motion: import it first with
`g1 motions import THEIR.onnx` and pass motion:=THEIR (its file name).

The node graph comes from g1_bringup.graph.tracking_graph(), the same description `g1 track` uses in
the pip world. On top of it this launch file adds what a distro install has: robot_state_publisher
(TF of the robot and of the reference ghost, from the generated URDF) and RViz.

DDS isolation (g1_bringup.graph.dds_settings, as for `g1 track`): every process it starts gets
ROS_DOMAIN_ID / ROS_AUTOMATIC_DISCOVERY_RANGE in its environment: for hardware:=sim domain 17 and
LOCALHOST discovery, for hardware:=robot the robot's domain 0, LOCALHOST for every node but g1_driver
(SUBNET, confined by your Fast DDS profile). Values you exported yourself are kept, and logged.
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, LogInfo, OpaqueFunction, TimerAction
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from g1_bringup.graph import GraphOptions, dds_settings, odometry_source, tracking_graph, uses_sim_time
from g1_common import topics
from g1_description.paths import package_share
from g1_description.urdf import generate_urdf

ARGS = {
    "hardware": ("sim", "sim (MuJoCo) or robot (real G1 through g1_driver)"),
    "policy": ("", "policy artifact (.onnx): ours, or an mjlab/BeyondMimic or holosoma export; empty: the labelled "
                   "baseline pass-through"),
    "policy_sidecar": ("", "facts a policy trained elsewhere lacks (empty: <policy>.g1.yaml next to it, if any)"),
    "base_lin_vel": ("", "policies observing base_lin_vel: zero | odometry (empty: policy.yaml's, zero)"),
    "reanchor_after_blend": ("auto", "move the clip to where the robot stands when the blend-in ends: auto (for "
                                     "policies observing the reference position) | on | off"),
    "odometry": ("auto", "the robot's position for the policy and motion_server: ground_truth (sim) | legs "
                         "(g1_leg_odometry) | auto (sim: ground_truth, robot: legs)"),
    "motion": ("", "motion to play once the robot stands (empty: play later with /play_motion)"),
    "library": ("", "motion library directory (empty: the default library)"),
    "record": ("", "bag directory to record to (empty: no recording)"),
    "rviz": ("true", "start RViz"),
    "realtime": ("false", "simulator in real time instead of lockstep"),
    "use_sim_time": ("auto", "auto: true exactly for the lockstep simulator (the only mode with /clock)"),
}


def _graph(context):
    get = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    opts = GraphOptions(hardware=get("hardware"), policy=get("policy"), policy_sidecar=get("policy_sidecar"),
                        base_lin_vel=get("base_lin_vel"), reanchor_after_blend=get("reanchor_after_blend"),
                        odometry=get("odometry"),
                        motion_library=get("library"),
                        record=get("record"), realtime=get("realtime").lower() == "true")
    use_sim_time = uses_sim_time(opts)  # lockstep sim: every node on the simulator's /clock
    requested = get("use_sim_time").lower()
    if requested != "auto" and (requested == "true") != use_sim_time:
        raise RuntimeError(f"use_sim_time:={requested} contradicts hardware:={opts.hardware} realtime:="
                           f"{get('realtime')}: only the lockstep simulator publishes /clock")
    dds = dds_settings(opts.hardware)  # the launching shell's environment decides what is the user's
    env = dds.env  # for every process below; tracking_graph gives each graph node its own (the driver's differs)
    actions = [LogInfo(msg=f"g1_bringup: DDS {dds.describe()}"), *[LogInfo(msg=f"WARNING: {n}") for n in dds.notes]]
    for spec in tracking_graph(opts):
        actions.append(Node(package=spec.package, executable=spec.executable, name=spec.name, output="screen",
                            additional_env=spec.env,
                            parameters=[*map(str, spec.param_files), {"use_sim_time": use_sim_time, **spec.params}]))
    urdf = generate_urdf()
    actions.append(Node(package="robot_state_publisher", executable="robot_state_publisher", name="robot_state_publisher",
                        additional_env=env, parameters=[{"robot_description": urdf, "use_sim_time": use_sim_time}]))
    actions.append(Node(package="robot_state_publisher", executable="robot_state_publisher",
                        name="reference_state_publisher", namespace="reference", additional_env=env,
                        parameters=[{"robot_description": urdf, "frame_prefix": "reference/",
                                     "use_sim_time": use_sim_time}]))
    odom = topics.LEG_ODOM if odometry_source(opts) == "legs" else topics.GROUND_TRUTH_ODOM  # the robot's TF
    actions.append(Node(package="g1_bringup", executable="g1_tf", name="g1_tf", additional_env=env,
                        parameters=[{"use_sim_time": use_sim_time, "odometry_topic": odom}]))
    actions.append(Node(package="rviz2", executable="rviz2", name="rviz2", condition=IfCondition(get("rviz")),
                        arguments=["-d", str(package_share("g1_bringup") / "rviz" / "g1_tracking.rviz")],
                        additional_env=env, parameters=[{"use_sim_time": use_sim_time}]))
    motion = get("motion")
    if motion:
        # stand up, then play: the same public services a user would call
        actions.append(TimerAction(period=4.0, actions=[ExecuteProcess(additional_env=env, cmd=[
            "ros2", "service", "call", "/set_mode", "g1_interfaces/srv/SetMode", "{mode: stand}"])]))
        actions.append(TimerAction(period=8.0, actions=[ExecuteProcess(additional_env=env, cmd=[
            "ros2", "service", "call", "/play_motion", "g1_interfaces/srv/PlayMotion", f"{{name: {motion}}}"])]))
        actions.append(TimerAction(period=8.5, actions=[ExecuteProcess(additional_env=env, cmd=[
            "ros2", "service", "call", "/set_mode", "g1_interfaces/srv/SetMode", "{mode: track}"])]))
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default, description=desc)
          for name, (default, desc) in ARGS.items()],
        OpaqueFunction(function=_graph),
    ])
