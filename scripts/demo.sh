#!/usr/bin/env bash
# README's first command (after setup): the main job.
# The ROS phantom demo (`usx demo`) is the main job once it exists; until then this runs
# the most complete pipeline the project has, and says so on its first line.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
USX=.venv/bin/usx
OUT=out/demo
mkdir -p "$OUT"
if $USX demo --help >/dev/null 2>&1; then
    exec $USX demo --out "$OUT"
fi
echo "[demo] the ROS phantom demo has not landed yet; running the most complete pipeline there is:"
echo "[demo] workspace check (ROS 2 + usx_msgs + core), $(ls usx_model/usx_model | tr '\n' ' ')"
.venv/bin/python -c "import rclpy, usx_msgs.msg, usx_model, torch, open3d; print('[demo] ROS 2 Jazzy, usx_msgs, torch', torch.__version__, 'and open3d', open3d.__version__, 'import')"
$USX --help
