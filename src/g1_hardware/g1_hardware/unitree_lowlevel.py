"""Unitree G1 low-level protocol (unitree_hg LowCmd_/LowState_) and the driver's safety logic, ROS-free.

- CRC: Unitree's ``crc32_core`` (unitree_sdk2): CRC-32 with polynomial 0x04C11DB7, MSB first, init
  0xFFFFFFFF, no reflection, no final xor, fed the message as little-endian uint32 words (the C struct in
  memory), most significant bit of each word first, over every word except the trailing ``crc``.
  That is CRC-32/MPEG-2 of the byte-swapped words. Implemented here table-driven (slicing by 4 bytes);
  the tests check it against a literal transcription of the SDK's bit loop and the catalogue check value.
- Packing: the struct layout of the SDK's C++/Python types (natural alignment, zero padding):
  LowCmd_ = mode_pr u8, mode_machine u8, pad 2, 35 x MotorCmd_ (mode u8, pad 3, q dq tau kp kd f32,
  reserve u32) = 28 B each, reserve u32[4], crc u32: 1004 bytes, CRC over the first 250 words.
- :class:`DriverCore`: arming, command timeout -> damping, faults while armed (non-finite state, a changed
  mode_machine, lost lowstate) -> disarm and damping, the 35-slot frame the writer sends.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from g1_description import robot
from g1_hardware.sim_core import COMMAND_TIMEOUT_S, CommandError, CommandLimits, MotorCommand, validate_command

CRC_POLY = 0x04C11DB7
SLOTS = robot.SDK_MOTOR_SLOTS  # 35
MOTOR_ENABLE = 1   # MotorCmd_.mode: 1 = the motor runs the PD law, 0 = disabled (no torque)
MODE_PR = 0        # LowCmd_.mode_pr: 0 = ankles commanded as pitch/roll joints (our joint definitions)

LOWCMD_STRUCT = struct.Struct("<BB2x" + "B3x5fI" * SLOTS + "4I")           # without the crc field
LOWSTATE_STRUCT = struct.Struct("<2IBB2xI" + "4f3f3f3fh2x"                  # version..tick, IMUState_
                                + "B3x4f2hf2II4I" * SLOTS + "40B" + "4I")   # MotorState_ x35, remote, reserve
assert LOWCMD_STRUCT.size == 1000 and LOWSTATE_STRUCT.size == 2088


def _make_tables() -> list[list[int]]:
    """T[i][b]: the CRC register after shifting 32 zero bits through a register holding b << 8*i."""
    def shift32(reg: int) -> int:
        for _ in range(32):
            reg = ((reg << 1) ^ CRC_POLY) & 0xFFFFFFFF if reg & 0x80000000 else (reg << 1) & 0xFFFFFFFF
        return reg
    return [[shift32(b << (8 * i)) for b in range(256)] for i in range(4)]


_T0, _T1, _T2, _T3 = _make_tables()


def crc32_core(words: Sequence[int]) -> int:
    """Unitree's crc32_core over uint32 ``words`` (table-driven: one step per word, not per bit)."""
    crc = 0xFFFFFFFF
    for word in words:
        crc ^= word
        crc = _T3[crc >> 24] ^ _T2[(crc >> 16) & 0xFF] ^ _T1[(crc >> 8) & 0xFF] ^ _T0[crc & 0xFF]
    return crc


def crc_of_packed(packed: bytes) -> int:
    """CRC of a packed message body (without its crc field), read as little-endian uint32 words."""
    return crc32_core(struct.unpack(f"<{len(packed) // 4}I", packed))


@dataclass
class LowCmdFrame:
    """One LowCmd_ (SDK motor order; slots 29..34 unused on the G1-29)."""

    mode_pr: int
    mode_machine: int
    mode: np.ndarray  # (35,) uint8
    q: np.ndarray     # (35,) float32
    dq: np.ndarray
    tau: np.ndarray
    kp: np.ndarray
    kd: np.ndarray
    reserve: tuple = (0, 0, 0, 0)

    def pack(self) -> bytes:
        """The bytes the CRC covers (float32 values exactly as they go on the wire)."""
        values = [self.mode_pr, self.mode_machine]
        for i in range(SLOTS):
            values += [int(self.mode[i]), float(self.q[i]), float(self.dq[i]), float(self.tau[i]),
                       float(self.kp[i]), float(self.kd[i]), 0]
        return LOWCMD_STRUCT.pack(*values, *self.reserve)

    def crc(self) -> int:
        return crc_of_packed(self.pack())

    @staticmethod
    def from_command(command: MotorCommand, mode_machine: int) -> "LowCmdFrame":
        def slots(values) -> np.ndarray:
            out = np.zeros(SLOTS, dtype=np.float32)
            out[:robot.NUM_JOINTS] = values
            return out
        mode = np.zeros(SLOTS, dtype=np.uint8)
        mode[:robot.NUM_JOINTS] = MOTOR_ENABLE
        return LowCmdFrame(MODE_PR, mode_machine, mode, slots(command.position), slots(command.velocity),
                           slots(command.effort), slots(command.kp), slots(command.kd))


