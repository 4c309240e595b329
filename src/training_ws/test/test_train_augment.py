"""Held-out split and augmentation (mirroring, time scaling) of the training clips (numpy, main venv)."""

from __future__ import annotations

import numpy as np
import pytest
import train_testutil  # noqa: F401  (puts g1_train on sys.path)

from g1_description import robot
from motion_server.importers import import_motion
from motion_server.kinematics import KeyBodyKinematics

from g1_train.config import MotionCfg, load_config
from g1_train.motions import (MotionLoadError, _at_control_rate, load_motion_set, mirror_motion, mirror_tables,
                              time_scaled_motion)


@pytest.fixture(scope="module")
def clip(g1_moves):
    return _at_control_rate(import_motion(g1_moves / "karate" / "M_ShortMove14.csv").motion)


def test_mirror_tables_swap_sides_and_flip_roll_and_yaw():
    jperm, jsign, kperm = mirror_tables()
    names = robot.JOINT_NAMES
    for j, jp in enumerate(jperm):
        assert names[jp] == names[j].replace("left_", "@").replace("right_", "left_").replace("@", "right_")
        want = 1.0 if ("pitch" in names[j] or "knee" in names[j] or "elbow" in names[j]) else -1.0
        assert jsign[j] == want, names[j]
    assert np.array_equal(jperm[jperm], np.arange(29)) and np.array_equal(kperm[kperm], np.arange(len(kperm)))
    assert robot.KEY_BODIES[kperm[robot.KEY_BODIES.index("left_wrist_yaw_link")]] == "right_wrist_yaw_link"


def test_mirror_of_mirror_is_the_original(clip):
    once = mirror_motion(clip)
    twice = mirror_motion(once)
    assert once.name == clip.name + "@mirror" and twice.name == clip.name
    for f in ("joint_pos", "joint_vel", "root_pos", "root_quat_wxyz", "root_lin_vel", "root_ang_vel", "key_body_pos"):
        assert np.array_equal(getattr(twice, f), getattr(clip, f)), f
        assert not np.array_equal(getattr(once, f), getattr(clip, f)), f
    assert twice.provenance["mirrored"] is False and once.provenance["mirrored"] is True


def test_mirrored_clip_is_physically_the_mirror_image(clip):
    """Forward kinematics of the mirrored joints and root give the mirrored key-body positions (the
    joint signs are right), the mirror stays inside the joint limits, and left and right swap: the
    mirrored left wrist is where the original right wrist was, reflected."""
    m = mirror_motion(clip)
    fk = KeyBodyKinematics().key_body_positions(m.root_pos, m.root_quat_wxyz, m.joint_pos)
    np.testing.assert_allclose(fk, m.key_body_pos, atol=1e-5)
    assert np.all(m.joint_pos >= robot.JOINT_LOWER - 1e-6) and np.all(m.joint_pos <= robot.JOINT_UPPER + 1e-6)
    lw, rw = robot.KEY_BODIES.index("left_wrist_yaw_link"), robot.KEY_BODIES.index("right_wrist_yaw_link")
    np.testing.assert_allclose(m.key_body_pos[:, lw], clip.key_body_pos[:, rw] * [1, -1, 1])
    # finite differences of the mirrored positions match the mirrored velocities as well as the original's do
    dt = 1.0 / m.fps
    fd = np.diff(m.joint_pos, axis=0) / dt
    err_m = np.abs(fd - m.joint_vel[:-1]).mean()
    err_o = np.abs(np.diff(clip.joint_pos, axis=0) / dt - clip.joint_vel[:-1]).mean()
    assert err_m == pytest.approx(err_o, rel=1e-9)


def test_time_scaling_plays_faster_with_scaled_velocities(clip):
    fast = time_scaled_motion(clip, 2.0)
    assert fast.name == clip.name + "@x2" and fast.fps == robot.CONTROL_RATE_HZ
    assert fast.duration_s == pytest.approx(clip.duration_s / 2, abs=robot.CONTROL_PERIOD_S)
    np.testing.assert_allclose(fast.joint_pos[:-1], clip.joint_pos[:-1:2][:len(fast.joint_pos) - 1], atol=1e-12)
    np.testing.assert_allclose(fast.joint_vel[:-1], 2 * clip.joint_vel[:-1:2][:len(fast.joint_vel) - 1], atol=1e-12)
    np.testing.assert_allclose(fast.root_ang_vel[3], 2 * clip.root_ang_vel[6], atol=1e-12)
    slow = time_scaled_motion(clip, 0.5)
    assert slow.num_frames == 2 * clip.num_frames - 1
    np.testing.assert_allclose(slow.joint_pos[::2], clip.joint_pos, atol=1e-12)
    np.testing.assert_allclose(slow.joint_pos[1], 0.5 * (clip.joint_pos[0] + clip.joint_pos[1]), atol=1e-12)
    assert np.array_equal(time_scaled_motion(clip, 1.0).joint_pos, clip.joint_pos)
    with pytest.raises(ValueError, match="speed"):
        time_scaled_motion(clip, 0.0)


