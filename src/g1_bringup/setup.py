from glob import glob

from setuptools import find_packages, setup

PACKAGE = "g1_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "README.md"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.py")),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/rviz", glob("rviz/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="G1 tracker maintainers",
    maintainer_email="maintainers@g1-tracker.dev",
    description="Bringup of the G1 tracking stack: launch files, parameters, RViz config, the g1 command, recording and evaluation.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "g1 = g1_bringup.cli:main",
            "g1_recorder = g1_bringup.recorder:main",
            "g1_tf = g1_bringup.tf_node:main",
            "foxglove_bridge = g1_bringup.foxglove_bridge:main",
        ],
    },
)
