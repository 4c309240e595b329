"""Observation terms of policies trained elsewhere (mjlab / BeyondMimic, holosoma WBT), each against a
hand-computed value, and the name-based joint mapping with a shuffled joint order."""

from __future__ import annotations

import math

import numpy as np
import pytest

from g1_description import robot
from g1_tracker_policy import external as ext
from g1_tracker_policy.controllers import RobotState
from g1_tracker_policy.external_controller import (ExternalObservation, ExternalPolicyController, command_term,
                                                   relative_position_b, relative_rotation_6d)
from g1_tracker_policy.observation import ObservationError
from g1_tracker_policy.testing import make_external_test_policy, standing_window, yaw_quat_wxyz

SHUFFLED = tuple(np.random.default_rng(7).permutation(robot.JOINT_NAMES))


@pytest.fixture(scope="module")
def mjlab_shuffled(tmp_path_factory):
    return ext.load_policy(make_external_test_policy("mjlab", tmp_path_factory.mktemp("m") / "m.onnx",
                                                     joint_names=SHUFFLED))


@pytest.fixture(scope="module")
def holosoma_shuffled(tmp_path_factory):
    return ext.load_policy(make_external_test_policy("holosoma", tmp_path_factory.mktemp("h") / "h.onnx",
                                                     joint_names=SHUFFLED))


def state(q=None, dq=None, quat=(1.0, 0, 0, 0), gyro=(0.0, 0, 0), pos=None, lin_vel=None) -> RobotState:
    return RobotState(np.array(robot.DEFAULT_JOINT_POS if q is None else q, float),
                      np.zeros(29) if dq is None else np.asarray(dq, float), np.asarray(quat, float),
                      np.asarray(gyro, float), None if pos is None else np.asarray(pos, float),
                      None if lin_vel is None else np.asarray(lin_vel, float))


# --- rotations and frames ---------------------------------------------------------------------------

def test_6d_rotation_is_the_first_two_columns_row_major():
    # robot yawed +90 deg, reference upright facing +x: R_rel = Rz(-90) = [[0, 1, 0], [-1, 0, 0], [0, 0, 1]]
    six = relative_rotation_6d(yaw_quat_wxyz(math.pi / 2), np.array([1.0, 0, 0, 0]))
    np.testing.assert_allclose(six, [0, 1, -1, 0, 0, 0], atol=1e-12)       # [R00, R01, R10, R11, R20, R21]
    assert not np.allclose(six, [0, -1, 1, 0, 0, 0])                       # column-major would read this
    # a reference pitched +30 deg about y, robot upright: R_rel = Ry(30)
    c, s = math.cos(math.pi / 6), math.sin(math.pi / 6)
    six = relative_rotation_6d(np.array([1.0, 0, 0, 0]), np.array([math.cos(math.pi / 12), 0, math.sin(math.pi / 12), 0]))
    np.testing.assert_allclose(six, [c, 0, 0, 1, -s, 0], atol=1e-12)


def test_anchor_position_is_expressed_in_the_robot_anchor_frame():
    # robot at (1, 2, 0) facing +y, reference 1 m further along +y: straight ahead in the robot's frame
    np.testing.assert_allclose(relative_position_b([1, 2, 0], yaw_quat_wxyz(math.pi / 2), [1, 3, 0]), [1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(relative_position_b([0, 0, 0], np.array([1.0, 0, 0, 0]), [0.1, -0.2, 0.3]), [0.1, -0.2, 0.3])


def test_anchor_terms_use_the_torso_not_the_pelvis(mjlab_shuffled):
    """Reference: upright, waist straight. Robot: pelvis upright, waist yawed 0.5 rad. The torso (the
    anchor) is yawed by 0.5 rad, so the orientation term is Rz(-0.5), where a pelvis-frame term would
    read the identity; the position term is the torso offset seen from the yawed torso."""
    obs = ExternalObservation(mjlab_shuffled)
    q = np.array(robot.DEFAULT_JOINT_POS)
    q[robot.JOINT_INDEX["waist_yaw_joint"]] = 0.5
    window = standing_window()
    terms = obs.terms(state(q=q, pos=window.root_pos[0]), window, np.zeros(29))
    c, s = math.cos(0.5), math.sin(0.5)
    np.testing.assert_allclose(terms["motion_anchor_ori_b"], [c, s, -s, c, 0, 0], atol=1e-9)
    # the torso origin is d from the waist yaw axis (model offsets, waist straight): the robot's torso is
    # at Rz(0.5) d from that axis, the reference's at d, so in the robot torso frame: Rz(-0.5) d - d
    fk = obs.kin._fk
    pos, _ = fk.body_poses(["waist_yaw_link", "torso_link"], window.root_pos[:1], window.root_quat_wxyz[:1],
                           window.joint_pos[:1])
    d = pos[0, 1] - pos[0, 0]
    rz = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]])            # Rz(-0.5)
    np.testing.assert_allclose(terms["motion_anchor_pos_b"], rz @ d - d, atol=1e-9)
    assert np.linalg.norm(d[:2]) > 1e-3                         # the check above is not trivially zero
    # move the robot's pelvis 0.1 m back (-x): the reference torso is additionally 0.1 m ahead of the
    # robot's torso, which faces 0.5 rad to the left: (cos 0.5, -sin 0.5) * 0.1 in the torso frame
    terms = obs.terms(state(q=q, pos=window.root_pos[0] - [0.1, 0, 0]), window, np.zeros(29))
    np.testing.assert_allclose(terms["motion_anchor_pos_b"], rz @ d - d + [0.1 * c, -0.1 * s, 0], atol=1e-9)


