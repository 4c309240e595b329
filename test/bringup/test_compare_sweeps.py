"""src/training_ws/scripts/compare_sweeps.py: two runs of a clip are compared on the clip times both played."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "src" / "training_ws" / "scripts" / "compare_sweeps.py"


@pytest.fixture(scope="module")
def compare():
    spec = importlib.util.spec_from_file_location("compare_sweeps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def series(t_end, mpkpe_early, mpkpe_late, split_s=2.0):
    t = np.arange(0.0, t_end + 1e-9, 0.02)
    e = np.where(t <= split_s, mpkpe_early, mpkpe_late).astype(float)
    return {"t": t, "mpkpe": e, "rel": e / 2, "xy": e / 3}


def test_matched_window_ends_where_the_first_run_terminated(compare):
    long_run = series(6.0, 50.0, 500.0)   # accurate early, bad late: its full-run mean is ~350 mm
    short_run = series(2.0, 100.0, 100.0)  # falls at 2 s
    m = compare.matched(long_run, short_run)
    assert m["t_end"] == pytest.approx(2.0)
    assert m["mpkpe_a"] == pytest.approx(50.0) and m["mpkpe_b"] == pytest.approx(100.0)
    assert m["rel_a"] == pytest.approx(25.0) and m["xy_b"] == pytest.approx(100.0 / 3)
    assert long_run["mpkpe"].mean() > m["mpkpe_b"]  # what the unmatched means would have said instead
    swapped = compare.matched(short_run, long_run)
    assert swapped["mpkpe_a"] == pytest.approx(100.0) and swapped["mpkpe_b"] == pytest.approx(50.0)


def test_a_run_that_played_nothing_is_not_compared(compare):
    empty = {k: np.zeros(0) for k in ("t", "mpkpe", "rel", "xy")}
    assert compare.matched(empty, series(3.0, 1.0, 1.0)) is None
