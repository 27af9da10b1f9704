"""The mutation campaign's map (tools/mutate.py): each module of the testbed runs the suites that can
observe it, so a mutant that a suite would catch is not reported as a survivor."""

from __future__ import annotations

import ast
from pathlib import Path

from xnai_qa import claims
from xnai_qa.plan import suite_names

from ..conftest import load_tool

REPO = Path(__file__).resolve().parents[2]
mutate = load_tool("mutate")


def test_every_module_exists_and_names_real_suites():
    suites = set(suite_names(REPO / "suites"))
    for name, module in mutate.MODULES.items():
        for file in module.paths:
            assert (REPO / file).is_file(), f"{name}: {file} does not exist"
        unknown = (set(module.suites) | set(module.not_run)) - suites
        assert not unknown, f"{name}: no such suite {sorted(unknown)}"


def test_every_file_of_the_rag_api_and_the_monitor_is_in_one_module():
    """A new file of the API's or the monitor's is mutated too: it belongs to exactly one module."""
    owners: dict[str, list[str]] = {}
    for name, module in mutate.MODULES.items():
        for file in module.paths:
            owners.setdefault(file, []).append(name)
    files = {str(p.relative_to(REPO)) for package in ("rag_api", "monitor")
             for p in (REPO / "testbed" / package).glob("*.py") if p.name != "__init__.py"}
    assert {f: owners.get(f, []) for f in files if len(owners.get(f, [])) != 1} == {}


def test_each_module_runs_every_suite_its_defect_switches_are_caught_in():
    """A switch written into a module's code is a defect of that module: the suites that catch it must
    run for that module's mutants (or be listed as not run, with the reason)."""
    claimed = claims.read()
    for name, module in mutate.MODULES.items():
        source = "\n".join((REPO / file).read_text() for file in module.paths)
        for switch in sorted(mutate.switches_named_in(source)):
            for test in claimed.get(switch, ()):
                suite = test.split(".", 1)[0]
                assert suite in module.suites or suite in module.not_run, (
                    f"{name}: switch {switch} is caught by {test}, whose suite the module's mutants do not run")


def test_code_only_a_switch_runs_is_left_out_but_the_switch_test_is_not():
    source = (
        'def f(defects, n):\n'
        '    if "breaker-threshold-off-by-one" in defects:\n'
        '        n = n + 1\n'
        '        n = n * 2\n'
        '    x = 1 if "breaker-threshold-off-by-one" in defects else 2\n'
        '    if n > 3:\n'
        '        n = n - 1\n'
        '    if n == 2 and "breaker-never-opens" in defects:\n'
        '        n = 0\n'
        '    return n + x\n')
    spans = mutate.switch_only_spans(source, mutate.switches_named_in(source))
    left_out = [(line, col) for line in range(1, 11) for col in range(40) if mutate.in_spans((line, col), spans)]
    assert {line for line, _ in left_out} == {3, 4, 5, 8, 9}  # bodies, the conditional's true value, `n == 2`
    assert (8, 7) in left_out and (8, 20) not in left_out  # `A and <switch>`: A never decides with the switch off
    assert (5, 8) in left_out and (5, 4) not in left_out and (5, 15) not in left_out  # `1` only, not `x`, not the test
    assert not mutate.in_spans((2, 19), spans), "the switch's test stays mutable"

    negated = (
        'def g(defects, cfg):\n'
        '    if "breaker-never-opens" not in defects:\n'
        '        a = 1\n'
        '    else:\n'
        '        a = 2\n'
        '    b = 3 if not cfg.has_defect("breaker-never-opens") else 4\n'
        '    return a + b\n')
    spans = mutate.switch_only_spans(negated, mutate.switches_named_in(negated))
    assert not mutate.in_spans((3, 8), spans), "a clean testbed runs the body of `not in`"
    assert mutate.in_spans((5, 8), spans), "its else runs only with the switch on"
    line6 = negated.splitlines()[5]
    assert not mutate.in_spans((6, line6.index("3")), spans), "3 is what a clean testbed computes"
    assert mutate.in_spans((6, line6.rindex("4")), spans), "4 only with the switch on"


def test_code_only_the_testbed_as_containers_runs_is_left_out_but_its_test_is_not():
    """The monitor's container restart runs only in the container lane (its test): no campaign reaches it."""
    source = (REPO / "testbed" / "monitor" / "recovery.py").read_text()
    spans = mutate.container_only_spans(source)
    lines = source.splitlines()
    call = next(n for n, text in enumerate(lines, 1) if "self.restart_container" in text)
    assert mutate.in_spans((call, lines[call - 1].index("return")), spans)
    test = lines[call - 2]
    assert "container_engine" in test and not mutate.in_spans((call - 2, test.index("and")), spans), "the test stays"
    body = next(n for n, text in enumerate(lines, 1) if "def restart_container" in text) + 5
    assert mutate.in_spans((body, len(lines[body - 1]) - len(lines[body - 1].lstrip())), spans)
    assert not mutate.in_spans((call + 2, 12), spans), "the next action runs on the testbed as processes"
    # Each container-only function is defined in a mutated module and called from container-only code only.
    files = [REPO / file for module in mutate.MODULES.values() for file in module.paths]
    for name in mutate.CONTAINER_ONLY_FUNCTIONS:
        defined = [f for f in files if f"def {name}(" in f.read_text()]
        assert defined, f"{name} is defined in no mutated module"
        for file in files:
            text = file.read_text()
            calls = [node for node in ast.walk(ast.parse(text))
                     if isinstance(node, ast.Attribute) and node.attr == name and isinstance(node.ctx, ast.Load)]
            only = mutate.container_only_spans(text)
            outside = [c.lineno for c in calls if not mutate.in_spans((c.lineno, c.col_offset), only)]
            assert outside == [], f"{file.name} calls {name} outside container-only code at lines {outside}"


def test_annotations_are_left_out_where_they_are_never_evaluated():
    source = (
        'from __future__ import annotations\n'
        'def f(a: int | None = 1, *rest: str, **kw: dict | None) -> list | None:\n'
        '    x: int | None = a + 1\n'
        '    return [x]\n')
    spans = mutate.annotation_spans(source)
    line2, line3 = source.splitlines()[1], source.splitlines()[2]
    for text in ("int | None", "str", "dict | None", "list | None"):
        assert mutate.in_spans((2, line2.index(text) + 1), spans), text
    assert not mutate.in_spans((2, line2.index("= 1") + 2), spans), "a default is evaluated"
    assert mutate.in_spans((3, line3.index("|")), spans) and not mutate.in_spans((3, line3.index("+")), spans)
    assert mutate.annotation_spans(source.split("\n", 1)[1]) == [], "evaluated without the future import"


def test_the_triage_file_is_well_formed_and_names_known_modules():
    triage = mutate.load_triage()
    for (module, operator, line), entry in triage.items():
        assert module in mutate.MODULES, f"triage: unknown module {module}"
        assert operator == "*" or operator.startswith("core/"), f"triage: {operator} is not a cosmic-ray operator"
        assert line and entry["reason"].strip(), f"triage: {module} {operator}: a line and a reason are needed"
        if entry["verdict"] in ("equivalent", "unspecified"):  # they leave the score: they must still apply
            files = mutate.MODULES[module].paths
            assert any(line in (REPO / file).read_text() for file in files), (
                f"triage: {module}: the line {line!r} is no longer in {', '.join(files)}: triage it again")