def test_anchor_position_needs_odometry(mjlab_shuffled):
    obs = ExternalObservation(mjlab_shuffled)
    with pytest.raises(ObservationError, match="odom_topic"):
        obs.terms(state(pos=None), standing_window(), np.zeros(29))


# --- proprioception and command, in the artifact's own joint order -----------------------------------

def test_joint_terms_are_relative_to_the_artifacts_default_and_in_its_joint_order(mjlab_shuffled):
    art = mjlab_shuffled
    assert art.joints.names == SHUFFLED and tuple(art.joints.names) != robot.JOINT_NAMES
    obs = ExternalObservation(art)
    q = robot.DEFAULT_JOINT_POS + 0.01 * np.arange(29)          # SDK order: joint i is off by 0.01 * i
    dq = np.arange(29) * 1.0
    last = np.arange(29) * -0.5
    window = standing_window()
    window.joint_vel[0] = 0.2 * np.arange(29)
    terms = obs.terms(state(q=q, dq=dq, gyro=(0.1, -0.2, 0.3), pos=window.root_pos[0]), window, last)
    sdk_of = [robot.JOINT_INDEX[n] for n in SHUFFLED]           # the artifact's slot i holds this SDK joint
    np.testing.assert_allclose(terms["joint_pos"], 0.01 * np.array(sdk_of), atol=1e-12)
    np.testing.assert_allclose(terms["joint_vel"], np.array(sdk_of, float))
    np.testing.assert_allclose(terms["actions"], -0.5 * np.array(sdk_of))
    np.testing.assert_allclose(terms["base_ang_vel"], [0.1, -0.2, 0.3])
    np.testing.assert_allclose(terms["command"][:29], robot.DEFAULT_JOINT_POS[sdk_of])
    np.testing.assert_allclose(terms["command"][29:], 0.2 * np.array(sdk_of, float))
    np.testing.assert_allclose(command_term(window.joint_pos[0], window.joint_vel[0], art.joints), terms["command"])


def test_projected_gravity_is_in_the_pelvis_frame(mjlab_shuffled):
    obs = ExternalObservation(mjlab_shuffled)
    rolled = np.array([math.cos(math.pi / 4), math.sin(math.pi / 4), 0, 0])   # +90 deg about x
    win = standing_window()
    # R^T (0, 0, -1) with R = Rx(90) = [[1, 0, 0], [0, 0, -1], [0, 1, 0]] -> (0, -1, 0)
    mjlab_shuffled.observation_terms += (("projected_gravity", 3),)
    try:
        terms = obs.terms(state(quat=rolled, pos=win.root_pos[0]), win, np.zeros(29))
    finally:
        mjlab_shuffled.observation_terms = mjlab_shuffled.observation_terms[:-1]
    np.testing.assert_allclose(terms["projected_gravity"], [0, -1, 0], atol=1e-12)


def test_base_lin_vel_zero_or_from_odometry(tmp_path):
    path = make_external_test_policy("mjlab", tmp_path / "m.onnx")
    win = standing_window()
    zero = ExternalObservation(ext.load_policy(path))
    assert zero.art.base_lin_vel_source == "zero"
    np.testing.assert_array_equal(zero.terms(state(pos=win.root_pos[0], lin_vel=(1, 2, 3)), win, np.zeros(29))["base_lin_vel"], 0)
    odom = ExternalObservation(ext.load_external(path, base_lin_vel="odometry"))
    np.testing.assert_allclose(odom.terms(state(pos=win.root_pos[0], lin_vel=(1, 2, 3)), win, np.zeros(29))["base_lin_vel"], [1, 2, 3])
    with pytest.raises(ObservationError, match="odometry"):
        odom.terms(state(pos=win.root_pos[0], lin_vel=None), win, np.zeros(29))