def lowstate_crc(values: Sequence) -> int:
    """CRC of a LowState_ given its fields flattened in LOWSTATE_STRUCT order (without crc)."""
    return crc_of_packed(LOWSTATE_STRUCT.pack(*values))


class Decimator:
    """Passes one sample per ``period_s`` on its own deadline (the robot's 500 Hz may jitter or vary)."""

    def __init__(self, period_s: float):
        self.period_s = period_s
        self.next_s: float | None = None

    def take(self, now: float) -> bool:
        if self.next_s is not None and now < self.next_s:
            return False
        # Keep the phase while on time; after a gap (no samples for a while) restart from now.
        self.next_s = now + self.period_s if self.next_s is None or now - self.next_s > self.period_s \
            else self.next_s + self.period_s
        return True


@dataclass(frozen=True)
class DriverConfig:
    allow_arming: bool = False
    #: mode_machine values reported by G1-29 robots this driver was checked on. Unitree does not publish
    #: a table; read yours from the driver's log (it prints the value lowstate reports) and list it.
    accepted_mode_machines: tuple[int, ...] = ()
    dof_variant: str = "g1_29dof"
    command_timeout_s: float = COMMAND_TIMEOUT_S  # no fresh joint_command for this long -> damping
    #: no fresh joint_command for this long -> a fault (disarm): the robot has sagged or fallen under the
    #: damping by then, and a command stream that comes back must not snap it stiff onto its target from
    #: there; shorter gaps (a hiccup) resume when commands return
    command_loss_fault_s: float = 0.5
    #: a command stamped further than this from the driver's clock does not end a damping (0: no check):
    #: one that sat in a queue while the driver or the network stalled must not make a damped robot stiff
    #: again. While the stream is live (the last command is fresh) a late one is still the newest target
    #: and is taken: refusing it would damp a robot whose policy is only late. The policy stamps its
    #: commands with the joint state they answer (the driver's own clock): two machines need no clock sync
    command_max_age_s: float = COMMAND_TIMEOUT_S
    #: arming needs a lowstate younger than this; armed, none for this long -> disarm and damping
    lowstate_timeout_s: float = 0.1
    joint_limit_margin_rad: float = 0.2  # arming refuses joint readings this far outside the limits
    limits: CommandLimits = CommandLimits()


