"""ReferencePlayer: the plain-Python core of motion_server (no ROS). Given the motions to play, the
robot's pose and the tick time, it produces the ``ReferenceWindowData`` for that tick.

Playback is a timeline of segments laid end to end, so that future frames that reach past the end of
a clip already show what comes next:

- ``ClipSegment``: blend-in from a start pose into the clip's first played frame (smoothstep over
  ``blend_in_s``; joints, root position and root orientation), then the clip at ``speed`` from
  ``start_time_s``, re-anchored so its first played frame has the robot's x/y and yaw; then either
  loop (each cycle re-anchored at the previous cycle's end) or HOLD_END (hold the last frame, or blend
  to the default standing pose there).
- ``HoldSegment``: a pose held (IDLE, STOPPED), optionally blended into a target pose first.

Requests (play, stop) are applied at the next tick, so the result depends only on the tick times
and the robot pose at those ticks: a lockstep simulation replays identically.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from g1_description import robot

from . import rotations
from .kinematics import KeyBodyKinematics
from .motion import FrameBatch, Motion, sample
from .reference import DEFAULT_FUTURE_OFFSETS, ReferenceWindowData, WindowState

END_BEHAVIORS = ("hold", "default")


@dataclass
class Pose:
    """A whole-body pose in the world frame."""

    joint_pos: np.ndarray          # (29,) rad, SDK order
    root_pos: np.ndarray           # (3,) m
    root_quat_wxyz: np.ndarray     # (4,)

    @classmethod
    def default_standing(cls, x: float = 0.0, y: float = 0.0, yaw_rad: float = 0.0) -> "Pose":
        """The description's default pose, pelvis upright at standing height over (x, y)."""
        return cls(np.array(robot.DEFAULT_JOINT_POS), np.array([x, y, robot.DEFAULT_ROOT_HEIGHT_M]),
                   rotations.from_yaw(yaw_rad))

    @classmethod
    def from_frames(cls, frames: FrameBatch, i: int) -> "Pose":
        return cls(frames.joint_pos[i].copy(), frames.root_pos[i].copy(), frames.root_quat_wxyz[i].copy())

    @property
    def yaw_rad(self) -> float:
        return float(rotations.yaw(self.root_quat_wxyz))

    def default_here(self) -> "Pose":
        return Pose.default_standing(float(self.root_pos[0]), float(self.root_pos[1]), self.yaw_rad)


@dataclass(frozen=True)
class PlanarTransform:
    """Rotation about world z by ``yaw_rad`` then translation by (x, y): what re-anchoring applies."""

    x: float = 0.0
    y: float = 0.0
    yaw_rad: float = 0.0

    @classmethod
    def between(cls, src: Pose, dst: Pose) -> "PlanarTransform":
        """The transform that puts ``src``'s x/y/yaw onto ``dst``'s (heights are left alone)."""
        yaw = dst.yaw_rad - src.yaw_rad
        c, s = math.cos(yaw), math.sin(yaw)
        sx, sy = float(src.root_pos[0]), float(src.root_pos[1])
        return cls(float(dst.root_pos[0]) - (c * sx - s * sy), float(dst.root_pos[1]) - (s * sx + c * sy), yaw)

    def then(self, other: "PlanarTransform") -> "PlanarTransform":
        """``other`` applied after ``self``."""
        c, s = math.cos(other.yaw_rad), math.sin(other.yaw_rad)
        return PlanarTransform(c * self.x - s * self.y + other.x, s * self.x + c * self.y + other.y,
                               self.yaw_rad + other.yaw_rad)

    def rotate(self, v: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.yaw_rad), math.sin(self.yaw_rad)
        out = np.array(v, dtype=np.float64, copy=True)
        out[..., 0] = c * v[..., 0] - s * v[..., 1]
        out[..., 1] = s * v[..., 0] + c * v[..., 1]
        return out

    def points(self, p: np.ndarray) -> np.ndarray:
        out = self.rotate(p)
        out[..., 0] += self.x
        out[..., 1] += self.y
        return out

    def motion(self, m: Motion) -> Motion:
        """The whole clip moved by this transform (done once per segment, not per tick)."""
        return dataclasses.replace(
            m, root_pos=self.points(m.root_pos),
            root_quat_wxyz=rotations.multiply(rotations.from_yaw(self.yaw_rad), m.root_quat_wxyz),
            root_lin_vel=self.rotate(m.root_lin_vel), root_ang_vel=self.rotate(m.root_ang_vel),
            key_body_pos=self.points(m.key_body_pos))

    def pose(self, p: Pose) -> Pose:
        return Pose(p.joint_pos, self.points(p.root_pos),
                    rotations.multiply(rotations.from_yaw(self.yaw_rad), p.root_quat_wxyz))


