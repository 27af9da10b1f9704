"""The fault ledger: every fault is written down before it takes effect.

A JSON-lines file.  ``apply`` records carry a self-contained ``undo`` spec
(everything needed to undo the fault from any process, later);  ``undo``
records close them.  A run killed with SIGKILL leaves its ``apply`` records
open, and the next run heals them before testing.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path


class Ledger:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    @contextlib.contextmanager
    def _locked(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield handle
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @staticmethod
    def _append(handle, record: dict) -> None:
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())

    def record_apply(self, service: str, kind: str, undo: dict, detail: dict | None = None,
                     expires_at: float | None = None) -> str:
        """Write the fault down (durably) and return its id.  Call before applying it."""
        fault_id = f"fault-{uuid.uuid4().hex[:12]}"
        record = {"op": "apply", "id": fault_id, "ts": time.time(), "pid": os.getpid(), "service": service,
                  "kind": kind, "undo": undo, "detail": detail or {}, "expires_at": expires_at}
        with self._locked() as handle:
            self._append(handle, record)
        return fault_id

    def record_undo(self, fault_id: str, note: str = "") -> None:
        with self._locked() as handle:
            self._append(handle, {"op": "undo", "id": fault_id, "ts": time.time(), "note": note})

    def pending(self) -> list[dict]:
        """``apply`` records without an ``undo``, oldest first."""
        if not self.path.exists():
            return []
        with self._locked() as handle:
            handle.seek(0)
            lines = handle.read().splitlines()
        applied: dict[str, dict] = {}
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line torn by a kill mid-write: the apply it belonged to was never acted on
            if record.get("op") == "apply":
                applied[record["id"]] = record
            elif record.get("op") == "undo":
                applied.pop(record.get("id"), None)
        return list(applied.values())

    def heal(self, undo: Callable[[dict], str], only_pid_not_alive: bool = False) -> list[tuple[dict, str]]:
        """Undo every pending fault (newest first) with ``undo(spec)``; returns (record, outcome) pairs.

        With ``only_pid_not_alive``, faults of processes still running are left to them.
        """
        healed = []
        for record in reversed(self.pending()):
            if only_pid_not_alive and _alive(record.get("pid")) and record.get("pid") != os.getpid():
                continue
            outcome = undo(record["undo"])
            self.record_undo(record["id"], note=f"healed: {outcome}")
            healed.append((record, outcome))
        return healed

    def compact(self) -> None:
        """Rewrite the file with only the pending records (keeps it small across runs)."""
        pending = self.pending()
        with self._locked() as handle:
            handle.seek(0)
            handle.truncate()
            for record in pending:
                self._append(handle, record)


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
