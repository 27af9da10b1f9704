"""Console progress help for ./qa run: how long each suite took last time, so pabot's
"still running <suite or group> after N s" lines tell how long the long ones have left.

    python -m xnai_qa.plan results/output.xml [processes] [ordering file]
"""

from __future__ import annotations

import sys
from pathlib import Path


def last_durations(output_xml: Path, profile: str | None = None) -> dict[str, float]:
    """Each suite's time in the run that wrote ``output_xml``; none when ``profile`` is given and that run
    had another (``Prepare Target`` records it as the top suite's ``Profile`` metadata): a fast run's
    times say nothing about a production run."""
    from robot.api import ExecutionResult  # noqa: PLC0415

    result = ExecutionResult(str(output_xml))
    if profile is not None and result.suite.metadata.get("Profile", "fast") != profile:
        return {}
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


# The production profile: KG-3, error handling and KG-5 load targets measured on the real stack's code
# (7f3af19 with tools/real_stack.py, 2026-12-02: 100 s, 71 s, 3614 s); the suites that skipped there
# (no breaker in Redis, no monitor) planned from the profile's durations: KG-2 its 60 s load stages and
# recovery timeouts, KG-4 its detection and recovery bounds, KG-5 baselines three baseline runs after a
# cooldown each, a compared run, the stress run and the capacity search's first two steps.
PRODUCTION_S = {"Kg1 Service Integration": 5, "Kg2 Circuit Breakers": 600, "Kg3 Stream Cleanup": 100,
                "Kg4 Health Monitoring": 1200, "Kg5 Performance Baselines": 3300, "Error Handling": 71,
                "Vikunja Integration": 3, "Rag Integration": 5, "Voice Integration": 2, "Kg5 Load Targets": 3614,
                "Kg2 Breaker Timing": 300}
# Suite times of a full run measured on a 2-core machine, per profile, for a first run's estimate
# (fast: the testbed; production: the real stack's code at 7f3af19 with tools/real_stack.py, 2026-12-02).
TYPICAL_S = {
    "fast": {"Kg1 Service Integration": 3, "Kg2 Circuit Breakers": 27, "Kg3 Stream Cleanup": 19,
             "Kg4 Health Monitoring": 52, "Kg5 Performance Baselines": 42, "Error Handling": 13,
             "Vikunja Integration": 1, "Rag Integration": 3, "Voice Integration": 2, "Kg5 Load Targets": 45,
             "Kg2 Breaker Timing": 19},
    "production": PRODUCTION_S,
}
START_S = 8  # a testbed start and stop per process


def expected_wall(durations: dict[str, float], processes: int = 2, order_text: str = "") -> float:
    """The wall time the ordering file's stages take with ``processes``, from per-suite ``durations``."""
    plan = stages(order_text) or [[[name] for name in durations]]
    listed = {name for stage in plan for unit in stage for name in unit}
    # pabot appends suites the file does not list after the listed ones, so in the last stage.
    plan[-1] += [[name] for name in durations if name not in listed]
    return sum(_wall([sum(durations.get(n, 0.0) for n in unit) for unit in stage], processes) for stage in plan)


def selected_suites(options: list[str]) -> set[str] | None:
    """The suites pabot options select by exact name (``--suite Suites.X`` or ``--suite X``), or None when
    they select none that way (all run, or a pattern this estimate does not follow)."""
    names = [options[i + 1] for i, opt in enumerate(options[:-1]) if opt in ("--suite", "-s")]
    if not names or any(ch in name for name in names for ch in "*?["):
        return None
    return {name.split("Suites.", 1)[-1] for name in names}


def planned_wall(output_xml: Path, profile: str, processes: int, order_text: str,
                 selected: set[str] | None = None) -> tuple[float, str]:
    """The run's expected wall time and where the figures come from: the last run's suite times when it
    ran this profile, the typical times of the profile for the suites it did not run."""
    try:
        last = last_durations(output_xml, profile) if output_xml.exists() else {}
    except Exception:  # noqa: BLE001 - a broken old output only means the typical times
        last = {}
    typical = TYPICAL_S.get(profile, TYPICAL_S["production"])
    durations = {**typical, **last}
    if selected is not None:
        durations = {name: seconds for name, seconds in durations.items() if name in selected}
        order_text = "\n".join(line for line in order_text.splitlines()
                               if not line.strip().startswith("--suite Suites.")
                               or line.strip().split("Suites.", 1)[1].strip() in selected)
    used_last = any(name in last for name in durations)
    source = (f"the last {profile} run's suite times" if used_last and all(n in last for n in durations) else
              f"the last {profile} run's suite times and typical ones" if used_last else
              f"typical {profile} suite times on a 2-core machine")
    if profile != "fast" and "Kg5 Performance Baselines" in durations:
        source += "; the capacity search adds a step of the profile's length until the knee"
    wall = expected_wall(durations, processes, order_text) + START_S * len(stages(order_text))
    return wall, source


def profile_of(variables_file: Path) -> str:
    """The timing profile (``${PROFILE}``) a variables file gives, with this environment (``XNAI_PROFILE``)."""
    import importlib.util  # noqa: PLC0415

    try:
        spec = importlib.util.spec_from_file_location(f"_plan_{variables_file.stem}", variables_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"{variables_file} cannot be loaded as Python")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        values = module.get_variables() if hasattr(module, "get_variables") else vars(module)
        return str(values.get("PROFILE", "fast"))
    except (Exception, SystemExit):  # noqa: BLE001 - a broken file stops the run itself, with its own message
        return "fast"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


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
    if len(argv) > 4 and argv[1] == "--expected":
        # expected OUTPUT PROCESSES ORDER [VARIABLES_FILE] [-- pabot options]: the run's planned wall time
        # in seconds on stdout (the progress line counts down from it), how it was planned on stderr.
        rest = argv[5:]
        options = rest[rest.index("--") + 1:] if "--" in rest else []
        profile = profile_of(Path(rest[0])) if rest and rest[0] != "--" else "fast"
        order_text = Path(argv[4]).read_text()
        wall, source = planned_wall(Path(argv[2]), profile, int(argv[3]), order_text, selected_suites(options))
        print(round(wall))  # noqa: T201
        print(f"[qa] planned wall time: ~{_minutes(wall)} ({source})", file=sys.stderr)  # noqa: T201
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
