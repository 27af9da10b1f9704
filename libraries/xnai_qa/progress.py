"""Live progress of a run: a listener writes one line per finished test, a watcher prints the count.

    pabot --listener xnai_qa.progress.Progress:results/progress.jsonl ...   (every robot process appends)
    python -m xnai_qa.progress watch results/progress.jsonl TOTAL EXPECTED_S  (``./qa run`` starts it)

The watcher prints ``tests done / total, failures so far, time left`` on one updating line (on a
terminal; elsewhere a line every 15 s), and each failing test's name and message as it happens.  Time
left comes from the expected wall time (the previous run's suite times, or the plan) minus the time
so far.  It stops by itself when the file says the run ended, or after ``EXPECTED_S`` x 4 + 10 minutes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path


class Progress:
    """Listener (v3): one JSON line per finished test, appended (each write is one small atomic append)."""

    ROBOT_LISTENER_API_VERSION = 3

    def __init__(self, path: str = "results/progress.jsonl"):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def end_test(self, data, result) -> None:  # noqa: ARG002 - the listener API's signature
        line = json.dumps({"test": result.full_name.split(".", 1)[-1], "status": result.status,
                           "message": (result.message or "").splitlines()[0][:160] if result.message else ""})
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def count_tests(folder: Path) -> int:
    """Test cases in the ``*** Test Cases ***`` sections of the suites in ``folder`` (a quick count, no dry run)."""
    total = 0
    for path in folder.glob("[0-9]*__*.robot"):
        section = False
        for line in path.read_text().splitlines():
            if line.startswith("***"):
                section = bool(re.match(r"\*\*\*\s*Test Cases?\s*\*\*\*", line, re.IGNORECASE))
            elif section and line and not line[0].isspace() and not line.startswith("#"):
                total += 1
    return total


def _status(done: int, total: int, failed: list[str], elapsed: float, expected: float) -> str:
    left = f", ~{max(0.0, expected - elapsed):.0f} s left" if expected else ""
    of = f"/{total}" if total else ""
    worst = f" (last: {failed[-1]})" if failed else ""
    return f"[qa] {done}{of} tests, {len(failed)} failed{worst}, {elapsed:.0f} s{left}"


def watch(path: Path, total: int, expected: float, stream=sys.stderr) -> int:
    started = time.monotonic()
    deadline = started + expected * 4 + 600
    seen = 0
    failed: list[str] = []
    tty = stream.isatty()
    last_print = 0.0
    while time.monotonic() < deadline:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        for raw in lines[seen:]:
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if record.get("end"):
                stream.write(("\r" if tty else "") + _status(seen, total, failed, time.monotonic() - started,
                                                             expected) + "\n")
                return 0
            if record.get("status") == "FAIL":
                failed.append(record["test"])
                stream.write(("\r\033[K" if tty else "") + f"[qa] FAIL {record['test']}: {record['message']}\n")
        seen = len([r for r in lines if '"end"' not in r])
        now = time.monotonic()
        if tty or now - last_print >= 15:
            stream.write(("\r\033[K" if tty else "") + _status(seen, total, failed, now - started, expected)
                         + ("" if tty else "\n"))
            stream.flush()
            last_print = now
        time.sleep(1.0)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) >= 3 and argv[1] == "watch":
        total = int(argv[3]) if len(argv) > 3 else 0
        expected = float(argv[4]) if len(argv) > 4 else 0.0
        return watch(Path(argv[2]), total, expected)
    if len(argv) >= 3 and argv[1] == "end":
        with open(argv[2], "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"end": True, "pid": os.getpid()}) + "\n")
        return 0
    if len(argv) >= 3 and argv[1] == "count":
        print(count_tests(Path(argv[2])))  # noqa: T201
        return 0
    print("usage: python -m xnai_qa.progress watch FILE [TOTAL [EXPECTED_S]] | end FILE | count SUITES_DIR",  # noqa: T201
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
