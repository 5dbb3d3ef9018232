"""ament_python package of the usx ROS 2 nodes.

Installs the repository's top-level ``launch/`` and ``config/`` folders into
``share/usx_ros/`` so that ``ros2 launch usx_ros phantom.launch.py`` finds them.
"""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "usx_ros"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", sorted(glob("launch/*.py"))),
        (f"share/{PACKAGE}/config", sorted(glob("config/*"))),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="usx developers",
    maintainer_email="dev@usx.invalid",
    description="ROS 2 nodes, launch files and bag tools of usx.",
    license="MIT",
    entry_points={
        "console_scripts": [
            *(
                f"{name} = usx_ros.nodes.{name}:main"
                for name in (
                    "probe_tracker",
                    "us_compounding",
                    "xray_ingest",
                    "completion",
                    "igtl_bridge",
                )
            ),
            "phantom = usx_ros.sim.phantom:main",
            "bag_record = usx_ros.tools.bag_record:main",
            "bag_replay = usx_ros.tools.bag_replay:main",
        ],
        "usx.commands": [
            "launch = usx_ros.tools.cli_launch",
            "demo = usx_ros.tools.cli_demo",
            "params = usx_ros.tools.param_docs",
            "calibrate = usx_ros.tools.cli_calibrate",
            "view = usx_ros.tools.cli_view",
            "bag = usx_ros.tools.cli_bag",
        ],
        "usx.bench": [
            "graph = usx_ros.tools.bench_graph",
            "final = usx_ros.tools.bench_final",
            "fuzz = usx_ros.tools.bench_fuzz",
            "faults = usx_ros.tools.bench_faults",
            "multihost = usx_ros.tools.bench_multihost",
            "soak = usx_ros.tools.bench_soak",
        ],
    },
)
