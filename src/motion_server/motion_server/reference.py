"""The reference window as plain numpy data (no ROS): what the motion server sends and the
observation builder reads. ``g1_common.conversions`` maps it to/from ``g1_interfaces/ReferenceWindow``.

Frame 0 is the *next* frame (one control period after the current clip time); frames 1.. are the
future frames at ``future_offsets`` control periods after the current clip time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from g1_description import robot

#: Default future offsets (in control periods of 20 ms): 1, 5, 10, ..., 100 -> 2 s ahead, GMT-style.
#: A loaded policy artifact's contract overrides them.
DEFAULT_FUTURE_OFFSETS: tuple[int, ...] = (1,) + tuple(range(5, 101, 5))


class WindowState:
    """Mirrors the STATE_* constants of g1_interfaces/ReferenceWindow."""

    IDLE = 0
    BLEND_IN = 1
    PLAYING = 2
    HOLD_END = 3
    STOPPED = 4
    NAMES = {0: "idle", 1: "blend_in", 2: "playing", 3: "hold_end", 4: "stopped"}


@dataclass
class ReferenceWindowData:
    """Reference frames, world frame (re-anchored clip), SDK joint order, float64.

    Arrays have a leading frame axis of length F = 1 + len(future_offsets): [next, future...].
    """

    times_s: np.ndarray            # (F,) clip time of each frame
    joint_pos: np.ndarray          # (F, 29) rad
    joint_vel: np.ndarray          # (F, 29) rad/s
    root_pos: np.ndarray           # (F, 3) m
    root_quat_wxyz: np.ndarray     # (F, 4)
    root_lin_vel: np.ndarray       # (F, 3) m/s, world
    root_ang_vel: np.ndarray       # (F, 3) rad/s, world
    key_body_pos: np.ndarray       # (F, K, 3) m, world, order = key_body_names
    future_offsets: tuple[int, ...] = DEFAULT_FUTURE_OFFSETS
    key_body_names: tuple[str, ...] = robot.KEY_BODIES
    motion_name: str = ""
    clip_time_s: float = 0.0
    clip_duration_s: float = 0.0
    state: int = WindowState.IDLE
    frame_period_s: float = robot.CONTROL_PERIOD_S
    speed: float = 1.0
    loop: bool = False
    extras: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.times_s.shape[0])

    def validate(self) -> None:
        """Raise ValueError naming the field if shapes disagree or any value is not finite."""
        f = 1 + len(self.future_offsets)
        k = len(self.key_body_names)
        shapes = {
            "times_s": (f,), "joint_pos": (f, robot.NUM_JOINTS), "joint_vel": (f, robot.NUM_JOINTS),
            "root_pos": (f, 3), "root_quat_wxyz": (f, 4), "root_lin_vel": (f, 3), "root_ang_vel": (f, 3),
            "key_body_pos": (f, k, 3),
        }
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"reference window: {name} has shape {arr.shape}, expected {shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"reference window: {name} contains NaN or inf")
