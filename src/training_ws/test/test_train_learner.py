"""Runs the learner checks (train_learner_checks.py) in the training venv: fused Adam and the torch thread
setting change nothing that is learned; the teacher's env builds no Transformer context."""

from train_testutil import WS, run_in_train_venv


def test_learner_settings_in_training_venv(train_python, g1_moves):
    proc = run_in_train_venv(train_python, ["-m", "pytest", "-q", "-p", "no:cacheprovider",
                                            str(WS / "test" / "train_learner_checks.py")], timeout=600)
    assert " passed" in proc.stdout and "failed" not in proc.stdout
