"""Campaign mode through the real CLI in the training venv: K iterations + resume + K iterations = 2K
uninterrupted (bit-identical parameters and optimiser), checkpoints at --max-seconds and on SIGTERM,
slim snapshots, checkpoint pruning, and the task state's exact round trip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from train_testutil import ROOT, WS, run_in_train_venv

SMOKE = WS / "configs" / "smoke.yaml"
CHECKS = WS / "test" / "campaign_checks.py"
CLI = ["-m", "g1_train.cli"]


def _sets(g1_moves) -> list[str]:
    # adaptive whole-clip starts + randomisation (terrain included): every piece of task state matters
    return ["--set", f"env.motions.sources=[{g1_moves / 'dance'}]", "--set", "env.sampling.start_sampling=adaptive",
            "--set", "env.sampling.max_segment_s=1.0", "--set", "teacher_algo.save_interval=100"]


def _check(train_python, what: str, arg) -> dict:
    return json.loads(run_in_train_venv(train_python, [str(CHECKS), what, str(arg)], timeout=300).stdout)


def _events(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "campaign.jsonl").read_text().splitlines()]


def test_k_plus_resume_plus_k_equals_2k(tmp_path, train_python, g1_moves):
    sets = _sets(g1_moves)
    run_in_train_venv(train_python, [*CLI, "teacher", "--config", str(SMOKE), *sets, "--iterations", "6",
                                     "--out", str(tmp_path / "straight")], timeout=600)
    run_in_train_venv(train_python, [*CLI, "teacher", "--config", str(SMOKE), *sets, "--iterations", "3",
                                     "--out", str(tmp_path / "legs")], timeout=600)
    run_in_train_venv(train_python, [*CLI, "teacher", "--config", str(SMOKE), *sets, "--iterations", "3",
                                     "--resume", str(tmp_path / "legs")], timeout=600)  # continues in that dir
    a = _check(train_python, "digest", tmp_path / "straight" / "model_5.pt")  # loads with weights_only=True
    b = _check(train_python, "digest", tmp_path / "legs" / "model_5.pt")
    assert a["iter"] == b["iter"] == 5
    assert a["model"] == b["model"], "parameters / normalisers differ after resuming"
    assert a["optimizer"] == b["optimizer"], "optimiser state differs after resuming"
    assert b["campaign_keys"] == ["env_steps", "format", "leg", "ranks", "wall_s"] and b["physics"] == "backend"  # the batch backend's state_dict
    assert a["env_steps"] == b["env_steps"] == 6 * 8 * 4
    resume = next(e for e in _events(tmp_path / "legs") if e["event"] == "resume")
    assert resume["env_restored"] and resume["rng_restored"] and resume["it"] == 2
    # progress.jsonl of the resumed run = one line per iteration 0..5, env steps counted across legs
    lines = [json.loads(ln) for ln in (tmp_path / "legs" / "progress.jsonl").read_text().splitlines()]
    assert [ln["it"] for ln in lines] == list(range(6)) and lines[-1]["env_steps"] == 192

    # negative control: the same resume from a checkpoint without the task state (an older format) diverges
    import shutil
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    shutil.copy(tmp_path / "legs" / "config.yaml", legacy / "config.yaml")
    run_in_train_venv(train_python, ["-c", "import torch, sys; s = torch.load(sys.argv[1], weights_only=True); "
                                     "s.pop('campaign'); torch.save(s, sys.argv[2])",
                                     str(tmp_path / "legs" / "model_2.pt"), str(legacy / "model_2.pt")], timeout=120)
    run_in_train_venv(train_python, [*CLI, "teacher", "--config", str(SMOKE), *sets, "--iterations", "3",
                                     "--resume", str(legacy)], timeout=600)
    c = _check(train_python, "digest", legacy / "model_5.pt")
    assert c["model"] != a["model"]


def test_max_seconds_and_sigterm_leave_resumable_checkpoints(tmp_path, train_python, g1_moves):
    sets = _sets(g1_moves)
    # --max-seconds: the leg ends by itself, with a checkpoint and the slim snapshot
    run = tmp_path / "timed"
    run_in_train_venv(train_python, [*CLI, "teacher", "--config", str(SMOKE), *sets, "--iterations", "100000",
                                     "--set", "campaign.keep_checkpoints=2", "--out", str(run),
                                     "--max-seconds", "25"], timeout=300)
    stop = [e for e in _events(run) if e["event"] == "stop"][-1]
    assert stop["reason"] == "max_seconds"
    ckpts = sorted(run.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    assert 1 <= len(ckpts) <= 2 and int(ckpts[-1].stem.split("_")[1]) == stop["it"]  # pruned to the newest 2
    slim = _check(train_python, "slim", run / "policy.pt")
    assert slim["keys"] == ["actor_state_dict", "config", "infos", "iter", "slim"] and slim["iter"] == stop["it"]
    assert (run / "policy.pt").stat().st_size < ckpts[-1].stat().st_size / 2

    # SIGTERM in the middle of a leg: a checkpoint at the iteration the leg reached, exit status 0
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.Popen([str(train_python), *CLI, "teacher", "--config", str(SMOKE), *sets, "--iterations",
                             "100000", "--resume", str(run)], cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    progress = run / "progress.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        lines = progress.read_text().splitlines()
        if json.loads(lines[-1])["it"] >= stop["it"] + 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-3000:]
    events = _events(run)
    assert events[-1]["event"] == "stop" and events[-1]["reason"] == "signal SIGTERM"
    last_it = json.loads(progress.read_text().splitlines()[-1])["it"]
    assert events[-1]["it"] == last_it > stop["it"]
    assert (run / f"model_{last_it}.pt").is_file()
    assert [e["event"] for e in events].count("resume") == 1


def test_task_state_round_trip_is_exact(train_python, g1_moves):
    r = _check(train_python, "env_roundtrip", g1_moves / "dance")
    assert r["restored"] is True
    assert r["max_diff"] == 0.0 and r["qpos_diff"] == 0.0
    assert r["resets"] > 0  # episodes ended and restarted after the restore (sampler + generator continue)
    assert r["rng_equal"] == "True"


def test_resume_under_a_new_recipe_takes_the_new_gains_and_action_scale(train_python, g1_moves):
    """Gains and action scale are config, not task state: a resume after general.yaml's recipe changed
    simulates with the new ones (the checkpoint's episodes in flight continue)."""
    r = _check(train_python, "recipe_change", g1_moves / "dance")
    assert r["restored"] is True and r["frame_continued"] is True
    assert r["kp_is_new"] is True and r["scale_is_new"] is True
