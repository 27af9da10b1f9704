"""Robot pre-run modifier for the defect proof: in the selected suites, keep every test that is either
claimed by the defect under proof or not tagged ``slow``.

    robot --prerunmodifier tests/ProofSelection.py:/path/to/claimed.txt --suite ... suites/

``claimed.txt`` holds one ``<suite name>.<test name>`` per line (the form ``testbed/defects.py`` uses).
Slow tests (load runs, monitor recovery cycles, the overhead measurement) then run only for the
switches that claim them, and in the clean run of every suite.
"""

from pathlib import Path

from robot.api import SuiteVisitor


class ProofSelection(SuiteVisitor):
    def __init__(self, claimed_file: str):
        self.claimed = {line.strip() for line in Path(claimed_file).read_text().splitlines() if line.strip()}

    def start_suite(self, suite):
        suite.tests = [t for t in suite.tests
                       if "slow" not in t.tags or t.full_name.split(".", 1)[-1] in self.claimed]

    def end_suite(self, suite):
        suite.suites = [s for s in suite.suites if s.test_count > 0]

    def visit_test(self, test):
        pass
