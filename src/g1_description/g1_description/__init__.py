"""G1 description: joint order, limits, gains, key bodies, the MJCF locator and a URDF generator.

The one source of truth for the robot. See README.md.
"""

from .robot import (  # noqa: F401
    CONTROL_PERIOD_S,
    CONTROL_RATE_HZ,
    DEFAULT_JOINT_POS,
    DescriptionError,
    EFFORT_LIMIT,
    JOINT_INDEX,
    JOINT_LOWER,
    JOINT_NAMES,
    JOINT_UPPER,
    JOINTS,
    KD,
    KEY_BODIES,
    KP,
    NUM_JOINTS,
    PHYSICS_DT_S,
    VELOCITY_LIMIT,
)
