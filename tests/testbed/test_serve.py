"""``python -m testbed serve``: a service as a container's main process (docker/compose.testbed.yml)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import redis

from testbed.config import TestbedConfig

from ..conftest import free_block

REPO = Path(__file__).resolve().parents[2]


def test_without_the_fault_proxy_clients_reach_each_service_straight():
    cfg = TestbedConfig(base_port=20000, run_dir="/nonexistent")
    assert cfg.port("redis_proxy") == 20080 and cfg.port("rag_api_proxy") == 20013
    cfg.fault_proxy = False
    assert cfg.port("redis_proxy") == cfg.port("redis") == 20079
    assert cfg.port("rag_api_proxy") == cfg.port("rag_api") and cfg.port("faultproxy") == 20074


def test_serve_becomes_the_service_and_marks_it_ready(tmp_path):
    """The service replaces serve's process (its pid is the container's main process), the ready file
    appears once it answers, and the stop signal reaches the service itself."""
    base = free_block()
    run = tmp_path / f"run-{base}"
    run.mkdir()
    cfg = TestbedConfig(base_port=base, run_dir=str(run), redis_password="pw-serve-test", fault_proxy=False)
    (run / "config.json").write_text(cfg.to_json())
    ready = tmp_path / "ready"
    env = {**os.environ, "XNAI_TESTBED_HOME": str(tmp_path), "XNAI_TESTBED_BASE_PORT": str(base),
           "XNAI_TESTBED_READY_FILE": str(ready)}
    proc = subprocess.Popen([sys.executable, "-m", "testbed", "serve", "redis"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while not ready.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read().decode()[-2000:]
            time.sleep(0.05)
        assert ready.read_text() == "redis"
        assert "redis-server" in psutil.Process(proc.pid).name(), "serve did not hand its process to the service"
        assert redis.Redis(port=cfg.port("redis"), password="pw-serve-test", socket_timeout=2).ping()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
