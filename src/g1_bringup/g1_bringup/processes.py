"""Run a node graph as child processes: prefixed logs, Ctrl-C forwarded, everything stopped if one dies.

This is the pip world's stand-in for ``ros2 launch``; the graph itself is described once in
``g1_bringup.graph`` and the launch file builds its actions from the same description.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

_COLORS = ["36", "33", "35", "32", "34", "31", "37"]


@dataclass
class ManagedProcess:
    name: str
    popen: subprocess.Popen
    required: bool
    log_thread: threading.Thread | None = None
    log_tail: list = field(default_factory=list)


class ProcessGroup:
    """Child processes with line-prefixed output; ``stop_all`` is idempotent and escalates to SIGKILL."""

    def __init__(self, log_dir: Path | None = None, echo: bool = True, echo_filter: Callable[[str], bool] | None = None):
        self.procs: list[ManagedProcess] = []
        self.log_dir = log_dir
        self.echo = echo
        self.echo_filter = echo_filter
        self._lock = threading.Lock()
        if log_dir:
            log_dir.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, argv: list[str], required: bool = True, env: dict | None = None) -> ManagedProcess:
        popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                 start_new_session=True, text=True, bufsize=1)
        proc = ManagedProcess(name, popen, required)
        color = _COLORS[len(self.procs) % len(_COLORS)]
        log_file = (self.log_dir / f"{name}.log").open("w") if self.log_dir else None
        proc.log_thread = threading.Thread(target=self._pump, args=(proc, color, log_file), daemon=True)
        proc.log_thread.start()
        self.procs.append(proc)
        return proc

    def _pump(self, proc: ManagedProcess, color: str, log_file: IO | None):
        prefix = f"\033[{color}m[{proc.name}]\033[0m " if sys.stdout.isatty() else f"[{proc.name}] "
        for line in proc.popen.stdout:
            proc.log_tail.append(line)
            del proc.log_tail[:-200]
            if log_file:
                log_file.write(line)
                log_file.flush()
            if self.echo and (self.echo_filter is None or self.echo_filter(line)):
                with self._lock:
                    sys.stdout.write(prefix + line)
                    sys.stdout.flush()
        if log_file:
            log_file.close()

    def dead_required(self) -> list[ManagedProcess]:
        return [p for p in self.procs if p.required and p.popen.poll() is not None]

    def stop(self, proc: ManagedProcess, timeout_s: float = 10.0) -> int | None:
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.popen.pid, signal.SIGINT)
                proc.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait()
            except ProcessLookupError:
                pass
        if proc.log_thread:
            proc.log_thread.join(timeout=2.0)
        return proc.popen.returncode

    def stop_all(self, order: list[str] | None = None, timeout_s: float = 10.0) -> dict[str, int | None]:
        """Stop every process (those named in ``order`` first, in that order), return exit codes."""
        first = [p for name in (order or []) for p in self.procs if p.name == name]
        rest = [p for p in reversed(self.procs) if p not in first]
        return {p.name: self.stop(p, timeout_s) for p in first + rest}

    def wait_any_required_death(self, poll_s: float = 0.1, until: Callable[[], bool] | None = None) -> ManagedProcess | None:
        """Block until a required process exits (returned) or ``until()`` is true (None)."""
        while True:
            dead = self.dead_required()
            if dead:
                return dead[0]
            if until is not None and until():
                return None
            time.sleep(poll_s)
