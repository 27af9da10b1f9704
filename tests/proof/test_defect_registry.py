"""Every defect switch is claimed by tests that exist, every claim names a switch, and every suite names
the switches its tests catch.  The claims are the tests' ``catches:<switch>`` tags (``xnai_qa.claims``)."""

import ast
from pathlib import Path

import pytest
from robot.api import TestSuite as RobotSuite
from xnai_qa import claims

from testbed import defects

REPO = Path(__file__).resolve().parents[2]


def test_every_catches_tag_names_a_switch():
    unknown = claims.unknown(defects.DEFECTS)
    assert not unknown, (f"catches: tags naming no switch of testbed/defects.py (misspelt?): {unknown}; "
                         "the switches: python -m testbed defects")


def test_every_defect_is_claimed_by_a_test():
    claimed = claims.read()
    unclaimed = [name for name in defects.DEFECTS if not claimed.get(name)]
    assert not unclaimed, f"switches no test claims (add [Tags] catches:<switch> to the tests it fails): {unclaimed}"


def test_a_reference_test_exists():
    tests = {f"{s.name}.{t.name}" for s in RobotSuite.from_file_system(REPO / "suites").suites for t in s.tests}
    missing = {d.name: d.reference_test for d in defects.DEFECTS.values() if d.reference_test not in ("", *tests)}
    assert not missing, f"reference tests that do not exist: {missing}"


def test_each_suite_documents_the_defects_it_catches():
    claimed = claims.read()
    checked = 0
    for path in (REPO / "suites").glob("[0-9]*.robot"):
        suite = RobotSuite.from_file_system(path)
        for name, tests in claimed.items():
            if any(t.startswith(suite.name + ".") for t in tests):
                checked += 1
                assert f"``{name}``" in suite.doc, f"{path.name} catches '{name}' but its documentation does not say so"
        listed = {word.strip("`,.") for word in suite.doc.split("``")[1::2]}
        stale = sorted(n for n in listed & set(defects.DEFECTS)
                       if not any(t.startswith(suite.name + ".") for t in claimed.get(n, ())))
        assert not stale, f"{path.name}'s documentation names switches none of its tests catches: {stale}"
    assert checked


def test_unknown_switch_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown defect switch\(es\) nope. Known switches: "):
        defects.validate(["nope"], setting="XNAI_TESTBED_DEFECTS")



def test_the_readme_table_has_every_switch():
    """The README's table of switches (what each breaks, in words) lists every switch and no other."""
    lines = (REPO / "README.md").read_text().splitlines()
    start = lines.index("| switch | breaks | caught by |") + 2
    rows = lines[start:lines.index("", start)]
    in_table = {name.strip(" `") for row in rows for name in row.split("|")[1].split("/")}
    assert in_table == set(defects.DEFECTS), (
        f"missing from the README's table: {sorted(set(defects.DEFECTS) - in_table)}; "
        f"in it but no switch: {sorted(in_table - set(defects.DEFECTS))}")


def _switch_questions() -> tuple[dict[str, list[str]], list[str]]:
    """Every switch name the testbed's code asks for with ``has_defect("x")``, with where; and every place
    it asks another way (``"x" in ...defects``): the one way is ``has_defect``, which refuses a misspelt name."""
    asked: dict[str, list[str]] = {}
    other_ways: list[str] = []
    for path in sorted((REPO / "testbed").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "has_defect" \
                    and node.args and isinstance(node.args[0], ast.Constant):
                asked.setdefault(node.args[0].value, []).append(where)
            elif isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) \
                    and isinstance(node.ops[0], (ast.In, ast.NotIn)) and "defects" in ast.unparse(node.comparators[0]):
                other_ways.append(f"{where} ({ast.unparse(node)})")
    return asked, other_ways


def _switches_asked_for() -> dict[str, list[str]]:
    return _switch_questions()[0]


def test_the_testbed_asks_for_a_switch_one_way():
    other_ways = _switch_questions()[1]
    assert not other_ways, f"switches asked for other than with has_defect(\"name\"): {other_ways}"


def test_the_testbed_asks_only_for_switches_that_exist():
    unknown = {name: where for name, where in _switches_asked_for().items() if name not in defects.DEFECTS}
    assert not unknown, f"the testbed asks for switches testbed/defects.py does not declare (misspelt?): {unknown}"


def test_every_switch_is_wired_into_the_testbed():
    unused = sorted(set(defects.DEFECTS) - set(_switches_asked_for()))
    assert not unused, f"switches declared but never asked for by the testbed's code: {unused}"
