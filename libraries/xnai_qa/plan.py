"""Console progress help for ./qa run: how long each suite took last time, so pabot's
"still running <suite> after N s" lines tell how long the long ones have left.

    python -m xnai_qa.plan results/output.xml
"""

from __future__ import annotations

import sys
from pathlib import Path


def last_durations(output_xml: Path) -> dict[str, float]:
    from robot.api import ExecutionResult  # noqa: PLC0415

    result = ExecutionResult(str(output_xml))
    return {suite.name: suite.elapsed_time.total_seconds() for suite in result.suite.suites}


def describe(durations: dict[str, float], processes: int = 2) -> str:
    if not durations:
        return ""
    longest_first = sorted(durations.items(), key=lambda kv: -kv[1])
    lanes = [0.0] * max(1, processes)
    for _name, seconds in longest_first:  # the ordering file runs the longest first: greedy lanes
        lanes[lanes.index(min(lanes))] += seconds
    lines = [f"  {name:<32} ~{seconds:.0f} s" for name, seconds in longest_first]
    return ("last run's suite times (pabot prints 'still running <suite> after N s'):\n" + "\n".join(lines)
            + f"\n  expected wall time with {processes} processes: ~{max(lanes):.0f} s"
            " (plus each suite's testbed start and stop)")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path("results/output.xml")
    processes = int(argv[2]) if len(argv) > 2 else 2
    try:
        text = describe(last_durations(path), processes) if path.exists() else ""
    except Exception:  # noqa: BLE001 - a broken old output only means no estimate
        text = ""
    if text:
        print(text)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
