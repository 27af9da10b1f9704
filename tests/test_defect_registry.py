"""Every defect switch names tests that exist, and every suite names its defects."""

from pathlib import Path

import pytest
from robot.api import TestSuite as RobotSuite

from testbed import defects

REPO = Path(__file__).resolve().parent.parent


def all_tests():
    suite = RobotSuite.from_file_system(REPO / "suites")
    names = set()

    def walk(s):
        for test in s.tests:
            names.add(f"{s.name}.{test.name}")
        for child in s.suites:
            walk(child)

    for child in suite.suites:
        walk(child)
    return names


def test_every_claimed_test_exists():
    tests = all_tests()
    missing = [(d.name, t) for d in defects.DEFECTS.values() for t in d.caught_by if t not in tests]
    assert not missing, f"defects claim tests that do not exist: {missing}"


def test_every_defect_is_claimed_by_a_test():
    assert all(d.caught_by for d in defects.DEFECTS.values())


def test_each_suite_documents_the_defects_it_catches():
    suites = {t.split(".")[0] for d in defects.DEFECTS.values() for t in d.caught_by}
    for path in (REPO / "suites").glob("[0-9]*.robot"):
        suite = RobotSuite.from_file_system(path)
        claimed = [d.name for d in defects.DEFECTS.values() if any(t.startswith(suite.name + ".") for t in d.caught_by)]
        for name in claimed:
            assert name in suite.doc, f"{path.name} catches '{name}' but its documentation does not say so"
    assert suites


def test_unknown_switch_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown defect switch\(es\) nope. Known switches: "):
        defects.validate(["nope"], setting="XNAI_TESTBED_DEFECTS")
