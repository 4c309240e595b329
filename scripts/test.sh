#!/usr/bin/env bash
# Run the whole test suite inside .venv (creating it first with scripts/setup.sh if missing).
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k motion -x`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${G1_VENV:-$ROOT/.venv}"
# (Re-)run setup when the venv is missing; setup itself is idempotent and fast when up to date.
bash "$ROOT/scripts/setup.sh"
bash "$ROOT/src/training_ws/setup.sh"  # training venv (torch, rsl-rl) for src/training_ws/test
cd "$ROOT"
# Tests must not depend on a sourced ROS environment of the caller.
unset AMENT_PREFIX_PATH COLCON_PREFIX_PATH ROS_DISTRO ROS_DOMAIN_ID PYTHONPATH
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
exec "$VENV/bin/python" -m pytest "$@"
