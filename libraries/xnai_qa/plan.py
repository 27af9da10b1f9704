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


# Suite times of a full run measured on a 2-core machine (fast profile), for the first run's estimate.
TYPICAL_S = {"Kg1 Service Integration": 3, "Kg2 Circuit Breakers": 27, "Kg3 Stream Cleanup": 19,
             "Kg4 Health Monitoring": 52, "Kg5 Performance Baselines": 42, "Error Handling": 13,
             "Vikunja Integration": 1, "Rag Integration": 3, "Voice Integration": 2, "Kg5 Load Targets": 45,
             "Kg2 Breaker Timing": 19}
START_S = 8  # a testbed start and stop per process


def expected_wall(durations: dict[str, float], processes: int = 2, order_text: str = "") -> float:
    """The wall time the ordering file's stages take with ``processes``, from per-suite ``durations``."""
    plan = stages(order_text) or [[[name] for name in durations]]
    listed = {name for stage in plan for unit in stage for name in unit}
    # pabot appends suites the file does not list after the listed ones, so in the last stage.
    plan[-1] += [[name] for name in durations if name not in listed]
    return sum(_wall([sum(durations.get(n, 0.0) for n in unit) for unit in stage], processes) for stage in plan)


def describe(durations: dict[str, float], processes: int = 2, order_text: str = "") -> str:
    if not durations:
        return ""
    wall = expected_wall(durations, processes, order_text)
    lines = [f"  {name:<32} ~{seconds:.0f} s" for name, seconds in sorted(durations.items(), key=lambda kv: -kv[1])]
    return ("last run's suite times (pabot prints 'still running <suite or group> after N s'):\n" + "\n".join(lines)
            + f"\n  expected wall time with {processes} processes: ~{wall:.0f} s"
            " (plus each process's testbed start and stop)")


def suite_names(folder: Path) -> list[str]:
    """Robot's names of the suites in ``folder`` (file name without the ``NN__`` prefix, title case)."""
    return [p.stem.split("__", 1)[-1].replace("_", " ").title() for p in sorted(folder.glob("[0-9]*__*.robot"))]


def unlisted(folder: Path, order_text: str) -> list[str]:
    """Suites in ``folder`` that the ordering file does not list (pabot would run them last, beside
    whatever runs there: a quiet-machine stage no longer quiet)."""
    listed = {name for stage in stages(order_text) for unit in stage for name in unit}
    return [name for name in suite_names(folder) if name not in listed]


def check(order: Path) -> int:
    """Exit status 2, naming the file to edit, when a suite is missing from the ordering file."""
    missing = unlisted(order.parent, order.read_text())
    if missing:
        print(f"qa: {', '.join(missing)} not listed in {order}: add each as '--suite Suites.<name>' to a "  # noqa: T201
              "{ } group before the #WAIT line (or after it, in the quiet group, if it declares "
              "'Metadata    Machine    quiet'), in both suites/pabot-order.txt and "
              "suites/pabot-order-real-stack.txt. See README, 'Your first suite'.", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    if len(argv) > 2 and argv[1] == "--check":
        return check(Path(argv[2]))
    if len(argv) > 4 and argv[1] == "--expected":  # seconds, for the progress line: last run's times, else typical
        try:
            durations = last_durations(Path(argv[2])) if Path(argv[2]).exists() else {}
        except Exception:  # noqa: BLE001 - a broken old output only means the typical times
            durations = {}
        order_text = Path(argv[4]).read_text()
        wall = expected_wall(durations or TYPICAL_S, int(argv[3]), order_text)
        print(round(wall + START_S * len(stages(order_text))))  # noqa: T201
        return 0
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
