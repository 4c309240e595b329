"""Policies shipped with the stack (trained by src/training_ws, committed with their contract,
training summary and evaluation report)."""

from __future__ import annotations

from pathlib import Path

from g1_description.paths import package_share

POLICY_DIR_NAME = "policies"


def policy_dir() -> Path:
    return package_share("g1_tracker_policy") / POLICY_DIR_NAME


def default_policy() -> Path | None:
    """The policy `g1 track` uses when none is given: ``policies/default.onnx`` if one is shipped."""
    path = policy_dir() / "default.onnx"
    return path if path.is_file() else None
