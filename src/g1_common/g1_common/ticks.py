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


#: Lockstep: how far ahead of the newest tick a node knows (the last it accepted, or /clock) an input may
#: be stamped. The protocol puts none more than two ticks ahead (the reference is published one tick ahead
#: of the next state); beyond this margin the stamp is a fault (docs/lockstep.md) and the input is rejected.
MAX_LEAD_TICKS = 5


def lockstep_stamp_problem(ns: int | None, last_ns: int | None, clock_ns: int) -> str:
    """'' when an input stamped ``ns`` fits lockstep time, else why not (for the log and the status).

    ``last_ns``: the newest stamp this node has accepted on the stream (None before the first);
    ``clock_ns``: its /clock. Stamps off the tick grid, more than :data:`MAX_LEAD_TICKS` ahead of the
    newest known tick, or older than ``last_ns`` (lockstep time never goes back) are refused: one such
    message would otherwise freeze the policy (a far-future tick runs and every real one after it is
    'old') or reset the motion server's playback (a stamp of 0)."""
    if ns is None or ns % CONTROL_PERIOD_NS:
        return f"stamp {ns} ns is not on the {CONTROL_PERIOD_NS} ns tick grid"
    newest = clock_ns if last_ns is None else max(last_ns, clock_ns)
    if ns > newest + MAX_LEAD_TICKS * CONTROL_PERIOD_NS:
        return (f"stamped t = {ns * 1e-9:.3f} s, {(ns - newest) // CONTROL_PERIOD_NS} ticks ahead of the newest "
                f"known tick (t = {newest * 1e-9:.3f} s; at most {MAX_LEAD_TICKS} allowed)")
    if last_ns is not None and ns < last_ns:
        return (f"stamped t = {ns * 1e-9:.3f} s, before t = {last_ns * 1e-9:.3f} s already seen "
                "(lockstep time never goes back)")
    return ""
