"""Which capabilities each test needs, read from the suites themselves (no test is run).

A library keyword that reaches into the target beyond its public interface carries a tag
``requires:<capability>`` (see ``capabilities.py``); a component of the stack named as an argument
(``Stop Service    mkdocs``) needs that component's capability; a target variable that is a capability
of its own (``${CASCADE}``, ``${RAG_FACTS}``) used as an argument needs it; ``via=gateway`` on a keyword
needing ``<x>`` needs ``<x>-gateway`` where there is one.  A test needs every capability of the keywords it
calls, directly or through user keywords, in its setup or body (and in the setups of its suites):
teardowns only restore.  ``tests/utest/test_capabilities.py`` holds each test's ``requires:`` tags equal to
what this finds, so what a test declares is what it really needs.

    python -m xnai_qa.needs suites        # each test and what it needs
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from robot.api import TestSuiteBuilder
from robot.libdocpkg import LibraryDocumentation
from robot.running.builder import ResourceFileBuilder

from .capabilities import CAPABILITIES, TAG_PREFIX, required_by

# A component of the stack named as an argument (``Stop Service    mkdocs``) is a need of its own:
# a target that does not list that service cannot offer the test.
SERVICE_CAPABILITIES = {cap.service: cap.name for cap in CAPABILITIES.values() if cap.service}
# A variable that alone offers a capability (``${CASCADE}``: cascade-pair) needs it where a step uses it.
VARIABLE_CAPABILITIES = {cap.variables[0]: cap.name for cap in CAPABILITIES.values()
                         if len(cap.variables) == 1 and not cap.service and not cap.check}
_VARIABLE = re.compile(r"[$&@]\{([A-Z][A-Z0-9_]*)\}")

ROOT = Path(__file__).resolve().parent.parent.parent


def _norm(name: str) -> str:
    return "".join(name.lower().split()).replace("_", "")


def library_needs(library: str = "XNAi") -> dict[str, set[str]]:
    """{normalised keyword name: capabilities} for every tagged keyword of the library (plain and qualified)."""
    out: dict[str, set[str]] = {}
    for kw in LibraryDocumentation(library).keywords:
        needs = set(required_by(kw.tags))
        if needs:
            out[_norm(kw.name)] = needs
            out[_norm(f"{library}.{kw.name}")] = needs
    return out


def _steps(body):
    """Every keyword call in a body, through FOR/IF/TRY/WHILE/GROUP."""
    for item in body:
        if getattr(item, "type", "") in ("KEYWORD", "SETUP"):
            yield item
        elif getattr(item, "body", None) is not None:  # FOR, WHILE, GROUP, an IF or TRY branch
            yield from _steps(item.body)
        for branch in getattr(item, "branches", None) or []:  # IF and TRY roots
            yield from _steps(branch.body)


class Needs:
    """Resolves keyword names to the capabilities they need, user keywords through their bodies."""

    def __init__(self, user_keywords: dict, library: dict[str, set[str]]):
        self.user = user_keywords  # normalised name -> running UserKeyword
        self.library = library
        self._memo: dict[str, set[str]] = {}

    def of_call(self, name: str, args=()) -> set[str]:
        key = _norm(name)
        out = set(self.of_keyword(key))
        if key == _norm("Requires"):
            out |= {str(a) for a in args}
        for arg in args:  # Run Keyword ..., Wait Until Keyword Succeeds ...: keyword names as arguments
            if isinstance(arg, str) and (_norm(arg) in self.user or _norm(arg) in self.library):
                out |= self.of_keyword(_norm(arg))
            if isinstance(arg, str) and arg in SERVICE_CAPABILITIES:
                out.add(SERVICE_CAPABILITIES[arg])
            if isinstance(arg, str):
                out |= {VARIABLE_CAPABILITIES[v] for v in _VARIABLE.findall(arg) if v in VARIABLE_CAPABILITIES}
        if "via=gateway" in args:
            out |= {f"{need}-gateway" for need in set(out) if f"{need}-gateway" in CAPABILITIES}
        return out

    def of_keyword(self, key: str) -> set[str]:
        if key in self._memo:
            return self._memo[key]
        self._memo[key] = set()  # recursion guard
        out = set(self.library.get(key, set()))
        kw = self.user.get(key) or self.user.get(key.split(".", 1)[-1])
        if kw is not None:
            out |= set(required_by(kw.tags))
            out |= self.of_body(kw.body)
            if kw.setup:
                out |= self.of_call(kw.setup.name, kw.setup.args)
        self._memo[key] = out
        return out

    def of_body(self, body) -> set[str]:
        out: set[str] = set()
        for step in _steps(body):
            if step.name:
                out |= self.of_call(step.name, step.args)
        return out


def test_needs(suite_dir: Path = ROOT / "suites") -> dict[str, dict]:
    """{test longname: {"needs": capabilities found, "declared": its requires: tags, "source": file}}."""
    suite = TestSuiteBuilder().build(str(suite_dir))
    user: dict = {}
    resources = ROOT / "resources"
    for path in sorted(resources.glob("*.resource")):
        for kw in ResourceFileBuilder().build(str(path)).keywords:
            user[_norm(kw.name)] = kw
    resolver_base = library_needs()
    out: dict[str, dict] = {}

    def visit(s, inherited: set[str], own_keywords: dict) -> None:
        local = {**own_keywords, **{_norm(kw.name): kw for kw in s.resource.keywords}}
        needs = Needs(local, resolver_base)
        here = set(inherited)
        if s.setup:
            here |= needs.of_call(s.setup.name, s.setup.args)
        for test in s.tests:
            found = set(here)
            if test.setup:
                found |= needs.of_call(test.setup.name, test.setup.args)
            found |= needs.of_body(test.body)
            out[test.full_name] = {"needs": found, "declared": set(required_by(test.tags)), "source": str(s.source)}
        for child in s.suites:
            visit(child, here, local)

    visit(suite, set(), user)
    return out


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "suites"
    for name, row in test_needs(folder).items():
        mark = "" if row["needs"] == row["declared"] else "   <- tags: " + ", ".join(
            TAG_PREFIX + c for c in sorted(row["needs"])) if row["needs"] or row["declared"] else ""
        print(f"{name}: {', '.join(sorted(row['needs'])) or '-'}{mark}")  # noqa: T201 - its CLI
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
