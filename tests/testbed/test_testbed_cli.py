"""The testbed CLI on real servers: idempotent up/down, clear errors, no orphans."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
SERVER_NAMES = ("redis-server", "postgres", "caddy", "uvicorn")

pytestmark = pytest.mark.testbed


def cli(env, *args, timeout=240):
    return subprocess.run([sys.executable, "-m", "testbed", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def run_dir_processes(env) -> list[psutil.Process]:
    """Live processes that belong to this testbed (their command line names its run folder or ports)."""
    home = env["XNAI_TESTBED_HOME"]
    base = env["XNAI_TESTBED_BASE_PORT"]
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if (home in cmd or f"-pg-{base}" in cmd or f"--port {int(base) + 12}" in cmd) and "pytest" not in cmd:
            found.append(proc)
    return found


def test_up_twice_then_down_twice(testbed_env):
    first = cli(testbed_env, "up")
    assert first.returncode == 0, first.stderr
    assert "testbed up" in first.stdout
    second = cli(testbed_env, "up")
    assert second.returncode == 0
    assert "already running" in second.stdout
    status = cli(testbed_env, "status", "--json")
    assert status.returncode == 0
    assert all(s["alive"] for s in json.loads(status.stdout)["services"])
    down = cli(testbed_env, "down")
    assert down.returncode == 0 and "stopped:" in down.stdout
    again = cli(testbed_env, "down")
    assert again.returncode == 0 and "nothing to stop" in again.stdout
    assert not run_dir_processes(testbed_env), "processes left after down"
    assert cli(testbed_env, "status").returncode == 3


def test_start_and_stop_stages_hold_every_service_once_monitor_last_up_first_down():
    from testbed.config import SERVICE_ORDER, START_STAGES, STOP_STAGES

    for stages in (START_STAGES, STOP_STAGES):
        flat = [name for stage in stages for name in stage]
        assert sorted(flat) == sorted(SERVICE_ORDER) and len(flat) == len(set(flat))
    # The monitor starts after everything it checks and stops before it (else it restarts what stops).
    started = [name for stage in START_STAGES[:-2] for name in stage]
    assert START_STAGES[-2:] == (("monitor",), ("gateway",)) and "monitor" not in started
    assert STOP_STAGES[:2] == (("gateway",), ("monitor",))


def test_down_is_prompt_after_the_monitor_restarted_a_service(testbed_env):
    """A service the health monitor restarted is the monitor's child in a group of its own: stopping the
    monitor must not wait out its grace for it (it did: 15 s on every KG-4 run)."""
    assert cli(testbed_env, "up").returncode == 0
    try:
        before = int(cli(testbed_env, "service", "pid", "rag_api").stdout.split()[-1])
        assert cli(testbed_env, "service", "kill", "rag_api").returncode == 0
        deadline = time.monotonic() + 60
        restarted = None
        while time.monotonic() < deadline:
            out = cli(testbed_env, "service", "pid", "rag_api").stdout.split()
            if out and out[-1].isdigit() and int(out[-1]) != before and psutil.pid_exists(int(out[-1])):
                restarted = int(out[-1])
                break
            time.sleep(0.2)
        assert restarted, "the monitor did not restart the killed API within 60 s"
        monitor = int(cli(testbed_env, "service", "pid", "monitor").stdout.split()[-1])
        assert restarted in [child.pid for child in psutil.Process(monitor).children(recursive=True)]
    finally:
        started = time.monotonic()
        down = cli(testbed_env, "down")
        took = time.monotonic() - started
    assert down.returncode == 0, down.stderr
    assert "took" not in down.stdout and took < 8, f"down took {took:.1f} s: {down.stdout}"
    assert not run_dir_processes(testbed_env), "processes left after down"


def test_down_with_no_run_folder_is_not_an_error(testbed_env):
    result = cli(testbed_env, "down")
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout


def test_port_in_use_names_the_port_and_the_setting(testbed_env):
    port = int(testbed_env["XNAI_TESTBED_BASE_PORT"]) + 12  # the RAG API's port
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        result = cli(testbed_env, "up")
    assert result.returncode == 2
    assert f"{port} (rag_api)" in result.stderr
    assert "XNAI_TESTBED_BASE_PORT" in result.stderr
    assert not run_dir_processes(testbed_env), "a failed up must not leave services behind"


def test_unknown_defect_is_refused_before_anything_starts(testbed_env):
    result = cli(testbed_env, "up", "--defect", "no-such-defect")
    assert result.returncode == 2
    assert "unknown defect switch(es) no-such-defect" in result.stderr
    assert not run_dir_processes(testbed_env)


def test_a_killed_supervisor_leaves_nothing_that_down_cannot_stop(testbed_env):
    """SIGKILL the CLI in the middle of 'up': the state file still lets 'down' stop every process."""
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "up"], cwd=REPO, env=testbed_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = Path(testbed_env["XNAI_TESTBED_HOME"]) / f"run-{testbed_env['XNAI_TESTBED_BASE_PORT']}" / "state.json"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if state.exists() and len(json.loads(state.read_text() or "{}").get("services", {})) >= 2:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the supervisor never recorded two services")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert run_dir_processes(testbed_env), "services should outlive the killed supervisor"
    result = cli(testbed_env, "down")
    assert result.returncode == 0
    assert not run_dir_processes(testbed_env), "orphans left after down"


def test_defects_lists_each_switch_with_what_it_breaks(testbed_env):
    result = cli(testbed_env, "defects")
    assert result.returncode == 0
    assert "gateway-drops-api-route\n    breaks:    " in result.stdout
    assert "./qa defects" in result.stdout  # where the tests that catch each are listed


def test_the_defect_listing_names_the_tests_that_catch_each_switch():
    result = subprocess.run([sys.executable, str(REPO / "tools" / "defects.py")], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert "gateway-drops-api-route\n    breaks:    " in result.stdout
    assert "caught by: Kg1 Service Integration." in result.stdout
    assert "(no test claims it)" not in result.stdout


def test_a_lost_or_damaged_state_file_never_reads_nothing_runs(testbed_env):
    """Corrupt state.json while the testbed runs: status still finds every service (by the processes'
    environment marker), clean refuses instead of deleting a live database's files, down stops all."""
    assert cli(testbed_env, "up").returncode == 0
    run = Path(testbed_env["XNAI_TESTBED_HOME"]) / f"run-{testbed_env['XNAI_TESTBED_BASE_PORT']}"
    try:
        (run / "state.json").write_text("{not json")
        status = cli(testbed_env, "status", "--json")
        services = json.loads(status.stdout)["services"]
        assert all(s["alive"] and not s["recorded"] for s in services), services
        clean = cli(testbed_env, "clean")
        assert clean.returncode == 2 and "still running" in clean.stderr
        from testbed.config import TestbedConfig
        from testbed.services import postgres_data_dir

        pgdata = postgres_data_dir(TestbedConfig.from_file(run / "config.json"))
        assert pgdata.exists() and (run / "logs").exists(), "clean removed data under a live testbed"
        down = cli(testbed_env, "down")
        assert down.returncode == 0 and "not in state.json" in down.stdout, down.stdout
    finally:
        cli(testbed_env, "down")
    assert not run_dir_processes(testbed_env), "processes left after down"
    assert cli(testbed_env, "clean").returncode == 0


