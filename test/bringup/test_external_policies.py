"""Policies trained elsewhere through the full ROS graph in lockstep (`g1 track --policy THEIR.onnx`):
the mjlab/BeyondMimic B_Fence1 export and holosoma's PPO dance run unchanged, their embedded motion
streamed by motion_server, with the same safety machine, simulator, recording and evaluation; holosoma's
FastSAC export (no action scale in its metadata) is refused.

holosoma's models come from the PyPI wheel holosoma-inference==0.1.3 (`pip download --no-deps`, unzip,
no install), cached outside the repository ($G1_TEST_CACHE or ~/.cache/g1-tests); the tests that need
them are skipped, with the reason, only if the download is impossible (no network, no pip).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from g1_bringup.evaluation import read_bag
from g1_common import topics

HOLOSOMA = "holosoma-inference==0.1.3"
CACHE = Path(os.environ.get("G1_TEST_CACHE", Path.home() / ".cache" / "g1-tests"))


def g1(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "g1_bringup.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def g1_track(out: Path, *args: str) -> dict:
    proc = g1("track", "--out", str(out), "--quiet", *args)
    assert proc.returncode == 0, f"g1 track failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="session")
def holosoma_models() -> Path:
    """models/wbt of the holosoma-inference wheel, downloaded once into the cache."""
    target = CACHE / "holosoma-inference-0.1.3"
    wbt = target / "holosoma_inference" / "models" / "wbt"
    if not (wbt / "ppo_g1_29dof_dancing.onnx").is_file():
        wheels = CACHE / "wheels"
        proc = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", HOLOSOMA, "-d", str(wheels)],
                              capture_output=True, text=True, timeout=300)
        found = sorted(wheels.glob("holosoma_inference-0.1.3-*.whl"))
        if proc.returncode != 0 or not found:
            pytest.skip(f"cannot download {HOLOSOMA} from PyPI (pip exit {proc.returncode}: "
                        f"{proc.stderr.strip()[-300:]}); the holosoma tests need its models")
        with zipfile.ZipFile(found[0]) as whl:
            for name in whl.namelist():
                if name.startswith("holosoma_inference/models/wbt/") and name.endswith(".onnx"):
                    whl.extract(name, target)
    return wbt


def _policy_commands(bag: Path) -> list:
    cmds = read_bag(bag, wanted_topics=(topics.JOINT_COMMAND,))[topics.JOINT_COMMAND]
    from g1_interfaces.msg import JointCommand

    return [m for _, m in cmds if m.source == JointCommand.SOURCE_POLICY]


def test_mjlab_beyondmimic_b_fence1_tracks_its_whole_embedded_clip(tmp_path, shared_data):
    from g1_tracker_policy import external

    policy = shared_data / "policies" / "mjlab_B_Fence1" / "B_Fence1.onnx"
    out = tmp_path / "fence"
    report = g1_track(out, "--policy", str(policy))        # no --motion: the policy's own embedded motion
    clip = report["per_clip"][0]
    assert report["controller"] == "policy:mjlab:B_Fence1"
    assert clip["motion"] == "B_Fence1" and clip["duration_s"] == pytest.approx(32.36)
    assert clip["success"] is True and clip["completion"] >= 0.99, clip
    assert clip["E_mpkpe_mm"] <= 60.0, clip                    # base_lin_vel fed as zero (the default)
    assert report["commands"]["all_finite"] and report["commands"]["within_joint_limits"]
    events = [e["event"] for e in report["events"]]
    assert "mode -> damp" not in events, events
    # the streamed reference is the model's embedded motion, as a clip with provenance
    with np.load(out / "motions" / "B_Fence1.npz", allow_pickle=False) as npz:
        provenance = json.loads(str(npz["provenance_json"]))
    assert provenance["source_format"] == "mjlab_onnx_embedded" and provenance["time_steps"] == 1619
    # the artifact's own gains reached the simulator in every policy command (the real driver reads the same)
    art = external.load_policy(policy)
    commands = _policy_commands(out / "bag")
    assert len(commands) > 1500
    for msg in commands[::100]:
        names = list(msg.joint_names)
        kp = np.array(msg.kp)[[names.index(n) for n in art.joints.names]]
        np.testing.assert_allclose(kp, art.joints.from_sdk(art.kp), rtol=1e-6)
    # open-loop replay of the bag through the same file reproduces every recorded policy command
    proc = g1("replay", str(out / "bag"), "--policy", str(policy), timeout=300)
    assert proc.returncode == 0, proc.stderr
    replay = json.loads(proc.stdout)
    assert replay["ticks_compared"] > 1500 and replay["target_diff_rad_max"] < 1e-4, replay


def test_holosoma_ppo_dance_tracks_its_first_35_s(tmp_path, holosoma_models):
    out = tmp_path / "dance"
    # 3 s standing + 2 s blend-in + 35 s of its 131 s dance
    report = g1_track(out, "--policy", str(holosoma_models / "ppo_g1_29dof_dancing.onnx"), "--duration", "40")
    clip = report["per_clip"][0]
    assert report["controller"] == "policy:holosoma:ppo_g1_29dof_dancing"
    assert clip["duration_s"] == pytest.approx(131.46)
    assert clip["terminated_at_clip_time_s"] is None, clip     # no fall (0.25 m / 1.0 rad rules)
    assert clip["completion"] * clip["duration_s"] >= 30.0, clip
    # it has no position input: global drift is expected; the pose itself is tracked
    assert clip["key_body_root_relative_mm"] <= 60.0, clip
    assert report["commands"]["all_finite"] and report["commands"]["within_joint_limits"]
    assert "mode -> damp" not in [e["event"] for e in report["events"]]


def test_holosoma_fastsac_without_a_sidecar_is_refused(tmp_path, holosoma_models):
    policy = holosoma_models / "fastsac_g1_29dof_dancing.onnx"
    proc = g1("track", "--policy", str(policy), "--out", str(tmp_path / "refused"), "--quiet", timeout=120)
    assert proc.returncode == 2, proc.stderr
    for words in ("refused", "action_scale", "default_joint_pos", "never guesses", "sidecar"):
        assert words in proc.stderr, proc.stderr
    assert not (tmp_path / "refused").exists()                 # nothing half-written left behind
    proc = g1("policy", "inspect", str(policy), timeout=120)
    assert proc.returncode == 1 and "action_scale" in proc.stderr
    # with the sidecar the README documents, the facts are supplied explicitly and it loads
    import re

    from g1_tracker_policy import external

    readme = (Path(__file__).resolve().parents[2] / "src" / "g1_tracker_policy" / "README.md").read_text()
    side = tmp_path / "facts.g1.yaml"
    side.write_text(re.search(r"```yaml\n(# fastsac.*?)```", readme, re.S).group(1))
    art = external.load_policy(policy, side)
    assert art.facts_from["action_scale"].startswith("sidecar") and art.obs_size == 154
