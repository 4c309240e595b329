"""Lockstep stamp plausibility (g1_common.ticks.lockstep_stamp_problem), used by g1_policy and motion_server
to reject one bad message instead of freezing (far ahead) or resetting playback (time going back)."""

from g1_common import ticks

P = ticks.CONTROL_PERIOD_NS


def test_protocol_stamps_are_accepted():
    assert ticks.lockstep_stamp_problem(0, None, 0) == ""                       # the first tick
    assert ticks.lockstep_stamp_problem(11 * P, 10 * P, 10 * P) == ""           # the next state
    assert ticks.lockstep_stamp_problem(12 * P, 10 * P, 10 * P) == ""           # a reference one tick ahead
    assert ticks.lockstep_stamp_problem(10 * P, 10 * P, 10 * P) == ""           # a repeat (the caller drops it)
    assert ticks.lockstep_stamp_problem(500 * P, 10 * P, 499 * P) == ""         # the simulator stepped on (/clock)
    assert ticks.lockstep_stamp_problem(15 * P, 10 * P, 9 * P) == ""            # within MAX_LEAD_TICKS


def test_far_ahead_back_and_off_grid_are_refused_with_the_reason():
    why = ticks.lockstep_stamp_problem((10 + ticks.MAX_LEAD_TICKS + 1) * P, 10 * P, 10 * P)
    assert "6 ticks ahead" in why and "at most 5" in why
    assert "ticks ahead" in ticks.lockstep_stamp_problem(10**6 * P, None, 0)  # even before the first tick
    why = ticks.lockstep_stamp_problem(0, 500 * P, 500 * P)
    assert "never goes back" in why and "t = 10.000 s" in why
    assert "tick grid" in ticks.lockstep_stamp_problem(10 * P + 1, 10 * P, 10 * P)
    assert "tick grid" in ticks.lockstep_stamp_problem(None, 10 * P, 10 * P)
