"""Bad motion files: each fails with an error that says what and where, and the library stays intact."""

from __future__ import annotations

import argparse
import json
import pickle
import shutil

import numpy as np
import pytest

from g1_description import robot
from motion_server import cli
from motion_server.importers import MotionImportError, import_motion
from motion_server.library import MotionLibrary

from motion_helpers import make_bad_files


def test_each_bad_file_gives_a_clear_error(tmp_path, good_csv, kinematics):
    expected = make_bad_files(tmp_path / "bad", good_csv)
    for name, phrase in expected.items():
        with pytest.raises(MotionImportError) as info:
            import_motion(tmp_path / "bad" / name, kinematics=kinematics)
        assert phrase in str(info.value), f"{name}: {info.value}"
        assert name in str(info.value)  # says which file
    assert not (tmp_path / "bad" / "PWNED").exists(), "the pickle ran code"


def test_directory_import_skips_bad_files_and_keeps_the_library(tmp_path, good_csv, capsys):
    library = MotionLibrary(tmp_path / "library")
    source = tmp_path / "source"
    make_bad_files(source, good_csv)
    shutil.copy(good_csv, source / "good.csv")
    before = _import(library, [good_csv])
    assert before == 0
    snapshot = {p.name: p.read_bytes() for p in library.root.iterdir() if p.suffix in (".npz", ".json")}

    assert _import(library, [source]) == 1  # some failed -> non-zero exit
    err = capsys.readouterr().err
    assert err.count("FAILED") == 11
    assert library.names() == ["M_ShortMove14", "good"]
    assert (library.root / "M_ShortMove14.npz").read_bytes() == snapshot["M_ShortMove14.npz"]
    index = json.loads((library.root / "index.json").read_text())
    assert sorted(index["motions"]) == ["M_ShortMove14", "good"]
    assert not [p for p in library.root.iterdir() if p.name.endswith(".tmp")]
    assert not (source / "PWNED").exists()


def test_a_failed_write_leaves_no_partial_file(tmp_path, good_csv, kinematics, monkeypatch):
    library = MotionLibrary(tmp_path)
    motion = import_motion(good_csv, kinematics=kinematics).motion
    library.add(motion)
    index_before = (tmp_path / "index.json").read_bytes()

    def crash(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    motion.name = "second"
    with pytest.raises(OSError):
        library.add(motion)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".lock")) == \
        ["M_ShortMove14.npz", "index.json"]
    assert (tmp_path / "index.json").read_bytes() == index_before


def test_non_unit_quaternions_and_limit_violations_are_repaired_and_reported(tmp_path, good_csv, kinematics):
    rows = np.loadtxt(good_csv, delimiter=",", usecols=range(36))
    rows[:, 3:7] *= 1.2          # quaternions scaled
    rows[10:20, 7 + 3] = 3.5     # left knee beyond its 2.88 rad limit
    path = tmp_path / "repair.csv"
    np.savetxt(path, rows, delimiter=",", fmt="%.6f")
    result = import_motion(path, kinematics=kinematics)
    report = " | ".join(result.warnings)
    assert "not unit norm" in report and "normalised" in report
    assert "left_knee_joint beyond its limit" in report and "clipped" in report
    assert result.motion.provenance["import_report"] == result.warnings
    assert result.motion.joint_pos[:, 3].max() <= robot.JOINT_UPPER[3] + 1e-12
    np.testing.assert_allclose(np.linalg.norm(result.motion.root_quat_wxyz, axis=1), 1.0, atol=1e-9)


def test_cli_import_list_inspect(tmp_path, good_csv, capsys):
    library = tmp_path / "lib"
    assert _import(MotionLibrary(library), [good_csv], fps=60.0) == 0
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--library", str(library), "list"])) == 0
    assert "M_ShortMove14" in capsys.readouterr().out
    png = tmp_path / "plot.png"
    assert cli.run(parser.parse_args(["--library", str(library), "inspect", "M_ShortMove14", "--plot", str(png)])) == 0
    out = capsys.readouterr().out
    assert "6.54 s" in out and "cc-by-4.0" in out and "left_knee_joint" in out
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert cli.run(parser.parse_args(["--library", str(library), "inspect", "M_ShortMove41"])) == 1
    assert "did you mean M_ShortMove14" in capsys.readouterr().err


def test_library_rebuilds_a_lost_index(tmp_path, good_csv, kinematics):
    library = MotionLibrary(tmp_path)
    library.add(import_motion(good_csv, kinematics=kinematics).motion)
    (tmp_path / "index.json").write_text("{ not json")
    assert library.names() == ["M_ShortMove14"]
    assert library.load("M_ShortMove14").num_frames == 328


def _import(library: MotionLibrary, paths, fps=None) -> int:
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--library", str(library.root), "import", *map(str, paths),
                              *(["--fps", str(fps)] if fps else [])])
    return cli.run(args)


class CallsEval:
    def __reduce__(self):
        return (eval, ("__import__('os').system('true')",))


class CallsGetattr:
    def __reduce__(self):
        return (getattr, ("text", "upper"))  # getattr could reach anything from any object


@pytest.mark.parametrize("payload", [CallsEval(), CallsGetattr()], ids=["eval", "getattr"])
def test_safe_pickle_refuses_any_callable_outside_the_allow_list(payload):
    from motion_server.safe_pickle import UnsafePickleError, safe_load

    with pytest.raises(UnsafePickleError, match="refused to load 'builtins"):
        safe_load(pickle.dumps({"dof_pos": payload}))


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_safe_pickle_reads_plain_motion_pickles_of_every_protocol(protocol):
    from motion_server.safe_pickle import safe_load

    data = {"fps": np.float64(30), "root_pos": np.zeros((4, 3)), "dof_pos": np.ones((4, 29), np.float32),
            "names": ["a", "b"]}
    out = safe_load(pickle.dumps(data, protocol=protocol))
    assert out["fps"] == 30 and out["dof_pos"].dtype == np.float32 and out["names"] == ["a", "b"]
