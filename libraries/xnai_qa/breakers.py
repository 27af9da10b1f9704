"""Circuit-breaker state as kept in Redis, in either of the two forms the stack has used.

- the stack's code: key ``circuit_breaker:{name}`` holding JSON ``{"state": "closed"|"open"|"half_open", ...}``;
- the seed document: key ``cb:{service}:state`` holding ``OPEN`` / ``CLOSED`` / ``HALF_OPEN``.

The key pattern and the format are variables; this module turns either into one shape.
"""

from __future__ import annotations

import json

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
    for (t, state), nxt in zip(timeline, [*timeline[1:], (end, None)]):
        spent[state] = round(spent.get(state, 0.0) + max(nxt[0] - t, 0.0), 3)
    return spent


def transitions(timeline: list[tuple[float, str | None]]) -> list[dict]:
    out = []
    for (_, before), (t, after) in zip(timeline, timeline[1:]):
        if before != after:
            out.append({"at": round(t, 3), "from": before, "to": after})
    return out