def blend_frames(start: Pose, target: Pose, u: np.ndarray, duration_s: float,
                 kinematics: KeyBodyKinematics) -> FrameBatch:
    """Frames on the smoothstep path start -> target at progress ``u`` in [0, 1]: zero velocity at both
    ends, so the robot is never asked for a jump in speed. Key bodies by FK of each blended pose."""
    u = np.clip(u, 0.0, 1.0)
    s = (u * u * (3.0 - 2.0 * u))[:, None]
    ds_dt = (6.0 * u * (1.0 - u) / max(duration_s, 1e-9))[:, None]
    d_joint = target.joint_pos - start.joint_pos
    d_root = target.root_pos - start.root_pos
    rot = rotations.log_map(rotations.multiply(target.root_quat_wxyz, rotations.conjugate(start.root_quat_wxyz)))
    joint_pos = start.joint_pos + s * d_joint
    root_pos = start.root_pos + s * d_root
    n = len(u)
    quat = rotations.slerp(np.tile(start.root_quat_wxyz, (n, 1)), np.tile(target.root_quat_wxyz, (n, 1)), s[:, 0])
    return FrameBatch(times_s=np.zeros(n), joint_pos=joint_pos, joint_vel=ds_dt * d_joint, root_pos=root_pos,
                      root_quat_wxyz=quat, root_lin_vel=ds_dt * d_root, root_ang_vel=ds_dt * rot,
                      key_body_pos=kinematics.key_body_positions(root_pos, quat, joint_pos))


def hold_frames(pose: Pose, n: int, kinematics: KeyBodyKinematics, key_body_pos: np.ndarray | None = None) -> FrameBatch:
    key = key_body_pos if key_body_pos is not None else kinematics.key_body_positions(
        pose.root_pos, pose.root_quat_wxyz, pose.joint_pos)[0]
    out = FrameBatch.empty(n, key.shape[0])
    out.joint_pos[:] = pose.joint_pos
    out.root_pos[:] = pose.root_pos
    out.root_quat_wxyz[:] = pose.root_quat_wxyz
    out.key_body_pos[:] = key
    return out


class HoldSegment:
    """Holds a pose (IDLE, STOPPED), optionally after blending into it from another pose."""

    def __init__(self, t_start: float, start: Pose, target: Pose, blend_s: float, state: int,
                 kinematics: KeyBodyKinematics, clip_time_s: float = 0.0, motion: Motion | None = None):
        self.t_start, self.start, self.target, self.blend_s = t_start, start, target, blend_s
        self.state, self.kinematics, self.clip_time_s, self.motion = state, kinematics, clip_time_s, motion
        self.end_time = math.inf
        self.loop, self.speed = False, 1.0
        self._target_key = kinematics.key_body_positions(target.root_pos, target.root_quat_wxyz, target.joint_pos)[0]

    def evaluate(self, taus: np.ndarray) -> tuple[FrameBatch, np.ndarray]:
        frames = hold_frames(self.target, len(taus), self.kinematics, self._target_key)
        blending = (taus - self.t_start) < self.blend_s
        if np.any(blending):
            u = (taus[blending] - self.t_start) / self.blend_s
            frames.assign(blending, blend_frames(self.start, self.target, u, self.blend_s, self.kinematics))
        frames.times_s[:] = self.clip_time_s
        return frames, np.full(len(taus), self.state)


