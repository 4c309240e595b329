"""Shared test fixtures: an isolated DDS domain per test run, the ../shared data, node processes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("G1_SHARED_DIR", REPO.parent / "shared"))

# One DDS domain per test run, discovery confined to this machine, set before anything imports rclpy
# so that every node (in-process or a subprocess, which inherits the environment) uses it.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid() ^ time.time_ns()).randrange(20, 200)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = SHARED / "data"
    if not path.is_dir():
        pytest.fail(f"test data not found at {path}: clone the project with ../shared beside it, "
                    "or set G1_SHARED_DIR")
    return path


@pytest.fixture(scope="session")
def g1_moves_dir(shared_data) -> Path:
    return shared_data / "motions" / "g1_moves"


class NodeProcesses:
    """Starts node processes (python -m module ...) and stops them all at the end of the test."""

    def __init__(self, log_dir: Path):
        self.procs: list[tuple[subprocess.Popen, Path]] = []
        self.log_dir = log_dir

    def start(self, *args: str, name: str | None = None, env: dict | None = None) -> subprocess.Popen:
        name = name or args[-1].split(".")[-1]
        log = self.log_dir / f"{name}-{len(self.procs)}.log"
        proc = subprocess.Popen([sys.executable, *args], stdout=log.open("w"), stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})}, cwd=REPO, start_new_session=True)
        self.procs.append((proc, log))
        return proc

    def stop(self, proc: subprocess.Popen, sig=signal.SIGINT, timeout: float = 10.0) -> int:
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-4000:]}" for _, log in self.procs)

    def stop_all(self):
        for proc, _ in self.procs:
            self.stop(proc)


@pytest.fixture
def node_processes(tmp_path, request):
    procs = NodeProcesses(tmp_path)
    yield procs
    procs.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(procs.logs())


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)
