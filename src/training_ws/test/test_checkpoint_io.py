"""Checkpoints are read weights-only (g1_train.checkpoint_io): a checkpoint whose pickle would run code
is refused on resume and export without running it, while real checkpoints still resume and export.
Everything runs in the training venv through the real CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from train_testutil import WS, run_in_train_venv

SMOKE = WS / "configs" / "smoke.yaml"
G1_TRAIN = ["-m", "g1_train.cli"]

# A checkpoint that is a real one plus an object whose unpickling runs a shell command (creates MARKER).
MAKE_EVIL = """
import os, shutil, sys, torch
real, evil_dir, marker = sys.argv[1:4]
class RunsCode:
    def __reduce__(self):
        return (os.system, (f"touch {marker}",))
state = torch.load(real, map_location="cpu", weights_only=True)
state["infos"] = RunsCode()
os.makedirs(evil_dir, exist_ok=True)
shutil.copy(os.path.join(os.path.dirname(real), "config.yaml"), evil_dir)
torch.save(state, os.path.join(evil_dir, os.path.basename(real)))
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory, train_python, g1_moves):
    out = tmp_path_factory.mktemp("g1_train_checkpoints")
    motions = ["--set", f"env.motions.sources=[{g1_moves / 'dance'}]"]
    run_in_train_venv(train_python, [*G1_TRAIN, "teacher", "--config", str(SMOKE), *motions,
                                     "--out", str(out / "teacher")], timeout=300)
    run_in_train_venv(train_python, [*G1_TRAIN, "student", "--config", str(SMOKE), *motions, "--kind", "moe",
                                     "--teacher", str(out / "teacher"), "--out", str(out / "student")], timeout=300)
    for stage in ("teacher", "student"):
        run_in_train_venv(train_python, ["-c", MAKE_EVIL, str(out / stage / "model_1.pt"), str(out / f"evil_{stage}"),
                                         str(out / f"RAN_CODE_{stage}")], timeout=120)
    return out, motions


def _g1_train(train_python: Path, args: list[str]):
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([str(train_python), *G1_TRAIN, *args], cwd=str(WS.parents[1]), env=env,
                          capture_output=True, text=True, timeout=300)


def test_load_checkpoint_reads_real_checkpoints_as_torch_does_and_refuses_code(runs, train_python):
    out, _ = runs
    code = """
import sys, torch
from pathlib import Path
from g1_train.checkpoint_io import CheckpointError, load_checkpoint
from g1_train.train import state_digest
out = Path(sys.argv[1])
for stage in ("teacher", "student"):
    ckpt = out / stage / "model_1.pt"
    trusted = torch.load(ckpt, map_location="cpu", weights_only=False)
    loaded = load_checkpoint(ckpt)
    assert state_digest(loaded) == state_digest(trusted) and loaded["iter"] == trusted["iter"] == 1, stage
    try:
        load_checkpoint(out / f"evil_{stage}" / "model_1.pt")
    except CheckpointError as exc:
        print("REFUSED", stage, exc)
"""
    proc = run_in_train_venv(train_python, ["-c", code, str(out)], timeout=120)
    refusals = [line for line in proc.stdout.splitlines() if line.startswith("REFUSED")]
    assert len(refusals) == 2, proc.stdout
    for line in refusals:
        assert "model_1.pt" in line and "refused" in line and "system" in line, line
    assert not list(out.glob("RAN_CODE_*")), "a checkpoint ran code"


@pytest.mark.parametrize("stage, args", [
    ("student", ["export", "--checkpoint", "{evil}", "--out", "{out}/evil.onnx"]),
    ("student", ["student", "--config", "{smoke}", "--kind", "moe", "--resume", "{evil}", "--iterations", "1",
                 "--out", "{out}/evil_student_resumed"]),
    ("teacher", ["teacher", "--config", "{smoke}", "--resume", "{evil}", "--iterations", "1",
                 "--out", "{out}/evil_teacher_resumed"]),
    ("teacher", ["student", "--config", "{smoke}", "--kind", "moe", "--teacher", "{evil}",
                 "--out", "{out}/evil_from_teacher"]),
], ids=["export", "student-resume", "teacher-resume", "student-from-teacher"])
def test_a_checkpoint_that_would_run_code_is_refused(runs, train_python, stage, args):
    out, motions = runs
    fill = {"evil": str(out / f"evil_{stage}"), "out": str(out), "smoke": str(SMOKE)}
    argv = [a.format(**fill) for a in args]
    proc = _g1_train(train_python, argv + (motions if argv[0] != "export" else []))
    assert not (out / f"RAN_CODE_{stage}").exists(), f"{argv[0]} ran the checkpoint's code"
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "refused" in proc.stderr and "model_1.pt" in proc.stderr and "Traceback" not in proc.stderr


def test_real_checkpoints_still_resume_and_export(runs, train_python):
    out, motions = runs
    run_in_train_venv(train_python, [*G1_TRAIN, "student", "--config", str(SMOKE), *motions, "--kind", "moe",
                                     "--resume", str(out / "student"), "--iterations", "1",
                                     "--out", str(out / "student_resumed")], timeout=300)
    assert (out / "student_resumed" / "model_2.pt").is_file()  # continued after the checkpoint's iteration 1
    run_in_train_venv(train_python, [*G1_TRAIN, "export", "--checkpoint", str(out / "student_resumed"),
                                     "--out", str(out / "resumed.onnx")], timeout=300)
    assert (out / "resumed.onnx").stat().st_size > 0
