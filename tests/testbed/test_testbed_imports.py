"""The testbed imitates the stack: it shares the contract with the suite (xnai_contract) and imports nothing
else of the suite's code, so a change to the library cannot change what the testbed does."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE_PACKAGES = ("xnai_qa", "XNAi")


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_the_testbed_imports_only_the_contract_of_the_suite():
    found = []
    for path in sorted((REPO / "testbed").rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        for name in _imports(path):
            if name.split(".")[0] in SUITE_PACKAGES:
                found.append(f"{rel}: {name}")
    assert found == [], "the testbed imports the suite's code (share it through xnai_contract instead)"
