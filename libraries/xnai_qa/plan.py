"""Console progress help for ./qa run: how long each suite took last time, so pabot's
"still running <suite> after N s" lines tell how long the long ones have left.

    python -m xnai_qa.plan results/output.xml [processes] [ordering file]
"""

from __future__ import annotations

import sys
from pathlib import Path


def last_durations(output_xml: Path) -> dict[str, float]:
    from robot.api import ExecutionResult  # noqa: PLC0415

    result = ExecutionResult(str(output_xml))
    return {suite.name: suite.elapsed_time.total_seconds() for suite in result.suite.suites}


def stages(order_text: str) -> list[list[str]]:
    """The suite names of a pabot ordering file, in the stages its ``#WAIT`` lines separate."""
    out: list[list[str]] = [[]]
    for line in order_text.splitlines():
        if line.strip() == "#WAIT":
            out.append([])
        elif line.startswith("--suite Suites."):
            out[-1].append(line.split("Suites.", 1)[1].strip())
    return [stage for stage in out if stage]


def _wall(seconds: list[float], processes: int) -> float:
    lanes = [0.0] * max(1, processes)
    for value in sorted(seconds, reverse=True):  # the longest first, each into the emptiest lane
        lanes[lanes.index(min(lanes))] += value
    return max(lanes)


def describe(durations: dict[str, float], processes: int = 2, order_text: str = "") -> str:
    if not durations:
        return ""
    groups = stages(order_text) or [list(durations)]
    listed = {name for group in groups for name in group}
    # pabot appends suites the file does not list after the listed ones, so in the last stage.
    groups[-1] += [name for name in durations if name not in listed]
    wall = sum(_wall([durations[n] for n in group if n in durations], processes) for group in groups)
    lines = [f"  {name:<32} ~{seconds:.0f} s" for name, seconds in sorted(durations.items(), key=lambda kv: -kv[1])]
    return ("last run's suite times (pabot prints 'still running <suite> after N s'):\n" + "\n".join(lines)
            + f"\n  expected wall time with {processes} processes: ~{wall:.0f} s"
            " (plus each suite's testbed start and stop)")


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path("results/output.xml")
    processes = int(argv[2]) if len(argv) > 2 else 2
    order = Path(argv[3]) if len(argv) > 3 else None
    try:
        order_text = order.read_text() if order and order.exists() else ""
        text = describe(last_durations(path), processes, order_text) if path.exists() else ""
    except Exception:  # noqa: BLE001 - a broken old output only means no estimate
        text = ""
    if text:
        print(text)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
