"""A defect switch's claims live on the tests that catch it: ``[Tags]    catches:<switch>``.

The testbed's registry (``testbed/defects.py``) names each switch and what it breaks; which tests must
fail when it is on is said once, on those tests.  The defect proof, the mutation campaign's map and
``python -m testbed defects`` read the claims from here, so renaming a test is one edit.

    from xnai_qa import claims
    claims.read()            # {"breaker-never-opens": ("Kg2 Circuit Breakers.Open Breaker Rejects ...", ...), ...}

A claim is ``"<suite name>.<test name>"`` with Robot's suite names (the file name without its numeric
prefix, underscores as spaces, title case), the form the proof compares with a run's failures.
"""

from __future__ import annotations

from pathlib import Path

TAG = "catches:"
SUITES = Path(__file__).resolve().parents[2] / "suites"


def read(suites: Path = SUITES) -> dict[str, tuple[str, ...]]:
    """Every switch a test's ``catches:`` tag names, with the tests that name it (in suite order)."""
    from robot.api import TestSuite  # noqa: PLC0415 - parsing the suites only when claims are asked for

    found: dict[str, list[str]] = {}

    def walk(suite, prefix: str) -> None:
        for test in suite.tests:
            for tag in test.tags:
                if tag.lower().startswith(TAG):
                    found.setdefault(tag[len(TAG):].strip().lower(), []).append(f"{prefix}{test.name}")
        for child in suite.suites:
            walk(child, f"{prefix}{child.name}.")

    top = TestSuite.from_file_system(str(suites))
    for child in top.suites:  # the claims drop the top-level "Suites."
        walk(child, f"{child.name}.")
    return {switch: tuple(tests) for switch, tests in found.items()}


def unknown(known: set[str] | dict, suites: Path = SUITES) -> dict[str, tuple[str, ...]]:
    """The ``catches:`` tags naming no switch of ``known``, with their tests: a misspelt switch."""
    return {switch: tests for switch, tests in read(suites).items() if switch not in known}
