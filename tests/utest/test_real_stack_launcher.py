"""The real-stack launcher's pure parts (tools/real_stack.py) and what the host profile reads for a stack
run as plain processes.  The launcher itself runs the stack's code, which CI cannot fetch: README,
'Against the stack's own code'."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import pytest
from xnai_qa import resources, targetconfig

from ..conftest import load_tool

REPO = Path(__file__).resolve().parents[2]


def _launcher():
    return load_tool("real_stack")


def test_requirements_keep_one_pin_per_package_the_later_one_and_leave_out_the_model():
    text = "\n".join(["bcrypt==5.0.0", "    # via -r x", "llama-cpp-python==0.3.16", "PyJWT==2.10.1",
                      "fastapi==0.128.0", "bcrypt==4.1.2", "pyjwt==2.11.0", "langchain-qdrant==0.1.0"])
    assert _launcher()._requirements(text) == ["bcrypt==4.1.2", "fastapi==0.128.0", "pyjwt==2.11.0"]


def test_the_stacks_caddyfile_is_mapped_to_loopback_ports(tmp_path):
    launcher = _launcher()
    (tmp_path / "infra/docker").mkdir(parents=True)
    (tmp_path / "infra/docker/Caddyfile").write_text(
        "{\n  admin 127.0.0.1:2019\n}\n\n:8000 {\n  handle /xnai/api/v1/* {\n    reverse_proxy xnai_rag_api:8012\n  }\n"
        "  handle {\n    reverse_proxy xnai_chainlit_ui:8001\n  }\n}\n")
    text = launcher._caddyfile(tmp_path, launcher.PORTS)
    ports = launcher.PORTS
    assert f"admin 127.0.0.1:{ports['caddy_admin']}" in text and "default_bind 127.0.0.1" in text
    assert f":{ports['gateway']} {{" in text and ":8000" not in text
    assert f"reverse_proxy 127.0.0.1:{ports['rag_api']}" in text
    assert f"reverse_proxy 127.0.0.1:{ports['not_run']}" in text and "xnai_" not in text


def test_launcher_ports_stay_below_the_ephemeral_range_and_apart():
    ports = _launcher().PORTS
    assert len(set(ports.values())) == len(ports)
    assert all(32000 <= p < 32768 for p in ports.values())  # tests' blocks end at 32000, clients start at 32768


def test_a_process_is_found_by_its_command_line_and_an_ambiguous_match_is_refused():
    marker = f"xnai-qa-match-{time.monotonic_ns()}"
    one = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
    try:
        assert resources.find_by_match(rf"{marker}\b") == one.pid
        two = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", marker])
        try:
            with pytest.raises(LookupError, match="2 separate processes"):
                resources.find_by_match(marker)
        finally:
            two.kill()
            two.wait()
    finally:
        one.kill()
        one.wait()
    with pytest.raises(LookupError, match="matches no process"):
        resources.find_by_match(marker + "-gone")


def test_a_bad_process_match_stops_the_run_naming_the_service():
    services = {"rag_api": {"host": "127.0.0.1", "port": 1, "process_match": "uvicorn ("}}
    assert "entry 'rag_api' has process_match" in targetconfig.RULES["SERVICES"].check(services)


def test_the_host_profile_reads_process_matches_and_refuses_unknown_services(monkeypatch):
    spec = importlib.util.spec_from_file_location("xnai_host", REPO / "variables" / "xnai_host.py")
    host = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(host)
    monkeypatch.setenv("XNAI_PROFILE", "fast")
    monkeypatch.setenv("XNAI_PROCESS_MATCH", '{"rag_api": "entrypoint:app"}')
    assert host.get_variables()["SERVICES"]["rag_api"]["process_match"] == "entrypoint:app"
    monkeypatch.setenv("XNAI_PROCESS_MATCH", '{"ragapi": "x"}')
    with pytest.raises(ValueError, match="names 'ragapi', not a service here"):
        host.get_variables()
    monkeypatch.setenv("XNAI_PROCESS_MATCH", "rag_api=x")
    with pytest.raises(ValueError, match="XNAI_PROCESS_MATCH is not JSON"):
        host.get_variables()


def test_stopping_the_launcher_stops_the_suites_run_first():
    """The suites' run is in a session of its own (so a terminal's Ctrl-C reaches the launcher, which
    stops it before the stack): SIGINT to its group lets robot end the test and run its teardowns; a run
    that ignores SIGINT is killed after the grace time.  No process is left testing the next stack."""
    launcher = _launcher()

    def start(handler: str) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", "import signal, sys, time\n" + handler +
                                 "print('ready', flush=True)\ntime.sleep(60)"],
                                start_new_session=True, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"  # its handler is in place
        return proc

    graceful = start("signal.signal(signal.SIGINT, lambda *a: sys.exit(253))\n")
    started = time.monotonic()
    assert launcher._stop_run(graceful, grace_s=10) == 253
    assert time.monotonic() - started < 5, "a run that stops on SIGINT is not held for the grace time"
    stubborn = start("signal.signal(signal.SIGINT, signal.SIG_IGN)\n")
    started = time.monotonic()
    assert launcher._stop_run(stubborn, grace_s=1) == -9
    assert 1 <= time.monotonic() - started < 5
