from glob import glob

from setuptools import find_packages, setup

PACKAGE = "g1_common"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "README.md"]),
        (f"share/{PACKAGE}/config", glob("config/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="G1 tracker maintainers",
    maintainer_email="maintainers@g1-tracker.dev",
    description="ROS 2 glue shared by the G1 stack's nodes: topic and service names, QoS, message conversions, lockstep time.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
        ],
    },
)
