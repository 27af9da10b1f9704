"""The fault ledger: written before a fault, closed after, healed after a kill."""

import json
import os
import subprocess
import sys

from xnai_contract.ledger import Ledger


def test_apply_then_undo_leaves_nothing_pending(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    fid = ledger.record_apply("rag_api", "pause", {"backend": "x"})
    assert [r["id"] for r in ledger.pending()] == [fid]
    ledger.record_undo(fid)
    assert ledger.pending() == []


def test_pending_survives_a_new_ledger_object(tmp_path):
    Ledger(tmp_path / "l.jsonl").record_apply("redis", "kill", {"backend": "x"}, detail={"a": 1})
    pending = Ledger(tmp_path / "l.jsonl").pending()
    assert len(pending) == 1
    assert pending[0]["service"] == "redis" and pending[0]["detail"] == {"a": 1}


def test_heal_undoes_newest_first_and_records_it(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    first = ledger.record_apply("a", "k", {"n": 1})
    second = ledger.record_apply("b", "k", {"n": 2})
    calls = []
    healed = ledger.heal(lambda spec: calls.append(spec["n"]) or "done")
    assert calls == [2, 1]
    assert [r["id"] for r, _ in healed] == [second, first]
    assert ledger.pending() == []


def test_heal_leaves_faults_of_live_processes_alone(tmp_path):
    path = tmp_path / "l.jsonl"
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        with open(path, "w") as handle:
            handle.write(json.dumps({"op": "apply", "id": "f-live", "pid": child.pid, "service": "s", "kind": "k",
                                     "undo": {}, "detail": {}}) + "\n")
            handle.write(json.dumps({"op": "apply", "id": "f-dead", "pid": 2**22 + 12345, "service": "s",
                                     "kind": "k", "undo": {}, "detail": {}}) + "\n")
        healed = Ledger(path).heal(lambda _spec: "ok", only_pid_not_alive=True)
        assert [r["id"] for r, _ in healed] == ["f-dead"]
        assert [r["id"] for r in Ledger(path).pending()] == ["f-live"]
    finally:
        child.communicate(b"")


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    fid = ledger.record_apply("a", "k", {})
    with open(path, "a") as handle:
        handle.write('{"op": "apply", "id": "half')
    assert [r["id"] for r in ledger.pending()] == [fid]


def test_compact_keeps_only_pending(tmp_path):
    ledger = Ledger(tmp_path / "l.jsonl")
    done = ledger.record_apply("a", "k", {})
    ledger.record_undo(done)
    keep = ledger.record_apply("b", "k", {})
    ledger.compact()
    lines = (tmp_path / "l.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["id"] == keep


def test_records_are_durable_before_returning(tmp_path):
    path = tmp_path / "l.jsonl"
    Ledger(path).record_apply("a", "k", {})
    assert os.path.getsize(path) > 0
