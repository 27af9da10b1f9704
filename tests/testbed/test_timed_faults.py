"""Timed faults keep their time: a late or failed undo is reported, and a pause is undone without the
supervisor's lock (a restart that holds it cannot stretch the pause)."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from XNAi.base import Context
from XNAi.keywords.faults import UNDO_LATE_S, FaultKeywords

from testbed import supervisor
from testbed.config import TestbedConfig


def _timed(applied: float, duration: float, undone: float | None, error: str | None = None) -> dict:
    return {"id": "fault-1", "kind": "pause", "service": "redis", "applied_at": applied,
            "due_at": applied + duration, "fired_at": applied + duration, "undone_at": undone, "outcome": "resumed",
            "error": error}


def test_an_undo_on_time_is_logged_and_passes():
    faults = FaultKeywords(Context())
    faults._timed = {"fault-1": _timed(100.0, 2.0, 102.1)}
    lines, problems = faults._timed_report()
    assert problems == []
    assert "in place 2.10 s for 2 s" in lines[0]


def test_a_late_undo_is_a_problem_naming_how_late():
    faults = FaultKeywords(Context())
    faults._timed = {"fault-1": _timed(100.0, 5.0, 105.0 + UNDO_LATE_S + 13.8)}
    _lines, problems = faults._timed_report()
    assert len(problems) == 1 and "14.30 s after its time" in problems[0]


def test_a_failed_undo_is_a_problem():
    faults = FaultKeywords(Context())
    faults._timed = {"fault-1": _timed(100.0, 2.0, None, error="FaultError: testbed down")}
    _lines, problems = faults._timed_report()
    assert "failed: FaultError: testbed down" in problems[0]


def test_resume_does_not_wait_for_the_supervisor_lock(tmp_path):
    """The health monitor holds the lock while it restarts a service; a resume must not queue behind it."""
    cfg = TestbedConfig(base_port=29700, run_dir=str(tmp_path))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True)
    try:
        os.kill(sleeper.pid, signal.SIGSTOP)
        entry = {"pid": sleeper.pid, "create_time": psutil.Process(sleeper.pid).create_time()}
        supervisor._write_state(cfg, {"owner": "test", "services": {"redis": entry}})
        with open(cfg.run_path / "supervisor.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # as a restart in progress would
            started = time.monotonic()
            outcome = supervisor.service_action(cfg, "resume", "redis")
            waited = time.monotonic() - started
        assert outcome == "resumed" and waited < 1.0
        assert Path(f"/proc/{sleeper.pid}/stat").read_text().split()[2] != "T", "still stopped"
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stopped_service_is_on_time_when_its_start_is_issued_on_time():
    """Its start-up (readiness) is the service's own time, shown in the log, not lateness of the undo."""
    faults = FaultKeywords(Context())
    timed = _timed(100.0, 2.0, 104.5)
    timed.update(kind="stop", fired_at=102.05, outcome="started")
    faults._timed = {"fault-1": timed}
    lines, problems = faults._timed_report()
    assert problems == [] and "start issued" in lines[0] and "service up" in lines[0]
