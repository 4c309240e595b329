"""Message types for bag files and Foxglove: the ROS 2 Kilted types plus g1_interfaces, from .msg text.

rosbags (pure Python) writes and reads rosbag2 files without rosbag2; it needs each custom type's
definition, which we read from the installed g1_interfaces .msg files so there is one definition.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore

INTERFACE_PACKAGE = "g1_interfaces"


def interface_msg_dir() -> Path:
    """Directory with g1_interfaces' .msg files (installed share/ in both worlds, or the source tree)."""
    candidates = []
    for prefix in filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep)):
        candidates.append(Path(prefix) / "share" / INTERFACE_PACKAGE / "msg")
    candidates.append(Path(sys.prefix) / "share" / INTERFACE_PACKAGE / "msg")
    candidates.append(Path(__file__).resolve().parents[2] / INTERFACE_PACKAGE / "msg")
    for path in candidates:
        if (path / "ReferenceWindow.msg").is_file():
            return path
    raise FileNotFoundError(f"g1_interfaces .msg files not found (looked in {[str(c) for c in candidates]}); "
                            "run `bash scripts/setup.sh` or source your colcon install")


@functools.lru_cache(maxsize=1)
def typestore():
    """A rosbags Typestore of ROS 2 Kilted with the g1_interfaces messages registered."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for msg_file in sorted(interface_msg_dir().glob("*.msg")):
        types.update(get_types_from_msg(msg_file.read_text(), f"{INTERFACE_PACKAGE}/msg/{msg_file.stem}"))
    store.register(types)
    return store


def ros_type_name(msg_class) -> str:
    """'sensor_msgs/msg/JointState' for an rclpy message class."""
    module = msg_class.__module__.split(".")
    return f"{module[0]}/msg/{msg_class.__name__}"


def msgdef(type_name: str) -> str:
    """The full ros2msg definition text (with dependencies) of ``type_name``."""
    text, _ = typestore().generate_msgdef(type_name, ros_version=2)
    return text
