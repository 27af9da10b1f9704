"""The live progress line: the listener's records, the watcher's count, failures named as they happen."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from xnai_qa import progress

REPO = Path(__file__).resolve().parents[2]


def test_the_watcher_names_failures_and_ends_with_the_count(tmp_path):
    path = tmp_path / "progress.jsonl"
    listener = progress.Progress(str(path))
    listener.end_test(None, SimpleNamespace(full_name="Suites.Kg1.A Passing Test", status="PASS", message=""))
    listener.end_test(None, SimpleNamespace(full_name="Suites.Kg2.A Failing Test", status="FAIL",
                                            message="p99 801 ms > 500 ms\nmore"))
    out = io.StringIO()

    def finish():
        time.sleep(1.5)
        with open(path, "a") as handle:
            handle.write(json.dumps({"end": True}) + "\n")

    threading.Thread(target=finish).start()
    assert progress.watch(path, total=3, expected=60, stream=out) == 0
    text = out.getvalue()
    assert "[qa] FAIL Kg2.A Failing Test: p99 801 ms > 500 ms" in text
    assert text.rstrip().splitlines()[-1].startswith("[qa] 2/3 tests, 1 failed (last: Kg2.A Failing Test)")


def test_the_count_of_tests_matches_the_suites():
    assert progress.count_tests(REPO / "suites") >= 106