def test_status_shows_a_paused_service_and_up_refuses_other_settings(testbed_env):
    assert cli(testbed_env, "up").returncode == 0
    try:
        assert cli(testbed_env, "service", "pause", "mkdocs").returncode == 0
        status = cli(testbed_env, "status")
        assert any(line.startswith("mkdocs") and " paused " in line for line in status.stdout.splitlines()), (
            status.stdout
        )
        assert "no fault in place" in status.stdout
        assert cli(testbed_env, "service", "resume", "mkdocs").returncode == 0
        # Faults a killed run left: an open ledger entry, a toxic on the fault proxy.
        import requests

        from xnai_contract.ledger import Ledger

        described = json.loads(cli(testbed_env, "describe").stdout)
        Ledger(Path(described["run_dir"]) / "fault-ledger.jsonl").record_apply(
            "rag_api", "slow model", {"backend": "http", "url": "http://127.0.0.1:1/", "json": {}})
        proxy = f"http://127.0.0.1:{described['ports']['faultproxy']}/proxies/rag_api/toxics"
        assert requests.post(proxy, json={"type": "latency", "attributes": {"latency": 50}}, timeout=5).ok
        listed = cli(testbed_env, "status").stdout
        assert "fault in place: ledger" in listed and "slow model on rag_api" in listed, listed
        assert "fault in place: proxy rag_api: toxic latency_downstream (latency" in listed, listed
        assert len(json.loads(cli(testbed_env, "status", "--json").stdout)["faults"]) == 2
        other = cli({**testbed_env, "XNAI_TESTBED_DEFECTS": "slow-health"}, "up")
        assert other.returncode == 2 and "slow-health" in other.stderr and "down" in other.stderr, other.stderr
    finally:
        cli(testbed_env, "down")


