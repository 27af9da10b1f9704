"""Collecting KG-5's files from pabot's per-process output folders."""

from __future__ import annotations

import json
import os

from xnai_qa import artifacts


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_summaries_of_two_processes_merge_and_baselines_are_copied(tmp_path):
    one = tmp_path / "pabot_results" / "0"
    two = tmp_path / "pabot_results" / "7"
    _write(one / "performance" / "summary.json", {
        "started_at": 10, "updated_at": 20, "profiles": {"baseline": {"p50": 1}, "normal": {"p50": 2}},
        "baselines": {"baseline": {"p50_ms": 1}}, "comparisons": {"baseline": {"rows": []}}, "capacity": None})
    _write(two / "performance" / "summary.json", {
        "started_at": 30, "updated_at": 40, "profiles": {"peak": {"p50": 3}}, "baselines": {},
        "comparisons": {}, "capacity": {"last_good": 160}})
    _write(one / "baselines" / "baseline.json", {"p50_ms": 1})
    written = artifacts.collect(tmp_path)
    merged = json.loads((tmp_path / "performance" / "summary.json").read_text())
    assert set(merged["profiles"]) == {"baseline", "normal", "peak"}
    assert merged["capacity"] == {"last_good": 160} and merged["baselines"] == {"baseline": {"p50_ms": 1}}
    assert (merged["started_at"], merged["updated_at"]) == (10, 40)
    assert json.loads((tmp_path / "baselines" / "baseline.json").read_text()) == {"p50_ms": 1}
    assert len(written) == 2


def test_the_later_of_two_saved_baselines_wins(tmp_path):
    old = tmp_path / "pabot_results" / "0" / "baselines" / "baseline.json"
    new = tmp_path / "pabot_results" / "1" / "baselines" / "baseline.json"
    _write(new, {"p50_ms": 2})
    _write(old, {"p50_ms": 1})
    os.utime(old, (1, 1))
    artifacts.collect(tmp_path)
    assert json.loads((tmp_path / "baselines" / "baseline.json").read_text()) == {"p50_ms": 2}


def test_nothing_measured_writes_nothing(tmp_path):
    (tmp_path / "pabot_results" / "0").mkdir(parents=True)
    assert artifacts.collect(tmp_path) == []
    assert not (tmp_path / "performance").exists()
