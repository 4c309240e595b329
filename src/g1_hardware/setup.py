from glob import glob

from setuptools import find_packages, setup

PACKAGE = "g1_hardware"

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
    description="G1 hardware interface: a MuJoCo simulator node and the real-G1 (Unitree lowcmd/lowstate) driver behind the same topics.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "g1_sim = g1_hardware.sim_node:main",
            "g1_driver = g1_hardware.g1_driver:main",
            "g1_fake_robot = g1_hardware.fake_g1:main",
            "g1_command_echo = g1_hardware.command_echo:main",
            "g1_leg_odometry = g1_hardware.leg_odometry_node:main",
        ],
    },
)
