"""The connect tripwire that ``./qa test`` runs every Python process under."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

TRIPWIRE = Path(__file__).resolve().parents[2] / "tools" / "tripwire"

PROBE = """
import socket, sys
results = []
port = int(sys.argv[1])
# 0.0.0.0 and :: are not loopback addresses, yet a connect to them reaches this machine: a broken
# tripwire fails this test without a packet leaving the host.
for address in (("0.0.0.0", port), ("::", port), ("127.0.0.1", port)):
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(address)
        results.append("connected")
    except ConnectionRefusedError as err:
        results.append("refused: " + str(err))
    finally:
        s.close()
print("|".join(results))
"""


def _run(log):
    server = socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True)
    env = {**os.environ, "PYTHONPATH": f"{TRIPWIRE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env["XNAI_TRIPWIRE"] = str(log)
    try:
        out = subprocess.run([sys.executable, "-c", PROBE, str(server.getsockname()[1])], env=env,
                             capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    finally:
        server.close()
    return out.split("|")


def test_a_foreign_connect_is_refused_and_recorded_while_loopback_connects(tmp_path):
    log = tmp_path / "tripwire.jsonl"
    results = _run(log)
    assert results[0].startswith("refused: ") and "tripwire" in results[0]
    assert results[1].startswith("refused: ") and "tripwire" in results[1]
    assert results[2] == "connected"
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["address"][0] for e in entries] == ["0.0.0.0", "::"]
    report = subprocess.run([sys.executable, str(TRIPWIRE / "sitecustomize.py"), str(log)],
                            capture_output=True, text=True, timeout=30, check=False)
    assert report.returncode == 1
    assert "2 connection attempt(s)" in report.stdout


def test_without_its_variable_the_tripwire_changes_nothing():
    env = {**os.environ, "PYTHONPATH": f"{TRIPWIRE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("XNAI_TRIPWIRE", None)
    out = subprocess.run([sys.executable, "-c", "import socket, sitecustomize; "
                          "print(socket.socket.connect is socket._socket.socket.connect, sitecustomize.__file__)"],
                         env=env, capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert out[0] == "True"  # the C method, untouched
    assert out[1].startswith(str(TRIPWIRE))  # although this sitecustomize was the one imported
