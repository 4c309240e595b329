from glob import glob

from setuptools import find_packages, setup

PACKAGE = "g1_tracker_policy"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml", "README.md"]),
        (f"share/{PACKAGE}/config", glob("config/*")),
        (f"share/{PACKAGE}/policies", glob("policies/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="G1 tracker maintainers",
    maintainer_email="maintainers@g1-tracker.dev",
    description="The G1 tracking policy node: observation builder, policy artifact contract, ONNX Runtime inference, safety state machine.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "g1_policy = g1_tracker_policy.node:main",
            "g1_policy_testing = g1_tracker_policy.testing:main",
        ],
    },
)
