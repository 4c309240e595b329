"""Fast CDR codec for ``g1_interfaces/ReferenceWindow`` (numpy, no per-frame message objects).

The reference window is the stack's largest per-tick message (1 + 20 frames, ~13 kB). Through rclpy's
message classes it costs ~0.4 ms to build and serialise in motion_server and ~0.3 ms to deserialise
and convert in the policy node, every tick (``bench/motion_server.py``): nested messages are
Python objects, 105 of them per window. This module writes and reads the **standard** CDR encoding
of the same message type directly from/to :class:`ReferenceWindowData`:

- motion_server publishes the bytes (``Publisher.publish`` takes serialized bytes), the policy node
  subscribes with ``raw=True`` and decodes them here. What goes over DDS is byte-identical to what
  ``rclpy.serialization.serialize_message`` makes of :func:`g1_common.conversions.window_to_msg`
  (tested), so every other subscriber - the recorder, ``ros2 topic echo``, ``ros2 bag``, RViz,
  Foxglove, a C++ node - sees the ordinary message.
- :func:`decode` accepts any valid encoding of the type: anything it does not handle itself (big-endian
  data, frames of different sizes) goes through rclpy and :func:`conversions.msg_to_window`, with the
  same validation and the same errors.

Layout (XCDR1 "plain CDR", little endian, alignment relative to the byte after the 4-byte
encapsulation header; 8-byte types on 8, 4-byte on 4). Every frame starts 8-aligned (its first field
is a float64), so all frames of one window share one byte layout: a numpy structured dtype with
explicit offsets reads or writes all of them at once.
"""

from __future__ import annotations

import functools
import struct

import numpy as np

from g1_description import robot
from motion_server.reference import ReferenceWindowData

from . import conversions
from .conversions import MessageError

_ENCAPSULATION_LE = b"\x00\x01\x00\x00"


def _align(offset: int, n: int) -> int:
    return (offset + n - 1) // n * n


@functools.lru_cache(maxsize=8)
def frame_dtype(num_joints: int, num_key_bodies: int) -> tuple[np.dtype, int]:
    """(dtype, bytes): the byte layout of one ReferenceFrame starting at an 8-aligned offset (the dtype's
    itemsize reaches the next frame) and the frame's own length (without trailing padding)."""
    nj, nk3 = num_joints, 3 * num_key_bodies
    o = {"time_s": 0, "jp_n": 8, "jp": 12}
    o["jv_n"] = 12 + 4 * nj
    o["jv"] = o["jv_n"] + 4
    o["root"] = _align(o["jv"] + 4 * nj, 8)         # Point, Quaternion (x,y,z,w), Vector3, Vector3: 13 float64
    o["kb_n"] = o["root"] + 13 * 8
    o["kb"] = o["kb_n"] + 4
    end = o["kb"] + 4 * nk3
    fields = {"time_s": ("<f8", o["time_s"]), "jp_n": ("<u4", o["jp_n"]), "jp": (("<f4", (nj,)), o["jp"]),
              "jv_n": ("<u4", o["jv_n"]), "jv": (("<f4", (nj,)), o["jv"]), "root": (("<f8", (13,)), o["root"]),
              "kb_n": ("<u4", o["kb_n"]), "kb": (("<f4", (nk3,)), o["kb"])}
    names = list(fields)
    return np.dtype({"names": names, "formats": [fields[n][0] for n in names],
                     "offsets": [fields[n][1] for n in names], "itemsize": _align(end, 8)}), end


class _Writer:
    def __init__(self):
        self.parts: list[bytes] = []
        self.pos = 0  # relative to the start of the payload

    def raw(self, b: bytes) -> None:
        self.parts.append(b)
        self.pos += len(b)

    def pad(self, n: int) -> None:
        fill = _align(self.pos, n) - self.pos
        if fill:
            self.raw(b"\x00" * fill)

    def pack(self, fmt: str, align: int, *values) -> None:
        self.pad(align)
        self.raw(struct.pack("<" + fmt, *values))

    def string(self, s: str) -> None:
        b = s.encode("utf-8") + b"\x00"
        self.pack("I", 4, len(b))
        self.raw(b)

    def strings(self, items) -> None:
        self.pack("I", 4, len(items))
        for s in items:
            self.string(s)


