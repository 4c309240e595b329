"""Helpers of the training workspace's tests (a uniquely named module: the repository has several
conftest.py files, so tests import helpers from here, never ``from conftest import``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WS = Path(__file__).resolve().parents[1]
ROOT = WS.parents[1]
SHARED_MOTIONS = ROOT.parent / "shared" / "data" / "motions" / "g1_moves"
TRAIN_PY = Path(os.environ.get("G1_TRAIN_VENV", WS / ".venv")) / "bin" / "python"

if str(WS) not in sys.path:  # g1_train's numpy task code, importable without installing it here
    sys.path.insert(0, str(WS))


def run_in_train_venv(train_python: Path, args: list[str], timeout: float, cwd: Path | None = None,
                      env_extra: dict[str, str] | None = None):
    """Run the training venv's python with ``args``; raise with its output if it fails."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = env.get("OMP_NUM_THREADS", "1")
    env.update(env_extra or {})
    proc = subprocess.run([str(train_python), *args], cwd=str(cwd or ROOT), env=env, capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}"
                             f"\n--- stderr ---\n{proc.stderr[-6000:]}")
    return proc
