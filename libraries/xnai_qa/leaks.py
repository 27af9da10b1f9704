"""Leak decisions, as mature leak tests make them (psutil's own tests, CPython's -R).

Warm up first and discard it; then run several rounds.  Countable resources
(file descriptors, sockets, tasks) must come back *exactly* to the baseline
after every round.  Memory is noisy: it is a leak only if it grows in every
round, or if its slope over the rounds exceeds a tolerance.
"""

from __future__ import annotations

import itertools

EXACT = ("fds", "sockets", "tasks")


def slope(values: list[float]) -> float:
    """Least-squares slope of ``values`` against their index."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x = (n - 1) / 2
    mean_y = sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def late_closes(baseline: dict, rounds: list[dict]) -> list[str]:
    """Descriptors above the baseline after some round that were back to it by the end (not a leak)."""
    notes = []
    for key in EXACT:
        if key in baseline and rounds and rounds[-1].get(key) == baseline[key]:
            off = [f"round {i}: {r.get(key)}" for i, r in enumerate(rounds, 1) if r.get(key) != baseline[key]]
            if off:
                notes.append(f"{key} closed late (baseline {baseline[key]}; {', '.join(off)}), back by the end")
    return notes


def judge(baseline: dict, rounds: list[dict], memory_key: str = "uss_mb", min_growth_kb: float = 64.0,
          max_slope_kb: float = 512.0) -> list[str]:
    """Reasons the rounds show a leak (empty list: no leak).

    ``min_growth_kb``: memory that grew in every round is a leak only past this total growth.
    ``max_slope_kb``: a slope per round above this is a leak even with an odd flat round.
    """
    reasons = []
    for key in EXACT:
        if key not in baseline:
            continue
        # Exactly back by the end: a descriptor still open after the last round (each round already waited
        # ``settle`` for late closes) is a leak.  One that was open after an earlier round and is gone by the
        # end closed late (a client the server drops only when it collects it), which late_closes() names.
        if rounds and rounds[-1].get(key) != baseline[key]:
            series = ", ".join(str(r.get(key)) for r in rounds)
            reasons.append(f"{key}: {rounds[-1].get(key)} after the last of {len(rounds)} rounds, baseline "
                           f"{baseline[key]} (must return exactly; after each round: {series})")
    if memory_key in baseline and rounds:
        memory = [baseline[memory_key]] + [r[memory_key] for r in rounds]
        growth_kb = (memory[-1] - memory[0]) * 1024
        every_round = all(b > a for a, b in itertools.pairwise(memory))
        per_round_kb = slope(memory) * 1024
        if every_round and growth_kb > min_growth_kb:
            reasons.append(f"{memory_key} grew in every one of {len(rounds)} rounds: "
                           f"{memory[0]:.2f} -> {memory[-1]:.2f} MB (+{growth_kb:.0f} KB)")
        elif per_round_kb > max_slope_kb:
            reasons.append(f"{memory_key} slope {per_round_kb:.0f} KB per round > {max_slope_kb:g} KB")
    return reasons
