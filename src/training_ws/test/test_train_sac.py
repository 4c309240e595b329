"""Runs the SAC teacher checks (sac_checks.py) in the training venv: the update rule, the replay buffer,
the CLI (train, checkpoint, reload, resume, --max-seconds), `g1-train eval --teacher` for SAC and PPO."""

from train_testutil import WS, run_in_train_venv


def test_sac_in_training_venv(train_python):
    proc = run_in_train_venv(train_python, ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                                            str(WS / "test" / "sac_checks.py")], timeout=900)
    assert " passed" in proc.stdout and "failed" not in proc.stdout
