"""Multi-process training through torchrun, on CPU: rsl-rl-lib's distributed path over gloo.

Two ranks of the tiny smoke config (2 iterations, 2 envs per rank) for the PPO teacher and a DAgger
Transformer student: both ranks run, only rank 0 writes the run directory and shows a progress bar, the
ranks start from different parameters (seed + rank) and end bit-identical (rank 0's broadcast, then
all-reduced gradients and normaliser statistics), and rank 0's checkpoint holds exactly those
parameters. On GPUs the same command with ``device: cuda`` uses cuda:<LOCAL_RANK> and NCCL (rsl-rl's
own set-up), which cannot run here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from train_testutil import WS, run_in_train_venv

SMOKE = WS / "configs" / "smoke.yaml"
DIGEST_ENV = "G1_TRAIN_PARAM_DIGEST_DIR"  # g1_train.train.PARAM_DIGEST_ENV


def _torchrun(train_python: Path, tmp: Path, stage: str, args: list[str]) -> tuple[Path, Path]:
    digests, logs = tmp / f"digest_{stage}", tmp / f"logs_{stage}"
    run_in_train_venv(train_python, ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                                     "--log-dir", str(logs), "--redirects", "3",
                                     "-m", "g1_train.cli", *args, "--out", str(tmp / stage)],
                      timeout=240, env_extra={DIGEST_ENV: str(digests), "OMP_NUM_THREADS": "1"})
    return digests, logs


def _rank_log(logs: Path, rank: int, stream: str) -> str:
    (path,) = logs.glob(f"*/attempt_0/{rank}/{stream}.log")
    return path.read_text()


def _checkpoint_digest(train_python: Path, ckpt: Path) -> str:
    code = ("import sys; from g1_train.checkpoint_io import load_checkpoint; from g1_train.train import state_digest; "
            "print(state_digest(load_checkpoint(sys.argv[1])))")
    return run_in_train_venv(train_python, ["-c", code, str(ckpt)], timeout=120).stdout.strip()


@pytest.fixture(scope="module")
def torchrun_runs(tmp_path_factory, train_python, g1_moves):
    tmp = tmp_path_factory.mktemp("g1_train_torchrun")
    common = ["--config", str(SMOKE), "--set", f"env.motions.sources=[{g1_moves / 'dance'}]",
              "--set", "env.num_envs=2"]
    teacher = _torchrun(train_python, tmp, "teacher", ["teacher", *common])
    student = _torchrun(train_python, tmp, "student", ["student", *common, "--kind", "transformer",
                                                       "--set", "student.num_layers=2",
                                                       "--teacher", str(tmp / "teacher")])
    return tmp, {"teacher": teacher, "student": student}


@pytest.mark.parametrize("stage, bar", [("teacher", "teacher PPO"), ("student", "student transformer DAgger")])
def test_two_cpu_ranks_train_in_sync_and_only_rank0_writes(torchrun_runs, train_python, stage, bar):
    tmp, runs = torchrun_runs
    digests, logs = runs[stage]
    ranks = {r: json.loads((digests / f"rank{r}.json").read_text()) for r in (0, 1)}  # both ranks ran
    for r, info in ranks.items():
        assert info["rank"] == r and info["world_size"] == 2 and info["backend"] == "gloo"
        assert info["device"] == "cpu" and info["num_envs"] == 2 and info["iteration"] == 1
    assert ranks[0]["seed"] != ranks[1]["seed"]  # each rank simulates its own environments
    assert ranks[0]["initial"] != ranks[1]["initial"]  # different initial parameters (seed + rank) ...
    assert ranks[0]["final"] == ranks[1]["final"]  # ... broadcast, all-reduced: bit-identical after the update
    assert ranks[0]["final"] != ranks[0]["initial"]  # the update changed them

    run = tmp / stage  # rank 0's run directory, and nothing from rank 1
    assert sorted(p.name for p in run.glob("model_*.pt")) == ["model_0.pt", "model_1.pt"]
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    assert len((run / "progress.jsonl").read_text().splitlines()) == 2  # one line per iteration, one writer
    assert sorted(p.name for p in tmp.iterdir()) == sorted(
        f"{kind}_{s}" if kind else s for s in ("teacher", "student") for kind in ("", "digest", "logs"))
    assert _checkpoint_digest(train_python, run / "model_1.pt") == ranks[0]["final"]
    assert bar in _rank_log(logs, 0, "stderr") and bar not in _rank_log(logs, 1, "stderr")
    assert f"{stage} checkpoint:" in _rank_log(logs, 0, "stdout")
    assert f"{stage} checkpoint:" not in _rank_log(logs, 1, "stdout")
