"""usx_model is the ROS-free core: it must import, whole, without rclpy or ROS variables."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import venv
from pathlib import Path

import usx_model

PKG_DIR = Path(usx_model.__file__).parent


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_imports_ros():
    ros_modules = {"rclpy", "rosidl_runtime_py", "sensor_msgs", "std_msgs", "usx_msgs", "usx_ros"}
    offenders = {
        str(p.relative_to(PKG_DIR)): sorted(_imported_modules(p) & ros_modules)
        for p in PKG_DIR.rglob("*.py")
        if _imported_modules(p) & ros_modules
    }
    assert offenders == {}


def _clean_env() -> dict[str, str]:
    drop = ("AMENT_PREFIX_PATH", "CMAKE_PREFIX_PATH", "ROS_DISTRO", "LD_LIBRARY_PATH", "PYTHONPATH")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("ROS_")}


def test_imports_in_plain_venv_without_ros(tmp_path):
    """A bare venv (no ROS wheels, no ROS variables) that only sees the usx_model sources."""
    env_dir = tmp_path / "plain"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    site = next((env_dir / "lib").glob("python3.*/site-packages"))
    (site / "usx_model_src.pth").write_text(str(PKG_DIR.parent) + "\n")
    code = "import sys, usx_model; assert 'rclpy' not in sys.modules; print(usx_model.__version__)"
    out = subprocess.run(
        [str(env_dir / "bin" / "python"), "-c", code],
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == usx_model.__version__


def test_every_submodule_imports_without_pulling_rclpy(tmp_path):
    code = (
        "import importlib, pkgutil, sys, usx_model\n"
        "for m in pkgutil.walk_packages(usx_model.__path__, 'usx_model.'):\n"
        "    importlib.import_module(m.name)\n"
        "ros = ('rclpy', 'usx_msgs', 'usx_ros')\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in ros)\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run(
        [sys.executable, "-P", "-c", code],
        cwd=tmp_path,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
