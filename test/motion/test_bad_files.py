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


# --- the library stays inside its directory; malformed indexes and allocation bombs fail clearly ---------

@pytest.mark.parametrize("name", ["../escaped", "sub/dir", "/abs/path", "..", ".hidden", "", "a\\b", "x\0y"])
def test_import_refuses_a_name_that_would_write_outside_the_library(tmp_path, good_csv, capsys, name):
    library = tmp_path / "lib"
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    rc = cli.run(parser.parse_args(["--library", str(library), "import", str(good_csv), "--name", name]))
    err = capsys.readouterr().err
    assert rc != 0 and "name" in err and "Traceback" not in err
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".npz", ".json")]
    assert written == [], written
    assert not list(tmp_path.parent.glob("escaped*"))


def test_library_add_refuses_a_path_like_motion_name(tmp_path, good_csv, kinematics):
    from motion_server.library import LibraryError

    motion = import_motion(good_csv, kinematics=kinematics).motion
    motion.name = "../../escaped"
    with pytest.raises(LibraryError, match="escaped"):
        MotionLibrary(tmp_path / "a" / "b").add(motion)
    assert not [p for p in tmp_path.rglob("*") if p.suffix == ".npz"]


@pytest.mark.parametrize("file", ["../outside.npz", "/ABS/outside.npz", "sub/../../outside.npz"])
def test_index_entries_pointing_outside_the_library_are_refused(tmp_path, good_csv, kinematics, file):
    from motion_server.library import LibraryError
    from motion_server.motion import save_motion

    outside = tmp_path / "outside.npz"
    save_motion(import_motion(good_csv, kinematics=kinematics).motion, outside)
    library = MotionLibrary(tmp_path / "lib")
    library.add(import_motion(good_csv, kinematics=kinematics).motion)
    index = json.loads((library.root / "index.json").read_text())
    entry = dict(index["motions"]["M_ShortMove14"], name="evil", file=file.replace("/ABS", str(tmp_path)))
    index["motions"]["evil"] = entry
    (library.root / "index.json").write_text(json.dumps(index))
    with pytest.raises(LibraryError, match="outside the library"):
        library.load("evil")
    with pytest.raises(LibraryError, match="outside the library"):
        library.remove("evil")
    assert outside.is_file()  # remove() did not delete a file outside the library
    assert library.load("M_ShortMove14").num_frames == 328  # the valid entries still work


@pytest.mark.parametrize("index", ['{"motions": []}', '[]', '{"motions": {"a": ["x"]}}',
                                   '{"motions": {"a": {"file": "a.npz"}}}', '"text"'])
def test_a_malformed_index_gives_a_clear_error(tmp_path, capsys, index):
    from motion_server.library import LibraryError

    root = tmp_path / "lib"
    root.mkdir()
    (root / "index.json").write_text(index)
    library = MotionLibrary(root)
    with pytest.raises(LibraryError, match="index.json"):
        library.names()
    with pytest.raises(LibraryError, match="delete it"):
        library.load("a")
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    assert cli.run(parser.parse_args(["--library", str(root), "list"])) == 1
    err = capsys.readouterr().err
    assert "index.json" in err and "Traceback" not in err


def _bytearray_bomb(size: int) -> bytes:
    """The 30-byte pickle ``bytearray(size)``: only allow-listed names, yet it asks for ``size`` bytes."""
    return b"\x80\x02cbuiltins\nbytearray\nJ" + size.to_bytes(4, "little") + b"\x85R."


def _ndarray_bomb() -> bytes:
    """``numpy.ndarray((2**17, 2**17))``: 128 GiB of float64 from an allow-listed constructor."""
    return (b"\x80\x02cnumpy\nndarray\nJ\x00\x00\x02\x00J\x00\x00\x02\x00\x86\x85R.")


def _reconstruct_bomb() -> bytes:
    """``numpy._core.multiarray._reconstruct(ndarray, (2**31,), b'b')``: 2 GiB."""
    return (b"\x80\x02cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\n\x8a\x05\x00\x00\x00\x80\x00\x85C\x01b\x87R.")


def _amplified_list() -> bytes:
    """A 32 MiB bytearray (within budget) turned into lists 64 times: 16 GiB of list slots."""
    head = b"\x80\x02cbuiltins\nbytearray\nJ\x00\x00\x00\x02\x85R\x94cbuiltins\nlist\n\x94("
    body = b"h\x01h\x00\x85R" * 64
    return head + body + b"l."


@pytest.mark.parametrize("payload", [_bytearray_bomb(2**30), _ndarray_bomb(), _reconstruct_bomb(), _amplified_list()],
                         ids=["bytearray", "ndarray", "reconstruct", "list-amplification"])
def test_safe_pickle_refuses_huge_allocations_before_making_them(payload):
    import tracemalloc

    from motion_server.safe_pickle import UnsafePickleError, safe_load

    tracemalloc.start()
    try:
        with pytest.raises(UnsafePickleError, match="MiB"):
            safe_load(payload)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 200 * 2**20, f"{peak / 2**20:.0f} MiB allocated while refusing"


def test_import_of_a_pickle_bomb_fails_clearly(tmp_path, kinematics):
    bomb = tmp_path / "bomb.pkl"
    bomb.write_bytes(_bytearray_bomb(2**30))
    with pytest.raises(MotionImportError, match="bomb.pkl.*1024 MiB"):
        import_motion(bomb, kinematics=kinematics)


def test_safe_pickle_still_reads_bytearrays_and_arrays_of_ordinary_size():
    from motion_server.safe_pickle import safe_load

    data = {"blob": bytearray(b"abc" * 1000), "dof_pos": np.arange(29 * 600, dtype=np.float64).reshape(600, 29),
            "fps": 30.0, "pair": (1, 2), "tags": {"a", "b"}, "z": complex(1, 2)}
    for protocol in range(0, pickle.HIGHEST_PROTOCOL + 1):
        out = safe_load(pickle.dumps(data, protocol=protocol))
        assert out["blob"] == data["blob"] and np.array_equal(out["dof_pos"], data["dof_pos"])
        assert out["tags"] == {"a", "b"} and out["pair"] == (1, 2) and out["z"] == complex(1, 2)


class _ShortObjectArray:
    """Pickles as an object array of shape (3,) whose state carries only 2 values: numpy would read past
    the list (garbage objects; with a large shape, a crash)."""

    def __reduce__(self):
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (np.ndarray, (0,), b"b"), (1, (3,), np.dtype("O"), False, [1.0, 2.0]))


def test_safe_pickle_refuses_an_object_array_shorter_than_its_shape():
    from motion_server.safe_pickle import UnsafePickleError, safe_load

    with pytest.raises(UnsafePickleError, match="object array of shape"):
        safe_load(pickle.dumps({"dof_pos": _ShortObjectArray()}, protocol=2))
    names = np.array(["a", "bc"], dtype=object)
    assert list(safe_load(pickle.dumps({"names": names}))["names"]) == ["a", "bc"]
