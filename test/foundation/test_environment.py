"""The pip-world environment works with nothing sourced, and the g1 command is there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def _clean_env():
    keep = {"HOME", "PATH", "LANG", "TMPDIR", "ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = "/usr/bin:/bin"  # no venv activation, no ROS setup files sourced
    return env


def test_imports_with_nothing_sourced():
    out = subprocess.run([sys.executable, "-c", "import rclpy, g1_interfaces.msg, g1_interfaces.srv; "
                          "import g1_description, g1_common.conversions; print('ok')"],
                         env=_clean_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_g1_command_help():
    out = subprocess.run([str(VENV_BIN / "g1"), "--help"], env=_clean_env(), capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "description" in out.stdout


def test_g1_description_urdf_command(tmp_path):
    target = tmp_path / "g1.urdf"
    out = subprocess.run([str(VENV_BIN / "g1"), "description", "urdf", "-o", str(target)], env=_clean_env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert target.read_text().count("<joint ") == 29


def test_colcon_sees_the_workspace():
    """A distro user's `colcon build` finds every package with the right build type (training_ws is not one)."""
    out = subprocess.run([str(VENV_BIN / "colcon"), "list", "--base-paths", "src"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    found = {line.split()[0]: line.split()[-1] for line in out.stdout.splitlines() if line.strip()}
    assert found.get("g1_interfaces") == "(ros.ament_cmake)"
    for pkg in ("g1_description", "g1_common", "g1_tracker_policy", "motion_server", "g1_hardware", "g1_bringup"):
        assert found.get(pkg) == "(ros.ament_python)", (pkg, out.stdout)
    assert "training_ws" not in found


@pytest.mark.parametrize("pkg", ["g1_description", "g1_common", "g1_tracker_policy", "motion_server",
                                 "g1_hardware", "g1_bringup", "g1_interfaces"])
def test_every_package_has_a_readme(pkg):
    readme = REPO / "src" / pkg / "README.md"
    assert readme.is_file() and len(readme.read_text().strip()) > 200, f"{readme} is missing or empty"


def test_readme_documents_every_topic_and_service():
    from g1_common import topics

    readme = (REPO / "README.md").read_text()
    names = [v for k, v in vars(topics).items() if k.isupper() and isinstance(v, str)]
    missing = [n for n in names if f"`{n}`" not in readme and n not in readme]
    assert not missing, f"README's topic tour lacks {missing}"


def test_readme_top_has_the_three_commands():
    top = (REPO / "README.md").read_text().splitlines()[:8]
    text = "\n".join(top)
    for cmd in ("bash scripts/setup.sh", "bash scripts/test.sh", ".venv/bin/g1 track"):
        assert cmd in text, cmd
