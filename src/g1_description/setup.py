from glob import glob

from setuptools import find_packages, setup

PACKAGE = "g1_description"

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
    description="The Unitree G1 29-DoF description: joint order, limits, gains, key bodies, MJCF locator and URDF generator.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
        ],
    },
)
