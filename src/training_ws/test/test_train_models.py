"""Runs the torch model checks (train_torch_checks.py) in the training venv."""

from train_testutil import WS, run_in_train_venv


def test_models_in_training_venv(train_python):
    proc = run_in_train_venv(train_python, ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                                            str(WS / "test" / "train_torch_checks.py")], timeout=300)
    assert " passed" in proc.stdout and "failed" not in proc.stdout
