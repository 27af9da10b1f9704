"""Baselines: save a run's figures under a name, compare a later run with the seed's tolerances.

Seed (KG-5, procedure 2): latency p50 within 10 %, p99 within 20 %, memory within 5 %,
error rate below 0.1 % (absolute).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

TOLERANCES = {"p50_ms": 0.10, "p99_ms": 0.20, "memory_mb": 0.05}
MAX_ERROR_RATE = 0.001


def figures_from_load(result: dict, memory_mb: float | None = None) -> dict:
    figures = {"p50_ms": result["latency_ms"].get("p50"), "p99_ms": result["latency_ms"].get("p99"),
               "error_rate": result["error_rate"], "throughput": result["throughput"]}
    if memory_mb is not None:
        figures["memory_mb"] = float(memory_mb)
    return figures


def combine(runs: list[dict]) -> dict:
    """The baseline of several runs: the mean of each figure (seed: repeat 3 times, average)."""
    keys = set().union(*runs)
    return {k: round(sum(r[k] for r in runs if r.get(k) is not None) /
                     max(1, sum(1 for r in runs if r.get(k) is not None)), 6) for k in keys}


def save(name: str, figures: dict, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"name": name, "saved_at": time.time(), "figures": figures}, indent=2))
    return path


def load(name: str, folder: str | Path) -> dict:
    path = Path(folder) / f"{name}.json"
    if not path.exists():
        raise FileNotFoundError(f"No baseline '{name}' in {folder}: save one first with Save Baseline.")
    return json.loads(path.read_text())["figures"]


def compare(current: dict, baseline: dict, tolerances: dict | None = None,
            max_error_rate: float = MAX_ERROR_RATE) -> list[dict]:
    """One row per compared figure: baseline, current, change (fraction), allowed, ok."""
    tolerances = TOLERANCES if tolerances is None else tolerances
    rows = []
    for key, allowed in tolerances.items():
        if key not in baseline or key not in current or baseline[key] in (None, 0):
            continue
        change = (current[key] - baseline[key]) / baseline[key]
        rows.append({"figure": key, "baseline": baseline[key], "current": current[key],
                     "change": round(change, 4), "allowed": allowed, "ok": abs(change) <= allowed})
    if "error_rate" in current:
        rows.append({"figure": "error_rate", "baseline": baseline.get("error_rate"), "current": current["error_rate"],
                     "change": None, "allowed": max_error_rate, "ok": current["error_rate"] < max_error_rate})
    return rows
