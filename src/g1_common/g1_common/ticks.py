"""Control ticks and their stamps: integer nanoseconds, never float seconds.

Every message of one control tick (joint state, IMU, reference window, command) carries the stamp
``tick * CONTROL_PERIOD_NS``. The policy node matches inputs by exact stamp, which is what makes
lockstep simulation bit-identical from run to run (see docs/lockstep.md).
"""

from __future__ import annotations

import struct

from builtin_interfaces.msg import Time

from g1_description.robot import CONTROL_PERIOD_S

CONTROL_PERIOD_NS = int(round(CONTROL_PERIOD_S * 1e9))  # 20,000,000 ns at 50 Hz


def tick_to_ns(tick: int) -> int:
    return int(tick) * CONTROL_PERIOD_NS


def stamp_from_ns(ns: int) -> Time:
    return Time(sec=int(ns // 1_000_000_000), nanosec=int(ns % 1_000_000_000))


def stamp_from_tick(tick: int) -> Time:
    return stamp_from_ns(tick_to_ns(tick))


def stamp_to_ns(stamp: Time) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_to_tick(stamp: Time) -> int | None:
    """The tick of ``stamp``, or None when it is not on the tick grid (e.g. a real-time stamp)."""
    return ns_to_tick(stamp_to_ns(stamp))


def ns_to_tick(ns: int) -> int | None:
    """The tick of a stamp in ns, or None when it is not on the tick grid."""
    return ns // CONTROL_PERIOD_NS if ns % CONTROL_PERIOD_NS == 0 else None


def cdr_header_stamp_ns(cdr: bytes) -> int | None:
    """Stamp (ns) of a serialized message whose first field is a std_msgs/Header (or builtin Time),
    without deserialising it: 4 bytes encapsulation, then int32 sec, uint32 nanosec. None if too short."""
    if len(cdr) < 12:
        return None
    sec, nanosec = struct.unpack_from("<iI" if cdr[1] == 1 else ">iI", cdr, 4)
    return sec * 1_000_000_000 + nanosec