class ClipSegment:
    """Blend-in, then a re-anchored clip, then loop or HOLD_END (see the module docstring)."""

    def __init__(self, motion: Motion, t_start: float, start: Pose, *, speed: float, loop: bool,
                 start_time_s: float, blend_s: float, reanchor: bool, end_behavior: str, end_blend_s: float,
                 kinematics: KeyBodyKinematics, reanchor_after_blend: bool = False):
        self.motion, self.t_start, self.start, self.speed, self.loop = motion, t_start, start, speed, loop
        self.start_time_s, self.blend_s, self.end_behavior = start_time_s, blend_s, end_behavior
        self.end_blend_s, self.kinematics = end_blend_s, kinematics
        self.state = WindowState.PLAYING
        first = Pose.from_frames(sample(motion, np.array([start_time_s])), 0)
        self.anchor = PlanarTransform.between(first, start) if reanchor else PlanarTransform()
        self.first_pose = self.anchor.pose(first)
        self._first = first
        #: re-anchor once more when the blend-in ends, at the robot's pose then (see ReferencePlayer)
        self.pending_reanchor = bool(reanchor and reanchor_after_blend and blend_s > 0)
        # One loop cycle moves the clip by (its first frame -> its last frame); the next cycle starts there.
        clip_first = Pose.from_frames(sample(motion, np.array([0.0])), 0)
        clip_last = Pose.from_frames(sample(motion, np.array([motion.duration_s])), 0)
        self.cycle = PlanarTransform.between(clip_first, clip_last)
        play_s = (motion.duration_s - start_time_s) / speed
        self.end_time = math.inf if loop else t_start + blend_s + play_s
        self._clip_last = clip_last
        self._set_anchor(self.anchor)

    def _set_anchor(self, anchor: PlanarTransform) -> None:
        self.anchor = anchor
        self.last_pose = self.anchor.pose(self._clip_last)
        self._end_default = self.last_pose.default_here()
        self._anchored_cycles: dict[int, Motion] = {}  # loop cycle -> the clip re-anchored for it

    def reanchor_to(self, pose: Pose) -> None:
        """Move the clip so that its first played frame has ``pose``'s x/y/yaw (from now on)."""
        self._set_anchor(PlanarTransform.between(self._first, pose))
        self.pending_reanchor = False

    def clip_time(self, taus: np.ndarray) -> np.ndarray:
        """Clip time (s, unwrapped) at tick times ``taus``; start_time_s throughout the blend-in."""
        return self.start_time_s + self.speed * np.maximum(taus - self.t_start - self.blend_s, 0.0)

    def evaluate(self, taus: np.ndarray) -> tuple[FrameBatch, np.ndarray]:
        duration = self.motion.duration_s
        frames = FrameBatch.empty(len(taus), len(self.motion.key_body_names))
        states = np.full(len(taus), WindowState.PLAYING)
        clip_t = self.clip_time(taus)
        blending = (taus - self.t_start) < self.blend_s
        ended = ~blending & (clip_t >= duration) & (not self.loop)
        playing = ~blending & ~ended
        if np.any(blending):
            u = (taus[blending] - self.t_start) / self.blend_s
            frames.assign(blending, blend_frames(self.start, self.first_pose, u, self.blend_s, self.kinematics))
            states[blending] = WindowState.BLEND_IN
        if np.any(playing):
            self._play(frames, playing, clip_t)
        if np.any(ended):
            self._end(frames, ended, taus)
            states[ended] = WindowState.HOLD_END
        frames.times_s[blending] = self.start_time_s
        frames.times_s[ended] = duration
        return frames, states

    def _play(self, frames: FrameBatch, mask: np.ndarray, clip_t: np.ndarray) -> None:
        duration = self.motion.duration_s
        cycles = np.floor(clip_t / duration).astype(np.int64) if self.loop else np.zeros(len(clip_t), np.int64)
        for n in np.unique(cycles[mask]):
            sel = mask & (cycles == n)
            clip = sample(self._anchored(int(n)), clip_t[sel] - n * duration)
            if self.speed != 1.0:
                for name in ("joint_vel", "root_lin_vel", "root_ang_vel"):  # faster playback, faster motion
                    setattr(clip, name, getattr(clip, name) * self.speed)
            frames.assign(sel, clip)

    def _anchored(self, cycle: int) -> Motion:
        """The clip re-anchored for loop cycle ``cycle`` (each cycle starts where the previous ended)."""
        if cycle not in self._anchored_cycles:
            anchor = self.anchor
            for _ in range(cycle):
                anchor = self.cycle.then(anchor)
            if len(self._anchored_cycles) > 4:  # a long loop only ever needs the current and next cycle
                self._anchored_cycles.pop(min(self._anchored_cycles))
            self._anchored_cycles[cycle] = anchor.motion(self.motion)
        return self._anchored_cycles[cycle]

    def _end(self, frames: FrameBatch, mask: np.ndarray, taus: np.ndarray) -> None:
        if self.end_behavior == "default" and self.end_blend_s > 0:
            u = (taus[mask] - self.end_time) / self.end_blend_s
            frames.assign(mask, blend_frames(self.last_pose, self._end_default, u, self.end_blend_s, self.kinematics))
        else:
            frames.assign(mask, hold_frames(self.last_pose, int(mask.sum()), self.kinematics,
                                            self.anchor.points(self.motion.key_body_pos[-1])))


