from glob import glob

from setuptools import find_packages, setup

PACKAGE = "motion_server"

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
    description="Motion library, importers and the motion_server node publishing reference windows.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "motion_server = motion_server.node:main",
        ],
    },
)
