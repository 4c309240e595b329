"""Physics profiles: how the G1 is simulated (time step, substeps per control tick, where the joint PD
runs). One definition for the sim node (``g1_hardware.sim_core``), ``g1-train eval`` and training
(``g1_train.physics``), selected by name (sim.yaml ``physics_profile``, ``env.physics_profile``; an
exported policy's provenance names the profile it was trained with).

- ``drivers_500hz`` (the sim node's default): dt 2 ms, 10 physics steps per 20 ms control tick, torque
  motors, and the motor drivers' PD ``tau = kp (q* - q) + kd (dq* - dq) + tau_ff`` evaluated in Python
  before every physics step, clipped to the effort limit (what the G1's drivers do at 500 Hz).
- ``actuator_200hz``: dt 5 ms, 4 physics steps per tick (the mjlab / BeyondMimic setting), the same PD
  inside MuJoCo position actuators: gain ``kp``, bias ``[kd dq* + tau_ff, -kp, -kd]``, force clamped to
  the effort limit by ``forcerange``. MuJoCo computes it inside ``mj_step`` (no Python per physics step)
  and, with the Menagerie model's ``implicitfast`` integrator, integrates the ``-kd dq`` term implicitly.
  2.0-2.4x fewer CPU-seconds per control tick than ``drivers_500hz`` (issue 14; training bench).

Both use the per-motor armature of :mod:`g1_description.robot` (the PD gains are derived from it).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import robot

#: unit of action delays / latencies in configs (sim.yaml ``action_latency_steps``, training
#: ``action_delay_steps``): the drivers' PD period, whatever the profile's time step
DELAY_UNIT_S = 0.002
PD_PYTHON = "python"
PD_ACTUATOR = "actuator"


@dataclass(frozen=True)
class PhysicsProfile:
    name: str
    timestep_s: float          # MuJoCo opt.timestep
    substeps: int              # physics steps per control tick (timestep * substeps = CONTROL_PERIOD_S)
    pd: str                    # PD_PYTHON: torque motors, PD per physics step in Python; PD_ACTUATOR: in MuJoCo
    armature: bool = True      # per-motor armature of g1_description.robot
    #: MuJoCo integrator ("" = the Menagerie model's implicitfast). actuator_200hz uses Euler: with the
    #: actuators' -kd dq term integrated implicitly (implicitfast / implicit) the G1 standing on its feet
    #: with the STAND gains oscillates (wrists, shoulders, ankles) and falls within ~4 s at 5 ms steps;
    #: with Euler (and with the PD in Python under implicitfast) it stands (measured, README)
    integrator: str = ""

    @property
    def rate_hz(self) -> float:
        return 1.0 / self.timestep_s

    def delay_steps(self, delay_units):
        """Action delays given in :data:`DELAY_UNIT_S` (2 ms, the drivers' PD period) as whole physics steps
        of this profile, rounded to the nearest step (drivers_500hz: unchanged)."""
        import numpy as np

        return np.rint(np.asarray(delay_units) * (DELAY_UNIT_S / self.timestep_s)).astype(np.int64)


PROFILES: dict[str, PhysicsProfile] = {
    p.name: p for p in (
        PhysicsProfile("drivers_500hz", 0.002, 10, PD_PYTHON),
        PhysicsProfile("actuator_200hz", 0.005, 4, PD_ACTUATOR, integrator="euler"),
    )
}
DEFAULT_PROFILE = "drivers_500hz"
#: The profile the fast training backend simulates with by default.
TRAINING_PROFILE = "actuator_200hz"

for _p in PROFILES.values():  # a control tick is a whole number of physics steps of every profile
    assert abs(_p.timestep_s * _p.substeps - robot.CONTROL_PERIOD_S) < 1e-12, _p


def get_profile(name: str | PhysicsProfile) -> PhysicsProfile:
    """The profile called ``name`` (a profile passes through), or a ``DescriptionError`` naming the choices."""
    if isinstance(name, PhysicsProfile):
        return name
    try:
        return PROFILES[name]
    except KeyError:
        raise robot.DescriptionError(f"physics profile {name!r}: expected one of {sorted(PROFILES)} "
                                     "(g1_description.physics)") from None
