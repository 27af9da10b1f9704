"""Latency summaries: nearest-rank percentiles over recorded samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (the smallest sample with at least ``pct`` % at or below it)."""
    if not samples:
        raise ValueError("no samples to take a percentile of")
    if not 0 < pct <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {pct}")
    ordered = sorted(samples)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def summarize(latencies_ms: Sequence[float], errors: int = 0) -> dict:
    """count, errors, min, p50, p95, p99, max and mean, in milliseconds (3 decimals)."""
    out: dict = {"count": len(latencies_ms), "errors": errors}
    if latencies_ms:
        out.update(
            {
                "min": min(latencies_ms),
                "p50": percentile(latencies_ms, 50),
                "p95": percentile(latencies_ms, 95),
                "p99": percentile(latencies_ms, 99),
                "max": max(latencies_ms),
                "mean": sum(latencies_ms) / len(latencies_ms),
            }
        )
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in out.items()}
