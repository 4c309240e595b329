"""Fixtures for the motion tests: one library with all G1-Moves clips, imported once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from motion_server.cli import source_files
from motion_server.importers import import_motion
from motion_server.kinematics import KeyBodyKinematics
from motion_server.library import MotionLibrary


@pytest.fixture(scope="session")
def kinematics() -> KeyBodyKinematics:
    return KeyBodyKinematics()


@pytest.fixture(scope="session")
def good_csv(g1_moves_dir) -> Path:
    """A short G1-Moves clip (6.54 s)."""
    return g1_moves_dir / "karate" / "M_ShortMove14.csv"


@pytest.fixture(scope="session")
def g1_moves_csvs(g1_moves_dir) -> list[Path]:
    files = source_files([g1_moves_dir])
    assert len(files) == 49, f"expected the 49 G1-Moves clips in {g1_moves_dir}, found {len(files)}"
    return files


@pytest.fixture(scope="session")
def g1_moves_library(tmp_path_factory, g1_moves_csvs, kinematics) -> MotionLibrary:
    """All 49 clips imported into one temporary library (shared: importing takes a few seconds)."""
    library = MotionLibrary(tmp_path_factory.mktemp("library"))
    for path in g1_moves_csvs:
        library.add(import_motion(path, kinematics=kinematics).motion)
    return library
