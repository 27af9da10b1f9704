"""KG-5 load profiles: validation, verdicts against the seed's targets, baseline stability, run summary.

A profile is ``{"users": int, "rate": "N/s", "duration": "<robot time>"}``: an
open-model load at ``rate`` with at most ``users`` requests in flight (the
seed's concurrent users), for ``duration``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from robot.utils import timestr_to_secs

from . import baselines
from .load import parse_rate

PROFILE_KEYS = ("users", "rate", "duration")


class ProfileError(ValueError):
    """A load profile is unknown or malformed."""


def profile(profiles: dict, name: str, **overrides) -> dict:
    """The profile ``name`` from ``profiles`` with ``overrides`` applied, validated and normalised."""
    if name not in profiles:
        raise ProfileError(f"No load profile '{name}'. Profiles in ${{LOAD_PROFILES}}: "
                           f"{', '.join(profiles) or 'none'}.")
    spec = {**profiles[name], **{k: v for k, v in overrides.items() if v not in (None, "")}}
    missing = [k for k in PROFILE_KEYS if k not in spec]
    if missing:
        raise ProfileError(f"Load profile '{name}' lacks {', '.join(missing)}: give users, rate and duration, "
                           "e.g. {'users': 10, 'rate': '10/s', 'duration': '15 min'}.")
    try:
        users = int(spec["users"])
        rate = parse_rate(spec["rate"])
        duration = timestr_to_secs(str(spec["duration"]))
    except (TypeError, ValueError) as err:
        raise ProfileError(f"Load profile '{name}' is malformed ({err}): users is a whole number, rate like "
                           "'10/s', duration a Robot time like '15 min' or '4s'.") from None
    if users < 1 or rate <= 0 or duration <= 0:
        raise ProfileError(f"Load profile '{name}': users, rate and duration must be positive "
                           f"(got {users}, {rate:g}/s, {duration:g} s).")
    return {"name": name, "users": users, "rate": rate, "duration_s": duration}


def verdicts(result: dict, *, p99_ms: float, max_error_rate: float, max_memory_percent: float) -> list[str]:
    """The targets a profile result misses, one line each (empty: all met)."""
    missed = []
    p99 = result["latency_ms"].get("p99")
    if p99 is None:
        missed.append("no request completed, so there is no latency")
    elif p99 > p99_ms:
        missed.append(f"query p99 {p99:.1f} ms > {p99_ms:g} ms")
    if result["error_rate"] > max_error_rate:
        missed.append(f"error rate {result['error_rate'] * 100:.3f} % > {max_error_rate * 100:g} % "
                      f"({result['errors']})")
    memory = result.get("system_memory_percent")
    if memory is not None and memory > max_memory_percent:
        missed.append(f"memory {memory:.1f} % > {max_memory_percent:g} %")
    return missed


def unstable_runs(runs: list[dict], combined: dict, tolerances: dict | None = None) -> list[str]:
    """Runs of a baseline that disagree with their mean beyond the comparison tolerances: a baseline
    that its own repeats would fail is not a baseline."""
    tolerances = baselines.TOLERANCES if tolerances is None else tolerances
    problems = []
    for index, run in enumerate(runs, start=1):
        for row in baselines.compare(run, combined, tolerances, max_error_rate=1.0):
            if not row["ok"]:
                problems.append(f"run {index}: {row['figure']} {row['current']} vs mean {row['baseline']} "
                                f"({row['change'] * 100:+.1f} %, allowed ±{row['allowed'] * 100:g} %)")
    return problems


class Summary:
    """The run's performance summary, rewritten as a JSON file after every addition."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict = {"started_at": time.time(), "profiles": {}, "baselines": {}, "comparisons": {},
                           "capacity": None}

    def add(self, section: str, key: str | None, value) -> None:
        if key is None:
            self.data[section] = value
        else:
            self.data[section][key] = value
        self.data["updated_at"] = time.time()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=2, default=str))