def test_holosoma_observation_is_alphabetical_with_known_values(holosoma_shuffled):
    """actions, base_ang_vel, dof_pos, dof_vel, motion_command, motion_ref_ori_b = 29+3+29+29+58+6 = 154."""
    art = holosoma_shuffled
    assert [t for t, _ in art.observation_terms] == ["actions", "base_ang_vel", "dof_pos", "dof_vel",
                                                      "motion_command", "motion_ref_ori_b"]
    obs = ExternalObservation(art)
    q = robot.DEFAULT_JOINT_POS + 0.02
    window = standing_window(yaw_rad=math.pi / 2)               # reference faces +y, robot +x
    vec = obs.build(state(q=q, gyro=(0.5, 0, 0)), window, np.full(29, 0.3))
    assert vec.shape == (154,) and vec.dtype == np.float32
    np.testing.assert_allclose(vec[:29], 0.3)
    np.testing.assert_allclose(vec[29:32], [0.5, 0, 0])
    np.testing.assert_allclose(vec[32:61], 0.02, atol=1e-6)
    np.testing.assert_allclose(vec[61:90], 0)
    np.testing.assert_allclose(vec[90:119], robot.DEFAULT_JOINT_POS[[robot.JOINT_INDEX[n] for n in SHUFFLED]], atol=1e-6)
    # torso of the robot: its waist joints are +0.02 rad (yaw, roll, pitch) off; the reference torso is
    # yawed +90 deg: the 6-D term is close to Rz(+90) = [[0, -1], [1, 0], [0, 0]] (row-major)
    np.testing.assert_allclose(vec[148:154], [0, -1, 1, 0, 0, 0], atol=0.05)


def test_history_is_per_term_oldest_first(tmp_path):
    path = make_external_test_policy("holosoma", tmp_path / "h.onnx", with_config=False,
                                     obs_terms=["actions", "base_ang_vel"])
    side = tmp_path / "h.g1.yaml"
    side.write_text("default_joint_pos: {}\naction_scale: 0.25\nobservation_terms: [actions, base_ang_vel]\n"
                    "anchor_body: torso_link\n".format({n: float(robot.DEFAULT_JOINT_POS[i])
                                                       for i, n in enumerate(robot.JOINT_NAMES)}))
    art = ext.load_policy(path)
    art.history_length = 2  # what a history-2 export would declare (its obs width would be doubled)
    obs = ExternalObservation(art)
    first = obs.build(state(gyro=(1, 0, 0)), standing_window(), np.zeros(29))
    second = obs.build(state(gyro=(2, 0, 0)), standing_window(), np.ones(29))
    np.testing.assert_allclose(first[58:64], [0, 0, 0, 1, 0, 0])  # holosoma pads a fresh history with zeros
    np.testing.assert_allclose(second[:29], 0)
    np.testing.assert_allclose(second[29:58], 1)
    np.testing.assert_allclose(second[58:64], [1, 0, 0, 2, 0, 0])


# --- actions back to the robot ---------------------------------------------------------------------

def test_actions_map_back_by_name_with_the_files_scale(mjlab_shuffled):
    art = mjlab_shuffled
    ctrl = ExternalPolicyController(art, warm_up_runs=1)
    np.testing.assert_allclose(art.kp, robot.KP, rtol=1e-5)
    np.testing.assert_allclose(art.action_scale, 0.25 * robot.EFFORT_LIMIT / robot.KP, rtol=1e-5)
    slot = SHUFFLED.index("left_knee_joint")
    action = np.zeros(29)
    action[slot] = 1.0                                          # the artifact's own slot of the left knee
    target = art.action_to_target(action)
    knee = robot.JOINT_INDEX["left_knee_joint"]
    np.testing.assert_allclose(target - robot.DEFAULT_JOINT_POS, np.eye(29)[knee] * art.action_scale[knee], atol=1e-12)
    np.testing.assert_allclose(ctrl.observe_command(target), np.eye(29)[knee], atol=1e-12)
    window = standing_window(clip_time_s=1.0)
    out = ctrl.compute(state(pos=window.root_pos[0]), window, np.zeros(29))
    assert ctrl.last_time_step == 51                            # frame 0 is at clip time 1.02 s: step 51
    np.testing.assert_allclose(out.position, art.action_to_target(art.joints.from_sdk(out.action)))
    np.testing.assert_array_equal(out.kp, art.kp)
