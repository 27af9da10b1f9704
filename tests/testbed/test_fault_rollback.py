"""Faults are always undone: at the end of a test that forgot, and after a run killed mid-fault."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.testbed

FORGETFUL = """*** Settings ***
Resource    {repo}/resources/xnai.resource
Suite Setup    Prepare Target

*** Test Cases ***
Forgets Its Fault
    Add Latency    rag_api    300ms

Sees No Fault
    ${{faults}}    Faults In Place
    Should Be Empty    ${{faults}}
"""

KILLED = """*** Settings ***
Resource    {repo}/resources/xnai.resource
Suite Setup    Prepare Target

*** Test Cases ***
Dies Mid-Fault
    Blackhole Service    rag_api
    Pause Service    redis
    Wait Until Keyword Succeeds    5 minutes    1s    File Should Exist    {repo}/never-there
"""


def _robot(env, tmp_path, name, text, **kwargs):
    suite = tmp_path / f"{name}.robot"
    suite.write_text(text.format(repo=REPO))
    cmd = [sys.executable, "-m", "robot", "--outputdir", str(tmp_path / name), "--log", "NONE",
           "--report", "NONE", str(suite)]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def _poll(condition, message: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(message)
        time.sleep(0.05)


def _toxics(base: int, proxy: str) -> list:
    return requests.get(f"http://127.0.0.1:{base + 74}/proxies/{proxy}/toxics", timeout=5).json()


def _cli(env, *args):
    return subprocess.run([sys.executable, "-m", "testbed", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240, check=False)


def test_a_fault_left_by_a_test_is_undone_when_the_test_ends(testbed_env, tmp_path):
    assert _cli(testbed_env, "up").returncode == 0
    proc = _robot(testbed_env, tmp_path, "forgetful", FORGETFUL)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    base = int(testbed_env["XNAI_TESTBED_BASE_PORT"])
    assert _toxics(base, "rag_api") == []
    ledger = Path(testbed_env["XNAI_TESTBED_HOME"]) / f"run-{base}" / "fault-ledger.jsonl"
    from xnai_contract.ledger import Ledger

    assert Ledger(ledger).pending() == []


def test_a_run_killed_mid_fault_is_healed_by_the_next_run(testbed_env, tmp_path):
    assert _cli(testbed_env, "up").returncode == 0
    base = int(testbed_env["XNAI_TESTBED_BASE_PORT"])
    ledger = Path(testbed_env["XNAI_TESTBED_HOME"]) / f"run-{base}" / "fault-ledger.jsonl"
    proc = _robot(testbed_env, tmp_path, "killed", KILLED, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if ledger.exists() and sum(1 for line in ledger.read_text().splitlines() if '"apply"' in line) >= 2:
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the run never recorded its two faults")
    redis_pid = int(_cli(testbed_env, "service", "pid", "redis").stdout)
    _poll(lambda: psutil.Process(redis_pid).status() == psutil.STATUS_STOPPED, "redis never paused")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert len(_toxics(base, "rag_api")) == 1, "the blackhole should outlive the killed run"
    status = json.loads(_cli(testbed_env, "status", "--json").stdout)
    assert status["services"], status

    # The next run heals before testing: its first test sees a healthy stack.
    nxt = _robot(
        testbed_env, tmp_path, "next", FORGETFUL.replace("Forgets Its Fault\n    Add Latency    rag_api    300ms\n", "")
    )
    out, _ = nxt.communicate(timeout=300)
    assert nxt.returncode == 0, out
    assert _toxics(base, "rag_api") == []
    assert psutil.Process(redis_pid).status() != psutil.STATUS_STOPPED
    health = requests.get(f"http://127.0.0.1:{base + 12}/xnai/api/v1/health", timeout=5).json()
    assert health["components"]["health_redis"] is True, "redis still paused after the heal"
