"""Console progress help for ./qa run: how long each suite took last time, so pabot's
"still running <suite or group> after N s" lines tell how long the long ones have left.

    python -m xnai_qa.plan results/output.xml [processes] [ordering file]
"""

from __future__ import annotations

import sys
from pathlib import Path


def last_durations(output_xml: Path) -> dict[str, float]:
    from robot.api import ExecutionResult  # noqa: PLC0415

    result = ExecutionResult(str(output_xml))
    return {suite.name: suite.elapsed_time.total_seconds() for suite in result.suite.suites}


def stages(order_text: str) -> list[list[list[str]]]:
    """The stages of a pabot ordering file (separated by ``#WAIT``), each a list of units: one suite, or
    the suites of a ``{ }`` group, which one process runs one after another."""
    out: list[list[list[str]]] = [[]]
    group: list[str] | None = None
    for line in order_text.splitlines():
        text = line.strip()
        if text == "#WAIT":
            out.append([])
        elif text == "{":
            group = []
        elif text == "}":
            if group:
                out[-1].append(group)
            group = None
        elif text.startswith("--suite Suites."):
            name = text.split("Suites.", 1)[1].strip()
            if group is not None:
                group.append(name)
            else:
                out[-1].append([name])
    return [stage for stage in out if stage]


def _wall(seconds: list[float], processes: int) -> float:
    lanes = [0.0] * max(1, processes)
    for value in sorted(seconds, reverse=True):  # the longest first, each into the emptiest lane
        lanes[lanes.index(min(lanes))] += value
    return max(lanes)


def describe(durations: dict[str, float], processes: int = 2, order_text: str = "") -> str:
    if not durations:
        return ""
    plan = stages(order_text) or [[[name] for name in durations]]
    listed = {name for stage in plan for unit in stage for name in unit}
    # pabot appends suites the file does not list after the listed ones, so in the last stage.
    plan[-1] += [[name] for name in durations if name not in listed]
    wall = sum(_wall([sum(durations.get(n, 0.0) for n in unit) for unit in stage], processes) for stage in plan)
    lines = [f"  {name:<32} ~{seconds:.0f} s" for name, seconds in sorted(durations.items(), key=lambda kv: -kv[1])]
    return ("last run's suite times (pabot prints 'still running <suite or group> after N s'):\n" + "\n".join(lines)
            + f"\n  expected wall time with {processes} processes: ~{wall:.0f} s"
            " (plus each process's testbed start and stop)")


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
