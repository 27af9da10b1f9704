"""Circuit-breaker state as kept in Redis, in either of the two forms the stack has used.

- the stack's code: key ``circuit_breaker:{name}`` holding JSON ``{"state": "closed"|"open"|"half_open", ...}``;
- the seed document: key ``cb:{service}:state`` holding ``OPEN`` / ``CLOSED`` / ``HALF_OPEN``.

The key pattern and the format are variables; this module turns either into one shape.
"""

from __future__ import annotations

import itertools
import json
import statistics

from . import stats

STATES = ("closed", "open", "half_open")


def key_for(pattern: str, name: str) -> str:
    return pattern.replace("{name}", name).replace("{service}", name)


def parse(raw: str | bytes | None, fmt: str) -> dict:
    """``{"state": ..., ...}``; ``state`` is None when the key is absent."""
    if raw is None:
        return {"state": None}
    if isinstance(raw, bytes):
        raw = raw.decode()
    if fmt == "plain":
        state = raw.strip().lower().replace("-", "_")
        if state not in STATES:
            raise ValueError(f"breaker value {raw!r} is not one of OPEN, CLOSED, HALF_OPEN")
        return {"state": state}
    if fmt == "json":
        try:
            data = json.loads(raw)
        except ValueError:
            raise ValueError(f"breaker value is not JSON: {raw[:80]!r}") from None
        if not isinstance(data, dict) or "state" not in data:
            raise ValueError(f"breaker JSON has no 'state': {raw[:80]!r}")
        data["state"] = str(data["state"]).lower()
        if data["state"] not in STATES:
            raise ValueError(f"breaker state {data['state']!r} is not one of {', '.join(STATES)}")
        return data
    raise ValueError(f"breaker format {fmt!r}: use json or plain")


def time_in_states(timeline: list[tuple[float, str | None]], end: float) -> dict:
    """Seconds spent in each observed state, from a list of (time, state) observations."""
    spent: dict = {}
    for (t, state), nxt in zip(timeline, [*timeline[1:], (end, None)], strict=True):
        spent[state] = round(spent.get(state, 0.0) + max(nxt[0] - t, 0.0), 3)
    return spent


def transitions(timeline: list[tuple[float, str | None]]) -> list[dict]:
    out = []
    for (_, before), (t, after) in itertools.pairwise(timeline):
        if before != after:
            out.append({"at": round(t, 3), "from": before, "to": after})
    return out


def state_sequence(timeline: list[tuple[float, str | None]]) -> list[str | None]:
    """The observed states with repeats collapsed: [None, "closed", "open", "half_open", "closed"]."""
    out: list[str | None] = []
    for _, state in timeline:
        if not out or out[-1] != state:
            out.append(state)
    return out


def passes_through(sequence: list[str | None], wanted: list[str]) -> bool:
    """True when ``wanted`` occurs in ``sequence`` in order (a subsequence)."""
    it = iter(sequence)
    return all(any(state == w for state in it) for w in wanted)


def overhead_summary(name: str, pairs: list[tuple[list[float], list[float]]]) -> dict:
    """Paired blocks (with, without) in ms -> the breaker's overhead and the measurement's resolution.

    overhead = median over rounds of (p50 with - p50 without); ``interval_ms`` = the 95 % confidence
    interval of that median (distribution-free: a round that met a burst of load does not widen it, as
    it would a mean +/- t * stdev interval); resolution = its half-width.
    """
    diffs = [statistics.median(w) - statistics.median(wo) for w, wo in pairs]
    low, high = stats.median_interval(diffs)
    all_with = [v for w, _ in pairs for v in w]
    all_without = [v for _, wo in pairs for v in wo]
    return {
        "breaker": name,
        "rounds": len(pairs),
        "samples_per_side": len(all_with),
        "p50_with_ms": round(statistics.median(all_with), 3),
        "p50_without_ms": round(statistics.median(all_without), 3),
        "round_differences_ms": [round(d, 3) for d in diffs],
        "overhead_ms": round(statistics.median(diffs), 3),
        "interval_ms": [round(low, 3), round(high, 3)],
        "resolution_ms": round((high - low) / 2, 3) if len(diffs) >= 6 else float("inf"),
    }


def overhead_decided(summary: dict, limit_ms: float) -> bool:
    """True when an overhead measurement decides against ``limit_ms``: its 95 % interval lies wholly at
    or above the limit, or wholly below it while resolving half of it."""
    low, high = summary["interval_ms"]
    if low >= limit_ms:
        return True
    return summary["resolution_ms"] < limit_ms / 2 and high < limit_ms