def test_split_and_augmentation_of_a_motion_set(g1_moves):
    cfg = MotionCfg(sources=[str(g1_moves / "karate")], names=["M_ShortMove"],
                    heldout=["M_ShortMove12"], mirror=True, time_scales=[1.0, 1.25])
    train = load_motion_set(cfg)
    base = ["M_ShortMove13", "M_ShortMove14", "M_ShortMove16"]
    want = base + [n + "@mirror" for n in base]
    assert train.names == want + [n + "@x1.25" for n in want]
    held = load_motion_set(cfg, split="heldout", augmented=False)
    assert held.names == ["M_ShortMove12"]
    assert load_motion_set(cfg, split="all", augmented=False).num_clips == 4
    with pytest.raises(ValueError, match="split"):
        load_motion_set(cfg, split="test")


def test_heldout_names_must_exist(g1_moves):
    with pytest.raises(MotionLoadError, match="not in the sources"):
        load_motion_set(MotionCfg(sources=[str(g1_moves / "bonus")], heldout=["B_HandsUp", "Nope"]), split="heldout")


def test_general_config_holds_out_three_dance_and_two_karate_clips(g1_moves):
    cfg = load_config(train_testutil.WS / "configs" / "general.yaml")
    held = cfg.env.motions.heldout
    assert len(held) == 5
    assert sum((g1_moves / "dance" / f"{n}.csv").is_file() for n in held) == 3
    assert sum((g1_moves / "karate" / f"{n}.csv").is_file() for n in held) == 2


def test_eval_split_tables(tmp_path, g1_moves):
    """`g1-train eval --split all`: the train clips (sources minus held-out, no augmentation) and the
    held-out clips, each with its summary (success count, mean completion, median E_mpkpe), in JSON and
    markdown; the held-out clips are never in the train table."""
    import json

    from g1_train.cli import main

    held = ["B_DadDance", "B_LongDance"]
    rc = main(["eval", "--config", str(train_testutil.WS / "configs" / "smoke.yaml"), "--artifact", "baseline",
               "--set", f"env.motions.sources=[{g1_moves / 'dance'}]", "--set", f"env.motions.heldout=[{','.join(held)}]",
               "--set", "env.motions.mirror=true", "--split", "all", "--max-s", "0.4",
               "--json", str(tmp_path / "e.json"), "--markdown", str(tmp_path / "e.md")])
    assert rc == 0
    rep = json.loads((tmp_path / "e.json").read_text())
    train, heldout = rep["splits"]["train"], rep["splits"]["heldout"]
    assert [c["motion"] for c in heldout["per_clip"]] == held
    assert [c["motion"] for c in train["per_clip"]] == ["B_StretchDance", "B_WiggleDance"]  # max_clips 2, no mirrors
    for split in (train, heldout):
        s = split["summary"]
        assert s["clips"] == 2 and s["successes"] == sum(c["success"] for c in split["per_clip"])
        assert s["completion_mean"] == pytest.approx(np.mean([c["completion"] for c in split["per_clip"]]))
        assert s["E_mpkpe_median_mm"] == pytest.approx(np.median([c["E_mpkpe_mm"] for c in split["per_clip"]]))
        assert s["E_root_xy_median_mm"] == pytest.approx(np.median([c["E_root_xy_mm"] for c in split["per_clip"]]))
    md = (tmp_path / "e.md").read_text()
    assert "| train | 2 |" in md and "| heldout | 2 |" in md and "| heldout | B_LongDance |" in md


def test_ground_feet_loads_grounded_clips_and_the_pass_through_stays_up_longer(g1_moves):
    """env.motions.ground_feet: every clip through motion_server's grounding; a zero residual (the
    pass-through of the reference under STAND gains, spawned in frame 0, nominal physics) then stays up
    longer on the same clips (measured: median 1.1 -> 2.0 s over all 49 G1-Moves clips)."""
    from g1_train.config import EnvCfg
    from g1_train.env import TrackingEnv

    names = ["B_HandsUp", "J_Dance8_WestCoast", "M_ShortMove14", "B_DadDance"]
    survived = {}
    for ground in (False, True):
        motions = MotionCfg(sources=[str(g1_moves)], names=names, ground_feet=ground)
        ms = load_motion_set(motions, augmented=False)
        assert sorted(ms.names) == sorted(names)
        assert all(bool(p.get("grounding")) == ground for p in ms.provenance)
        cfg = EnvCfg(num_envs=ms.num_clips, gains="stand", action_base="reference_next_frame", motions=motions)
        cfg.randomization.enabled = False
        cfg.sampling.max_segment_s = 100.0
        env = TrackingEnv(cfg, ms)
        n = env.num_envs
        last = np.minimum(ms.length - 1, 500)
        env.reset(np.ones(n, dtype=bool), episodes=(np.arange(n), np.zeros(n, dtype=np.int64), last))
        alive, running = np.zeros(n), np.ones(n, dtype=bool)
        for _ in range(500):
            _, _, terminated, time_out, _ = env.step(np.zeros((n, 29)))
            alive += running
            running &= ~(terminated | time_out)
            if not running.any():
                break
        survived[ground] = alive * env.dt
    assert np.median(survived[False]) < 1.6, survived
    assert survived[True].sum() > 1.5 * survived[False].sum(), survived
