#!/usr/bin/env bash
# One-command setup of the usx workspace (called by `make setup`).
#
# 1. Debian packages (apt-get), only those missing.
# 2. .venv with Python 3.11: torch (CPU build), Python deps, ROS 2 Jazzy wheels.
# 3. Rewrites the build-machine paths baked into the ROS wheels' CMake exports.
# 4. colcon build of usx_msgs, usx_model, usx_ros into install/.
# 5. Editable installs of usx_model/usx_ros into .venv and a .pth hook, so that
#    `.venv/bin/usx ...` works from any directory with nothing sourced.
#
# `setup.sh --test-tools` (run by scripts/test.sh) installs only what the tests alone need,
# into a set-up workspace: requirements/apt-test.txt and requirements/python-test.txt.
#
# Idempotent: every step is skipped when its inputs have not changed since the last
# successful run (stamps under .venv/.usx-stamps), so a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3.11}"
VENV="$ROOT/.venv"
STAMPS="$VENV/.usx-stamps"
TORCH_VERSION="2.13.0"

log() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# Hash of the given files (and this script): a step re-runs when it changes.
# (a file deleted but not yet committed is skipped, not an error)
inputs_hash() { { cat "$0" "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
step_done() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
mark_done() { mkdir -p "$STAMPS"; echo "$2" > "$STAMPS/$1"; }

as_root() {
    if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        die "need root (or sudo) to run: $*"
    fi
}

# --- 1. Debian packages ---------------------------------------------------------------
# apt-get install those of the given packages that are not installed yet.
apt_install_missing() {
    local p missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        log "apt-get install ${missing[*]}"
        as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

apt_packages() {
    local wanted
    mapfile -t wanted < <(grep -vE '^\s*(#|$)' requirements/apt.txt)
    # Python headers and venv support for the interpreter we use (Debian splits them out).
    if ! "$PYTHON" -c 'import sysconfig,os,sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
        wanted+=("${PYTHON##*/}-dev")
    fi
    if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        wanted+=("${PYTHON##*/}-venv")
    fi
    apt_install_missing "${wanted[@]}"
}

# --- 2. virtual environment ---------------------------------------------------------------
make_venv() {
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found; usx needs CPython 3.11"
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
        || die "$PYTHON is not Python 3.11 (the ROS 2 Jazzy wheels are built for CPython 3.11)"
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
}

pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@"; }

install_torch() {
    if "$VENV/bin/python" -c "import torch,sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
        return
    fi
    # The CPU build: never let pip resolve a CUDA torch (several GB). A local wheel (pip's
    # find-links) is preferred; otherwise PyTorch's own CPU index.
    local wheel
    wheel=$(find $("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true) \
        -maxdepth 1 -name "torch-${TORCH_VERSION}+cpu-cp311-*.whl" 2>/dev/null | head -n 1 || true)
    if [[ -n "$wheel" ]]; then
        log "installing torch $TORCH_VERSION (CPU) from $wheel"
        pip_install "$wheel"
    else
        log "installing torch $TORCH_VERSION (CPU) from the PyTorch CPU index"
        pip_install "torch==$TORCH_VERSION" --index-url https://download.pytorch.org/whl/cpu
    fi
}

python_deps() {
    local h
    h=$(inputs_hash requirements/python.txt requirements/ros.txt)
    step_done pip "$h" && return
    log "installing Python dependencies and ROS 2 Jazzy wheels (first run: a few minutes)"
    install_torch
    pip_install -r requirements/python.txt -r requirements/ros.txt
    # Guard: no dependency may have replaced the CPU torch.
    "$VENV/bin/python" -c "import torch,sys; sys.exit(torch.version.cuda is not None)" \
        || die "a CUDA build of torch was installed; remove it and re-run make setup"
    mark_done pip "$h"
}

# --- 3. ROS wheel CMake paths ---------------------------------------------------------
fix_cmake_paths() {
    # The wheels' exported CMake targets name Python and numpy include dirs of the machine
    # that built them (/opt/python/cp311-cp311/...). Point them at this venv's.
    local pyinc npinc files
    pyinc=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
    npinc=$("$VENV/bin/python" -c "import numpy; print(numpy.get_include())")
    files=$(grep -rl "/opt/python/cp311-cp311" "$VENV/share" --include='*.cmake' 2>/dev/null || true)
    [[ -z "$files" ]] && return
    log "rewriting build-machine include paths in $(echo "$files" | wc -l) CMake files"
    echo "$files" | xargs sed -i \
        -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$npinc#g" \
        -e "s#/opt/python/cp311-cp311/include/python3.11#$pyinc#g"
}

# --- 4. colcon build -----------------------------------------------------------------
colcon_build() {
    local h
    # Tracked and new (not ignored) files alike: a new .msg must trigger a rebuild.
    h=$(inputs_hash $(git ls-files --cached --others --exclude-standard usx_msgs \
        usx_model/setup.py usx_model/package.xml usx_ros/setup.py usx_ros/package.xml \
        launch config 2>/dev/null || find usx_msgs launch config -type f))
    step_done colcon "$h" && [[ -d install/usx_msgs ]] && return
    log "colcon build (usx_msgs, usx_model, usx_ros)"
    # --symlink-install leaves links to deleted sources behind, and then fails on them.
    find build install -xtype l -delete 2>/dev/null || true
    (
        export AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH"
        "$VENV/bin/colcon" --log-base log build --symlink-install \
            --event-handlers console_cohesion- summary+ \
            --cmake-args -DPython3_EXECUTABLE="$VENV/bin/python" -DBUILD_TESTING=OFF \
            > log/colcon_build.out 2>&1 || { tail -n 40 log/colcon_build.out >&2; exit 1; }
    ) || die "colcon build failed (full log: log/colcon_build.out)"
    mark_done colcon "$h"
}

# --- 5. venv hooks and editable installs ------------------------------------------------
venv_hooks() {
    local site h
    site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    h=$(inputs_hash usx_model/setup.py usx_ros/setup.py)
    if ! step_done editable "$h"; then
        log "installing usx_model and usx_ros (editable) into .venv"
        pip_install --no-deps --no-build-isolation -e usx_model -e usx_ros 2>/dev/null
        mark_done editable "$h"
    fi
    # Runs at interpreter start-up, before the ROS wheels' bootstrapper (.pth files are
    # read in name order) re-executes Python with LD_LIBRARY_PATH: our additions are
    # inherited by that re-exec, so usx_msgs loads with nothing sourced.
    cat > "$site/_usx_workspace_env.py" <<EOF
"""Generated by scripts/setup.sh: lets this venv use the colcon workspace without sourcing."""
import os
import sys

_INSTALL = "$ROOT/install"
_PY = os.path.join(_INSTALL, "usx_msgs", "lib", "python3.11", "site-packages")
_LIB = os.path.join(_INSTALL, "usx_msgs", "lib")


def _prepend(var, *paths):
    parts = [p for p in os.environ.get(var, "").split(os.pathsep) if p]
    new = [p for p in paths if p not in parts]
    if new:
        os.environ[var] = os.pathsep.join(new + parts)


_prepend("LD_LIBRARY_PATH", _LIB)
_prepend("AMENT_PREFIX_PATH", *(os.path.join(_INSTALL, p) for p in ("usx_msgs", "usx_model", "usx_ros")), sys.prefix)
if _PY not in sys.path:
    sys.path.append(_PY)
EOF
    echo "import _usx_workspace_env" > "$site/a0_usx_workspace.pth"
}

# --- test tools (--test-tools) --------------------------------------------------------
test_tools() {
    local wanted h
    [[ -x "$VENV/bin/python" ]] || die "no $VENV: run make setup first"
    mapfile -t wanted < <(grep -vE '^\s*(#|$)' requirements/apt-test.txt)
    apt_install_missing "${wanted[@]}"
    h=$(inputs_hash requirements/python-test.txt)
    step_done pip-test "$h" && return
    log "installing the test-only Python packages"
    pip_install -r requirements/python-test.txt
    mark_done pip-test "$h"
}

main() {
    local t0=$SECONDS
    if [[ "${1:-}" == "--test-tools" ]]; then
        test_tools
        return
    fi
    [[ $# -eq 0 ]] || die "unknown argument $1 (expected none or --test-tools)"
    mkdir -p log
    apt_packages
    make_venv
    python_deps
    fix_cmake_paths
    colcon_build
    venv_hooks
    "$VENV/bin/python" -c "import usx_msgs.msg, rclpy, torch, open3d, usx_model, usx_ros" \
        || die "the environment does not import; see the messages above"
    log "ready in $((SECONDS - t0)) s: .venv/bin/usx --help"
}

main "$@"
