"""Bad motion files for the tests: each kind of damage the importers must name."""

from __future__ import annotations

import os
import pickle

import numpy as np


def _csv_lines(path, n):
    return path.read_text().splitlines()[:n]


class Exploit:
    """Unpickling this would run a shell command that creates a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def make_bad_files(folder, good_csv) -> dict[str, str]:
    """file name -> a phrase its error must contain."""
    lines = _csv_lines(good_csv, 120)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "truncated.csv").write_text("\n".join(lines[:-1] + [lines[-1][:60]]) + "\n")
    nan_row = lines[50].split(",")
    nan_row[10] = "nan"
    (folder / "nan_row.csv").write_text("\n".join(lines[:50] + [",".join(nan_row)] + lines[51:]))
    text_row = lines[7].split(",")
    text_row[12] = "0.1x3"
    (folder / "text_cell.csv").write_text("\n".join(lines[:7] + [",".join(text_row)] + lines[8:]))
    (folder / "zero_length.csv").write_text("")
    (folder / "too_short.csv").write_text("\n".join(lines[:3]))
    wrong = [",".join(line.split(",")[:30]) for line in lines]
    (folder / "wrong_columns.csv").write_text("\n".join(wrong))
    (folder / "exploit.pkl").write_bytes(pickle.dumps(
        {"fps": 60, "dof_pos": Exploit(folder / "PWNED")}))
    (folder / "no_fps.pkl").write_bytes(pickle.dumps(
        {"root_pos": np.zeros((100, 3)), "root_rot": np.tile([0, 0, 0, 1.0], (100, 1)),
         "dof_pos": np.zeros((100, 29))}))
    (folder / "empty_clip.pkl").write_bytes(pickle.dumps(
        {"fps": 30, "root_pos": np.zeros((0, 3)), "root_rot": np.zeros((0, 4)), "dof_pos": np.zeros((0, 29))}))
    (folder / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    whole = pickle.dumps({"fps": 30, "root_pos": np.zeros((50, 3)), "root_rot": np.zeros((50, 4)),
                          "dof_pos": np.zeros((50, 29))})
    (folder / "truncated.pkl").write_bytes(whole[: len(whole) // 2])
    return {
        "corrupt.npz": "not a readable npz file",
        "truncated.pkl": "not a readable pickle",
        "truncated.csv": "line 120: truncated row: 7 columns, expected 36",
        "nan_row.csv": "line 51: joint positions (left_knee_joint) is NaN or inf",
        "text_cell.csv": "line 8, column 13 (left_ankle_roll_joint): '0.1x3' is not a number",
        "zero_length.csv": "zero-length clip",
        "too_short.csv": "too short",
        "wrong_columns.csv": "wrong column count: line 1 has 30 columns, expected 36",
        "exploit.pkl": "refused to load 'posix.system'",
        "no_fps.pkl": "unknown fps",
        "empty_clip.pkl": "zero-length clip",
    }
