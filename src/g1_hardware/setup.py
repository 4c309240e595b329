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
        ],
    },
)