class ReferencePlayer:
    """Turns play/stop requests, the robot pose and tick times into reference windows."""

    def __init__(self, future_offsets: tuple[int, ...] = DEFAULT_FUTURE_OFFSETS, blend_in_s: float = 2.0,
                 end_behavior: str = "hold", end_blend_s: float = 2.0, reanchor: bool = True,
                 frame_period_s: float = robot.CONTROL_PERIOD_S, kinematics: KeyBodyKinematics | None = None,
                 reanchor_after_blend: bool = False):
        if end_behavior not in END_BEHAVIORS:
            raise ValueError(f"end_behavior {end_behavior!r}: expected one of {END_BEHAVIORS}")
        offsets = tuple(int(o) for o in future_offsets)
        if not offsets or min(offsets) < 1 or list(offsets) != sorted(set(offsets)):
            raise ValueError(f"future_offsets {offsets}: expected increasing positive integers")
        if blend_in_s < 0 or end_blend_s < 0:
            raise ValueError("blend times must be >= 0 s")
        self.future_offsets = offsets
        self.blend_in_s, self.end_behavior, self.end_blend_s = blend_in_s, end_behavior, end_blend_s
        self.reanchor, self.frame_period_s = reanchor, frame_period_s
        #: Re-anchor a clip a second time when its blend-in ends, to where the robot then stands. A
        #: blend-in moves the reference's feet (it interpolates joints and pelvis, not foot contacts);
        #: the robot cannot slide its feet along, so it ends the blend offset from the reference (B_Fence1:
        #: 12 cm), an offset a policy trained from starts in the clip keeps for the whole clip.
        self.reanchor_after_blend = reanchor_after_blend
        self.kinematics = kinematics or KeyBodyKinematics()
        self.robot_pose = Pose.default_standing()
        self._segments: list = []       # current first; empty = IDLE
        self._requests: list = []       # applied at the next tick
        self._frame_offsets_s = frame_period_s * np.array([0, 1, *offsets], dtype=np.float64)

    # --- inputs ---
    def set_robot_pose(self, pose: Pose) -> None:
        self.robot_pose = pose

    def play(self, motion: Motion, *, loop: bool = False, speed: float = 1.0, start_time_s: float = 0.0,
             enqueue: bool = False) -> None:
        """Start ``motion`` at the next tick (or queue it behind what plays). Raises ValueError on bad args."""
        if not (math.isfinite(speed) and 0.05 <= speed <= 10.0):
            raise ValueError(f"speed {speed} is outside [0.05, 10]")
        if not (math.isfinite(start_time_s) and 0.0 <= start_time_s < motion.duration_s):
            raise ValueError(f"start_time_s {start_time_s} is outside the clip [0, {motion.duration_s:.2f}) s")
        if enqueue and self._playlist_ends_in_loop():
            raise ValueError("the motion at the end of the playlist loops forever; stop it or play "
                             "without enqueue")
        self._requests.append(("play", dict(motion=motion, loop=loop, speed=speed, start_time_s=start_time_s,
                                            enqueue=enqueue)))

    def stop(self, blend_to_default: bool = False) -> None:
        """At the next tick: clear the playlist and hold the reference pose of that tick (STOPPED)."""
        self._requests.append(("stop", dict(blend_to_default=blend_to_default)))

    # --- output ---
    def window(self, now_s: float) -> ReferenceWindowData:
        """The reference window for the tick at ``now_s`` (seconds on the tick clock)."""
        for kind, args in self._requests:
            self._apply_play(now_s, **args) if kind == "play" else self._apply_stop(now_s, **args)
        self._requests.clear()
        seg = self._segments[0] if self._segments else None
        if isinstance(seg, ClipSegment) and seg.pending_reanchor and now_s >= seg.t_start + seg.blend_s - 1e-9:
            seg.reanchor_to(self.robot_pose)
        taus = now_s + self._frame_offsets_s  # [now, next, futures...]
        frames, states, segment = self._evaluate(taus)
        return ReferenceWindowData(
            times_s=frames.times_s[1:], joint_pos=frames.joint_pos[1:], joint_vel=frames.joint_vel[1:],
            root_pos=frames.root_pos[1:], root_quat_wxyz=frames.root_quat_wxyz[1:],
            root_lin_vel=frames.root_lin_vel[1:], root_ang_vel=frames.root_ang_vel[1:],
            key_body_pos=frames.key_body_pos[1:], future_offsets=self.future_offsets,
            key_body_names=self.kinematics.body_names,
            motion_name=segment.motion.name if segment.motion is not None else "",
            clip_time_s=float(frames.times_s[0]),
            clip_duration_s=segment.motion.duration_s if segment.motion is not None else 0.0,
            state=int(states[0]), frame_period_s=self.frame_period_s, speed=segment.speed, loop=segment.loop)

    # --- internals ---
    def _evaluate(self, taus: np.ndarray):
        # Segments whose end has passed give way to their successor.
        while len(self._segments) > 1 and self._segments[0].end_time <= taus[0]:
            self._segments.pop(0)
        segments = self._segments or [self._idle_segment(taus[0])]
        frames = FrameBatch.empty(len(taus), len(self.kinematics.body_names))
        states = np.zeros(len(taus), dtype=np.int64)
        remaining = np.ones(len(taus), dtype=bool)
        for i, seg in enumerate(segments):
            mask = remaining if i == len(segments) - 1 else remaining & (taus < seg.end_time)
            if np.any(mask):
                seg_frames, seg_states = seg.evaluate(taus[mask])
                frames.assign(mask, seg_frames)
                states[mask] = seg_states
                remaining &= ~mask
        return frames, states, segments[0]

    def _idle_segment(self, now_s: float) -> HoldSegment:
        here = self.robot_pose.default_here()
        return HoldSegment(now_s, here, here, 0.0, WindowState.IDLE, self.kinematics)

    def _playlist_ends_in_loop(self) -> bool:
        """Whether the playlist, including requests not applied yet, ends in a looping clip."""
        for kind, args in reversed(self._requests):  # the newest request decides the playlist's end
            return kind == "play" and args["loop"]
        last = self._last_clip()
        return last is not None and last.loop

    def _last_clip(self) -> ClipSegment | None:
        return self._segments[-1] if self._segments and isinstance(self._segments[-1], ClipSegment) else None

    def _apply_play(self, now_s: float, motion: Motion, loop: bool, speed: float, start_time_s: float,
                    enqueue: bool) -> None:
        last = self._last_clip() if enqueue else None
        if last is not None and not last.loop:
            # Chained: starts where the previous clip ends, from its last reference pose.
            t_start, start = max(last.end_time, now_s), last.last_pose
        else:
            t_start, start = now_s, self.robot_pose
            self._segments = []
        self._segments.append(ClipSegment(
            motion, t_start, start, speed=speed, loop=loop, start_time_s=start_time_s,
            blend_s=self.blend_in_s, reanchor=self.reanchor, end_behavior=self.end_behavior,
            end_blend_s=self.end_blend_s, kinematics=self.kinematics, reanchor_after_blend=self.reanchor_after_blend))

    def _apply_stop(self, now_s: float, blend_to_default: bool) -> None:
        frames, _, segment = self._evaluate(np.array([now_s]))
        here = Pose.from_frames(frames, 0)
        target = here.default_here() if blend_to_default else here
        self._segments = [HoldSegment(now_s, here, target, self.end_blend_s if blend_to_default else 0.0,
                                      WindowState.STOPPED, self.kinematics, float(frames.times_s[0]),
                                      segment.motion)]
