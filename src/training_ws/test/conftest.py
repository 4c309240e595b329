"""Fixtures of the training workspace's tests.

Two kinds of tests live here:
- numpy-only tests (task, sampling, observation parity) import ``g1_train`` straight from this source
  tree in the main suite's interpreter: the task code needs no torch on purpose;
- torch tests (models, PPO/DAgger runners, export) run in the training venv (``src/training_ws/.venv``,
  made by ``bash src/training_ws/setup.sh``, which scripts/test.sh runs first) as subprocesses, so the
  main suite never has to import torch.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_testutil import SHARED_MOTIONS, TRAIN_PY  # noqa: E402


@pytest.fixture(scope="session")
def g1_moves() -> Path:
    if not SHARED_MOTIONS.is_dir():
        pytest.fail(f"test data missing: {SHARED_MOTIONS} (the shared data folder beside the repository)")
    return SHARED_MOTIONS


@pytest.fixture(scope="session")
def train_python() -> Path:
    if not TRAIN_PY.is_file():
        pytest.fail(f"training venv missing ({TRAIN_PY}); run: bash src/training_ws/setup.sh")
    return TRAIN_PY
