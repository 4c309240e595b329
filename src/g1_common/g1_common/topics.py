"""Names and QoS of every topic and service of the stack: the one place that defines them.

Names are relative (no leading slash) so that a namespace (``--ros-args -r __ns:=/robot1``) moves a
whole graph. The README's topic tour is generated from / checked against this table.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

# --- robot state and commands (hardware <-> policy) ---
JOINT_STATES = "joint_states"            # sensor_msgs/JointState, SDK order, names filled
IMU = "imu"                              # sensor_msgs/Imu, pelvis IMU as the robot reports it
JOINT_COMMAND = "joint_command"          # g1_interfaces/JointCommand
ESTOP = "estop"                          # std_msgs/Bool: true -> damping within one tick

# --- reference (motion_server -> policy, RViz) ---
REFERENCE_WINDOW = "reference_window"    # g1_interfaces/ReferenceWindow
REFERENCE_JOINT_STATES = "reference/joint_states"  # sensor_msgs/JointState for the ghost robot
REFERENCE_MARKERS = "reference/markers"  # visualization_msgs/MarkerArray of reference key bodies

# --- status ---
TRACKING_STATUS = "tracking_status"      # g1_interfaces/TrackingStatus
ROBOT_DESCRIPTION = "robot_description"  # std_msgs/String (URDF), transient local

# --- state estimation (g1_hardware.leg_odometry_node): the robot's position for policies that observe it ---
LEG_ODOM = "state_estimate/odom"         # nav_msgs/Odometry of the pelvis from joint_states + imu (leg odometry)

# --- simulator ground truth: for evaluation and visualisation only, never read by the policy ---
GROUND_TRUTH_ODOM = "sim/ground_truth/odom"             # nav_msgs/Odometry of the pelvis
GROUND_TRUTH_KEY_BODIES = "sim/ground_truth/key_bodies"  # g1_interfaces/KeyBodyPositions

# --- lockstep readiness handshake ---
READY = "g1/ready"                       # std_msgs/String: the node name, transient local

# --- services ---
PLAY_MOTION = "play_motion"              # g1_interfaces/PlayMotion
STOP_MOTION = "stop_motion"              # g1_interfaces/StopMotion
LIST_MOTIONS = "list_motions"            # g1_interfaces/ListMotions
SET_MODE = "set_mode"                    # g1_interfaces/SetMode
SIM_RESET = "sim/reset"                  # g1_interfaces/ResetSim
SIM_PUSH = "sim/push"                    # g1_interfaces/PushRobot
SIM_PAUSE = "sim/pause"                  # std_srvs/SetBool
SIM_STEP = "sim/step"                    # g1_interfaces/StepSim
DRIVER_ARM = "g1_driver/arm"             # std_srvs/SetBool

#: Control data: reliable so that lockstep simulation never loses a tick. The depth (1 s at 50 Hz) is
#: the writer's resend buffer too: a recorder that falls a few ticks behind a lockstep run faster than
#: real time must not lose samples; control readers match by stamp or take the newest anyway.
CONTROL_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.VOLATILE)

#: Latched data (robot_description, readiness): late joiners get the last messages.
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=16,
    reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)

#: Visualisation: best effort, newest only.
VIS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
