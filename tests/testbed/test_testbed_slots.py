"""Each robot process gets its own testbed slot, whatever pabot's pool id says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HOLD = """
import importlib.util, sys, time
spec = importlib.util.spec_from_file_location("tb_vars", sys.argv[1])
mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
print(mod._slot(), mod._slot(), flush=True)   # asked twice: the same slot
time.sleep(float(sys.argv[2]))
"""


def _holder(home: Path, hold_s: float) -> subprocess.Popen:
    env = {**os.environ, "XNAI_TESTBED_HOME": str(home)}
    env.pop("XNAI_TESTBED_SLOT", None)
    return subprocess.Popen([sys.executable, "-c", HOLD, str(REPO / "variables" / "testbed.py"), str(hold_s)],
                            env=env, stdout=subprocess.PIPE, text=True)


def test_concurrent_processes_get_different_slots_and_free_them_on_exit(tmp_path):
    first = _holder(tmp_path, 3)
    assert first.stdout.readline().split() == ["0", "0"]
    second = _holder(tmp_path, 0)
    assert second.stdout.readline().split() == ["1", "1"]  # slot 0 is held by the first process
    second.wait(10)
    first.wait(10)
    third = _holder(tmp_path, 0)
    assert third.stdout.readline().split() == ["0", "0"]  # released when its holder exited
    third.wait(10)