def test_a_service_action_without_a_testbed_says_so(testbed_env):
    result = cli(testbed_env, "service", "stop", "redis")
    assert result.returncode == 3 and "no testbed runs" in result.stderr


def test_a_hand_started_testbed_with_a_service_down_is_repaired_not_restarted(testbed_env):
    """The README's promise: a testbed you started is used and left running.  One service down is
    started again alone; the others keep their processes, and the owner stays 'manual'."""
    assert cli(testbed_env, "up").returncode == 0
    try:
        before = {s["name"]: s["pid"] for s in json.loads(cli(testbed_env, "status", "--json").stdout)["services"]}
        assert cli(testbed_env, "service", "stop", "mkdocs").returncode == 0
        repaired = cli(testbed_env, "up", "--owner", "robot")
        assert repaired.returncode == 0 and "repaired: started mkdocs" in repaired.stdout, repaired.stdout
        after = {s["name"]: s["pid"] for s in json.loads(cli(testbed_env, "status", "--json").stdout)["services"]}
        assert after["mkdocs"] != before["mkdocs"]
        assert {k: v for k, v in after.items() if k != "mkdocs"} == {k: v for k, v in before.items() if k != "mkdocs"}
        assert cli(testbed_env, "owner").stdout.strip() == "manual"
    finally:
        cli(testbed_env, "down")


def test_a_robot_run_killed_mid_test_leaves_no_testbed(testbed_env, tmp_path):
    """SIGKILL skips every teardown: the testbed's watchdog (started with it by Prepare Target) sees the
    robot process end and stops it. Checked by process scan (the processes' marker), not state.json."""
    from testbed import supervisor

    ready, never = tmp_path / "ready", tmp_path / "never"
    suite = tmp_path / "killed.robot"
    suite.write_text(f"""*** Settings ***
Resource          {REPO}/resources/xnai.resource
Library           OperatingSystem
Suite Setup       Prepare Target

*** Test Cases ***
Killed Mid-Test
    Create File    {ready}
    Wait Until Created    {never}    timeout=240s
""")
    robot = subprocess.Popen([sys.executable, "-m", "robot", "--outputdir", str(tmp_path / "out"), str(suite)],
                             cwd=REPO, env=testbed_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 180
        while not ready.exists() and robot.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ready.exists(), "the suite never reached its test"
        run = str((Path(testbed_env["XNAI_TESTBED_HOME"]) / f"run-{testbed_env['XNAI_TESTBED_BASE_PORT']}").resolve())
        alive = supervisor.marked_processes().get(run, [])
        assert len(alive) > 5, f"the testbed is not running under {run}"
        assert any(supervisor._marked_service(p) == "watchdog" for p in alive)
        robot.kill()
        robot.wait(10)
        deadline = time.monotonic() + 60
        while supervisor.marked_processes().get(run) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = supervisor.marked_processes().get(run, [])
        assert not left, f"{len(left)} testbed processes left: {[supervisor._marked_service(p) for p in left]}"
        assert "ended without stopping its testbed" in (Path(run) / "logs" / "watchdog.log").read_text()
    finally:
        if robot.poll() is None:
            robot.kill()


def test_leftovers_stops_a_testbed_a_run_left_and_spares_one_started_by_hand(testbed_env, tmp_path):
    snapshot = tmp_path / "before.json"
    assert cli(testbed_env, "leftovers", "--snapshot", str(snapshot)).returncode == 0
    assert cli(testbed_env, "up").returncode == 0  # by hand (owner manual), while the "run" goes on
    spared = cli(testbed_env, "leftovers", "--check", str(snapshot))
    assert spared.returncode == 0, spared.stdout
    assert cli(testbed_env, "status").returncode == 0, "the hand-started testbed was stopped"
    assert cli(testbed_env, "down").returncode == 0
    assert cli(testbed_env, "up", "--owner", "robot").returncode == 0  # as a robot run starts it
    left = cli(testbed_env, "leftovers", "--check", str(snapshot))
    assert left.returncode == 1 and "testbed left running" in left.stdout, left.stdout
    assert not run_dir_processes(testbed_env), "the left testbed was not stopped"