def _frames(data: ReferenceWindowData, dtype: np.dtype) -> np.ndarray:
    f = data.num_frames
    nk3 = 3 * len(data.key_body_names)
    rec = np.zeros(f, dtype=dtype)
    rec["time_s"] = data.times_s
    rec["jp_n"] = robot.NUM_JOINTS
    rec["jp"] = data.joint_pos
    rec["jv_n"] = robot.NUM_JOINTS
    rec["jv"] = data.joint_vel
    root = rec["root"]
    root[:, 0:3] = data.root_pos
    root[:, 3:6] = data.root_quat_wxyz[:, 1:4]   # Quaternion fields x, y, z, w
    root[:, 6] = data.root_quat_wxyz[:, 0]
    root[:, 7:10] = data.root_lin_vel
    root[:, 10:13] = data.root_ang_vel
    rec["kb_n"] = nk3
    rec["kb"] = np.asarray(data.key_body_pos).reshape(f, nk3)
    return rec


def encode(data: ReferenceWindowData, stamp_ns: int, sequence: int = 0, frame_id: str = "world") -> bytes:
    """The serialized ReferenceWindow for ``data`` stamped ``stamp_ns`` (what window_to_msg + rclpy's
    serialize_message give, byte for byte)."""
    dtype, frame_bytes = frame_dtype(robot.NUM_JOINTS, len(data.key_body_names))
    frames = _frames(data, dtype).tobytes()
    w = _Writer()
    w.pack("iI", 4, stamp_ns // 1_000_000_000, stamp_ns % 1_000_000_000)
    w.string(frame_id)
    w.pack("I", 4, int(sequence) & 0xFFFFFFFF)
    w.pack("B", 1, int(data.state))
    w.string(data.motion_name)
    w.pack("dd", 8, float(data.clip_time_s), float(data.clip_duration_s))
    w.pack("f", 4, float(data.speed))
    w.pack("?", 1, bool(data.loop))
    w.pack("f", 4, float(data.frame_period_s))
    w.strings(robot.JOINT_NAMES)
    w.strings(data.key_body_names)
    w.pad(8)
    w.raw(frames[:frame_bytes])  # next_frame (its end is 4-aligned: the next field needs no padding)
    offsets = [int(o) for o in data.future_offsets]
    w.pack("I", 4, len(offsets))
    w.raw(struct.pack(f"<{len(offsets)}i", *offsets))
    w.pack("I", 4, data.num_frames - 1)
    if data.num_frames > 1:
        w.pad(8)
        w.raw(frames[dtype.itemsize:dtype.itemsize * (data.num_frames - 1) + frame_bytes])
    return _ENCAPSULATION_LE + b"".join(w.parts)


class _Reader:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.pos = 4  # absolute; alignment is relative to 4

    def align(self, n: int) -> None:
        self.pos = 4 + _align(self.pos - 4, n)

    def unpack(self, fmt: str, align: int):
        self.align(align)
        values = struct.unpack_from("<" + fmt, self.buf, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values

    def string(self) -> str:
        (n,) = self.unpack("I", 4)
        s = self.buf[self.pos:self.pos + n - 1].decode("utf-8")
        self.pos += n
        return s

    def strings(self) -> list[str]:
        (n,) = self.unpack("I", 4)
        return [self.string() for _ in range(n)]


def _rclpy_decode(buf: bytes) -> ReferenceWindowData:
    from rclpy.serialization import deserialize_message

    from g1_interfaces.msg import ReferenceWindow

    try:
        msg = deserialize_message(buf, ReferenceWindow)
    except Exception as exc:  # noqa: BLE001 - rclpy raises RuntimeError/others on truncated data
        raise MessageError(f"reference_window: not a serialized ReferenceWindow ({exc})") from exc
    return conversions.msg_to_window(msg)


def decode(buf: bytes) -> ReferenceWindowData:
    """ReferenceWindowData from a serialized ReferenceWindow, validated like
    :func:`conversions.msg_to_window` (same MessageError on bad content)."""
    buf = bytes(buf)
    if len(buf) < 8 or buf[1] != 1:  # not little-endian plain CDR: the general path
        return _rclpy_decode(buf)
    try:
        r = _Reader(buf)
        r.unpack("iI", 4)  # stamp
        r.string()         # frame_id
        r.unpack("I", 4)   # sequence
        (state,) = r.unpack("B", 1)
        motion_name = r.string()
        clip_time_s, clip_duration_s = r.unpack("dd", 8)
        (speed,) = r.unpack("f", 4)
        (loop,) = r.unpack("?", 1)
        (frame_period_s,) = r.unpack("f", 4)
        joint_names = r.strings()
        key_body_names = r.strings()
        if tuple(joint_names) != robot.JOINT_NAMES:
            raise MessageError("reference_window.joint_names: not the G1 SDK joint order "
                               f"(got {len(joint_names)} names starting {joint_names[:2]})")
        k = len(key_body_names)
        dtype, frame_bytes = frame_dtype(robot.NUM_JOINTS, k)
        r.align(8)
        padded = buf + b"\x00" * 8  # the last frame of a message has no trailing padding
        first = np.frombuffer(padded, dtype=dtype, count=1, offset=r.pos)
        r.pos += frame_bytes
        (n_off,) = r.unpack("I", 4)
        offsets = struct.unpack_from(f"<{n_off}i", buf, r.pos)
        r.pos += 4 * n_off
        (n_future,) = r.unpack("I", 4)
        if n_future != n_off:
            raise MessageError(f"reference_window: {n_future} future frames for {n_off} offsets")
        r.align(8)
        future = np.frombuffer(padded, dtype=dtype, count=n_future, offset=r.pos) if n_future else first[:0]
        if r.pos + (dtype.itemsize * (n_future - 1) + frame_bytes if n_future else 0) != len(buf):
            return _rclpy_decode(buf)  # frames of other sizes (then the layout differs): the general path
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        if isinstance(exc, MessageError):
            raise
        return _rclpy_decode(buf)  # truncated or unexpected: let rclpy say what is wrong
    rec = np.concatenate([first, future])
    if (np.any(rec["jp_n"] != robot.NUM_JOINTS) or np.any(rec["jv_n"] != robot.NUM_JOINTS)
            or np.any(rec["kb_n"] != 3 * k)):
        return _rclpy_decode(buf)  # ragged frames: the general path reports them
    root = rec["root"]
    data = ReferenceWindowData(
        times_s=rec["time_s"].astype(np.float64),
        joint_pos=rec["jp"].astype(np.float64), joint_vel=rec["jv"].astype(np.float64),
        root_pos=root[:, 0:3].copy(),
        root_quat_wxyz=np.concatenate([root[:, 6:7], root[:, 3:6]], axis=1),
        root_lin_vel=root[:, 7:10].copy(), root_ang_vel=root[:, 10:13].copy(),
        key_body_pos=rec["kb"].astype(np.float64).reshape(len(rec), k, 3),
        future_offsets=tuple(int(o) for o in offsets), key_body_names=tuple(key_body_names),
        motion_name=motion_name, clip_time_s=clip_time_s, clip_duration_s=clip_duration_s, state=state,
        frame_period_s=frame_period_s, speed=speed, loop=bool(loop))
    try:
        data.validate()
    except ValueError as exc:
        raise MessageError(f"reference_window: {exc}") from exc
    return data