class DriverCore:
    """Safety logic of the real-G1 driver. Times are monotonic seconds passed in by the caller.

    States: never armed (sends nothing: the robot stays as it is) -> armed (sends the latest command,
    or damping when commands are older than ``command_timeout_s``; commands that return within
    ``command_loss_fault_s`` resume) -> disarmed (sends damping; once the driver has actuated the robot
    it never just goes silent).

    Faults while armed disarm (latched: only a new ``arm`` call re-arms) and send damping at once: a
    non-finite reading in lowstate, a mode_machine other than the one armed on (the robot changed mode
    or it is another robot; the damping frames echo the new value so the robot accepts them), no
    lowstate for ``lowstate_timeout_s``, no joint_command for ``command_loss_fault_s`` (a dead or stuck
    policy: whatever it sends when it comes back must not snap a sagged robot stiff), or an internal
    error of the driver (:meth:`fault`). Each fault is
    queued in ``faults`` for the node to log."""

    SUPPORTED_VARIANTS = ("g1_29dof",)

    def __init__(self, config: DriverConfig):
        if not config.command_loss_fault_s >= config.command_timeout_s > 0:
            raise ValueError(f"need command_loss_fault_s ({config.command_loss_fault_s}) >= command_timeout_s "
                             f"({config.command_timeout_s}) > 0")
        self.config = config
        self.armed = False
        self.ever_armed = False
        self.mode_machine: int | None = None
        self.armed_mode_machine: int | None = None
        self.lowstate_time: float | None = None
        self.joint_positions: np.ndarray | None = None
        self.nonfinite: list[str] = []  # what in the latest lowstate was NaN/inf
        self.command: MotorCommand | None = None
        self.command_time: float | None = None
        self.damping_since_timeout = False
        self.faults: list[str] = []  # fault descriptions not yet logged (the node drains them)

    def on_lowstate(self, mode_machine: int, joint_positions: np.ndarray, now: float,
                    other_readings: dict[str, np.ndarray] | None = None) -> None:
        """Store the robot's state. ``other_readings`` (name -> values: joint velocities, IMU, ...) are
        only checked for NaN/inf, like the joint positions."""
        q = np.asarray(joint_positions, dtype=np.float64)
        self.mode_machine, self.joint_positions, self.lowstate_time = int(mode_machine), q, now
        self.nonfinite = [f"joint position of {robot.JOINT_NAMES[i]}" for i in np.flatnonzero(~np.isfinite(q))]
        for name, values in (other_readings or {}).items():
            if not np.all(np.isfinite(np.asarray(values, dtype=np.float64))):
                self.nonfinite.append(name)
        if not self.armed:
            return
        if self.nonfinite:
            self.fault(f"lowstate has NaN/inf readings ({', '.join(self.nonfinite[:3])})")
        elif self.mode_machine != self.armed_mode_machine:
            self.fault(f"mode_machine changed from {self.armed_mode_machine} to {self.mode_machine} while armed "
                       "(the robot changed mode, or another robot answers)")

    def on_command(self, names, fields, now: float, age_s: float | None = None) -> list[str]:
        """Validate and store a joint command (``age_s``: its stamp's age on the driver's clock, None: not
        checked); returns notes on clipping. Raises CommandError, and leaves the previous command."""
        max_age = self.config.command_max_age_s
        if age_s is not None and max_age > 0 and not abs(age_s) <= max_age and not self._fresh(now):
            raise CommandError(f"stamped {age_s * 1e3:+.0f} ms from the driver's clock (beyond command_max_age_s "
                               f"{max_age} s) while damping: a stale command does not end the damping (a "
                               "stalled policy, driver or network, or the clocks differ)")
        command, notes = validate_command(names, fields, self.config.limits)
        self.command, self.command_time = command, now
        return notes

    def arm(self, now: float) -> tuple[bool, str]:
        refusal = self._arming_refusal(now)
        if refusal:
            return False, f"refusing to arm: {refusal}"
        self.armed = self.ever_armed = True
        self.armed_mode_machine = self.mode_machine
        self.command = None  # only commands that arrive from now on may actuate
        return True, f"armed (mode_machine {self.mode_machine}); damping until a fresh joint_command arrives"

    def disarm(self) -> tuple[bool, str]:
        self.armed = False
        return True, "disarmed: sending damping" if self.ever_armed else "disarmed (was never armed)"

    def fault(self, reason: str) -> None:
        """Disarm now (damping from the next frame on) and queue ``reason`` for the log."""
        if self.armed:
            self.faults.append(f"{reason}: disarmed, sending damping; call g1_driver/arm again once resolved")
        self.armed = False

    def _arming_refusal(self, now: float) -> str | None:
        c = self.config
        if not c.allow_arming:
            return "parameter allow_arming is false (set it only when the robot is hung or ready to stand)"
        if c.dof_variant not in self.SUPPORTED_VARIANTS:
            return f"dof_variant {c.dof_variant!r} is not one this stack knows ({self.SUPPORTED_VARIANTS})"
        if self.lowstate_time is None or now - self.lowstate_time > c.lowstate_timeout_s:
            return f"no lowstate within {c.lowstate_timeout_s} s (is the robot on and the network up?)"
        if self.mode_machine not in c.accepted_mode_machines:
            return (f"lowstate reports mode_machine {self.mode_machine}, not in accepted_mode_machines "
                    f"{list(c.accepted_mode_machines)}: a different G1 variant or firmware; check it is a "
                    "29-DoF G1 and add the value to the parameter")
        if self.nonfinite:  # NaN passes every limit comparison below: check it first
            return (f"lowstate has NaN/inf readings ({', '.join(self.nonfinite[:3])}): a faulty encoder or IMU, "
                    "or a corrupted message; check the robot before arming")
        lo, hi = robot.JOINT_LOWER - c.joint_limit_margin_rad, robot.JOINT_UPPER + c.joint_limit_margin_rad
        outside = np.flatnonzero((self.joint_positions < lo) | (self.joint_positions > hi))
        if outside.size:
            return (f"joint readings outside the G1-29 limits for {[robot.JOINT_NAMES[i] for i in outside[:3]]}: "
                    "a different DoF variant / motor order, or a faulty encoder")
        return None

    def next_frame(self, now: float) -> LowCmdFrame | None:
        """What the 500 Hz writer sends now, or None (nothing: never armed, or no lowstate yet)."""
        if not self.ever_armed or self.mode_machine is None:
            return None
        if self.armed and now - self.lowstate_time > self.config.lowstate_timeout_s:
            self.fault(f"no lowstate for {now - self.lowstate_time:.3f} s (> lowstate_timeout_s "
                       f"{self.config.lowstate_timeout_s} s) while armed")
        if (self.armed and self.command is not None
                and now - self.command_time > self.config.command_loss_fault_s):
            self.fault(f"no joint_command for {now - self.command_time:.3f} s (> command_loss_fault_s "
                       f"{self.config.command_loss_fault_s} s) while armed: commands that come back will not "
                       "actuate")
        fresh = self.armed and self._fresh(now)
        self.damping_since_timeout = self.armed and self.command is not None and not fresh
        command = self.command if fresh else MotorCommand.damping()
        return LowCmdFrame.from_command(command, self.mode_machine)

    def _fresh(self, now: float) -> bool:
        """The latest command is recent enough to actuate (the stream is live)."""
        return self.command is not None and now - self.command_time <= self.config.command_timeout_s

    def take_faults(self) -> list[str]:
        faults, self.faults = self.faults, []
        return faults


__all__ = ["CommandError", "Decimator", "DriverConfig", "DriverCore", "LowCmdFrame", "crc32_core", "crc_of_packed",
           "lowstate_crc", "LOWCMD_STRUCT", "LOWSTATE_STRUCT"]
