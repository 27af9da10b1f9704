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


def median_interval(samples: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free confidence interval for the median of ``samples`` (the sign-test interval:
    two order statistics, chosen from the binomial distribution).  Unlike a mean +/- t * stdev interval
    it is not widened by a few outliers, such as a round that met a burst of load on a noisy machine.
    Needs at least 6 samples for 95 %; with fewer it spans all of them."""
    values = sorted(samples)
    n = len(values)
    if n == 0:
        raise ValueError("no samples")
    tail = (1 - confidence) / 2
    # Leave out the ``outside`` lowest and highest values, the most for which the chance that the
    # median lies beyond them, P(Binomial(n, 1/2) <= outside), stays within the tail.
    outside, cumulative = -1, 0.0
    while outside + 1 < n:
        cumulative += math.comb(n, outside + 1) / 2 ** n
        if cumulative > tail:
            break
        outside += 1
    outside = min(max(outside, 0), (n - 1) // 2)
    return values[outside], values[n - 1 - outside]
