"""ament_python package of the ROS-free usx core; also a plain pip-installable package."""

from setuptools import find_packages, setup

PACKAGE = "usx_model"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test", "test.*"]),
    package_data={PACKAGE: ["weights/*.pt", "weights/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="usx developers",
    maintainer_email="dev@usx.invalid",
    description="ROS-free core of usx: runtime stages, completion network, simulators, evaluation.",
    license="MIT",
    entry_points={"console_scripts": ["usx = usx_model.cli.main:main"]},
)
