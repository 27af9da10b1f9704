"""The XNAi library as a whole: one library of components on one context, one listener in a written order."""

import ast
from pathlib import Path

import pytest
from robot.api.deco import keyword
from robot.libdoc import LibraryDocumentation
from XNAi import XNAi, _check_unique_names
from XNAi.listener import Listener

REPO = Path(__file__).resolve().parents[2]
KEYWORDS = REPO / "libraries" / "XNAi" / "keywords"


def test_every_keyword_is_documented_with_an_example():
    doc = LibraryDocumentation("XNAi")
    assert doc.scope == "GLOBAL" and len(doc.keywords) > 150
    assert "%TOC%" in doc.doc and "= Using the library =" in doc.doc
    missing = [kw.name for kw in doc.keywords if "Example" not in kw.doc and "| " not in kw.doc]
    assert missing == []


def test_two_components_may_not_define_one_keyword():
    class One:
        @keyword("Ask The Gateway")
        def ask(self):
            pass

    class Other:
        @keyword
        def ask_the_gateway(self):
            pass

    with pytest.raises(TypeError, match="'ask_the_gateway' is defined by One and Other"):
        _check_unique_names([One(), Other()])


def test_no_component_reads_robot_variables_or_other_libraries_itself():
    """Settings come through the context (base.py); another component through ctx, not Robot's namespace."""
    found = []
    for path in sorted(KEYWORDS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("get_variable_value", "get_variables"):
                found.append(f"{path.name}:{node.lineno} {node.attr}")
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("run_keyword", "get_library_instance") and node.args
                    and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("Xnai")):
                found.append(f"{path.name}:{node.lineno} {node.func.attr}({node.args[0].value!r})")
    assert found == []


def test_the_listener_cleans_up_in_its_written_order():
    calls = []

    class Part:
        def __init__(self, name):
            self.name = name

        def __getattr__(self, method):
            return lambda *_args: calls.append(f"{self.name}.{method}")

    class Ctx:
        target, faults, load, errors = Part("target"), Part("faults"), Part("load"), Part("errors")

    listener = Listener(Ctx())
    listener.start_test(None, None)
    listener.end_test(None, None)
    listener.end_suite(None, None)
    listener.close()
    assert calls == ["faults.open_test_scope", "target.skip_test_without_capabilities",
                     "load.end_background_load", "errors.close_the_unread_streams", "faults.undo_test_faults",
                     "faults.undo_suite_faults", "target.record_capability_table",
                     "faults.undo_all_faults", "target.stop_the_testbed_started_here"]


def test_the_library_is_one_with_one_listener():
    library = XNAi()
    assert isinstance(library.ROBOT_LIBRARY_LISTENER, list) and len(library.ROBOT_LIBRARY_LISTENER) == 1
    assert isinstance(library.ROBOT_LIBRARY_LISTENER[0], Listener)
    assert library.ctx.faults is library.ctx.target.ctx.faults
