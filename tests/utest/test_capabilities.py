"""Capabilities: each test declares what it needs, a target that lacks it SKIPs the test naming it,
and the three kinds of verdict never mix (a missing capability SKIPs, a bad variables file stops the
run naming the variable, a defect of the stack FAILs) against a testbed without its controls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult
from xnai_qa import capabilities, needs

REPO = Path(__file__).resolve().parents[2]


def test_every_test_declares_exactly_what_it_needs():
    """A test's requires: tags equal the capabilities of the keywords its setup and body call."""
    wrong = {name: (sorted(row["declared"]), sorted(row["needs"]))
             for name, row in needs.test_needs().items() if row["declared"] != row["needs"]}
    assert not wrong, "tags (declared, needed): " + "; ".join(f"{n}: {d} vs {w}" for n, (d, w) in wrong.items())


def test_every_requires_tag_names_a_known_capability():
    unknown = {}
    for name, row in needs.test_needs().items():
        bad = row["declared"] - set(capabilities.CAPABILITIES)
        if bad:
            unknown[name] = bad
    for kw_needs in needs.library_needs().values():
        assert kw_needs <= set(capabilities.CAPABILITIES), kw_needs
    assert not unknown


def test_a_capability_is_missing_for_the_first_thing_it_lacks():
    variables = {"LLM_CONTROL_PATH": "", "SERVICES": {"ui": {}}, "FAULT_BACKEND": "docker",
                 "SERVICE_LOG_DIR": "", "VIKUNJA_URL": "http://127.0.0.1:1", "VIKUNJA_TOKEN": ""}
    get = lambda name, default=None: variables.get(name, default)  # noqa: E731
    found = capabilities.detect(get, probes={"service-control": lambda: "the engine does not answer"})
    assert found["llm-control"] == "${LLM_CONTROL_PATH} and ${LLM_CONTROL_URL} are empty"
    assert found["ui"] == "" and found["mkdocs"] == "no 'mkdocs' service in ${SERVICES}"
    assert found["vikunja"] == "no 'vikunja' service in ${SERVICES}"
    assert found["service-control"] == "the engine does not answer"
    assert found["service-logs"] == ""  # from the container engine
    message = capabilities.lookup("llm-control").skip_message(found["llm-control"])
    assert message.startswith("Missing capability 'llm-control' (${LLM_CONTROL_PATH} and ${LLM_CONTROL_URL} are "
                              "empty): this test needs to ")
    # A stand-in model's control outside the API, and process figures from a command-line match.
    variables.update(LLM_CONTROL_URL="http://127.0.0.1:1/llm", FAULT_BACKEND="none",
                     SERVICES={"rag_api": {"process_match": "uvicorn"}})
    found = capabilities.detect(get, probes={"service-control": lambda: "no engine"})
    assert found["llm-control"] == "" and found["process-figures"] == ""
    # Alerts reach the suite through a callbacks route, or a stack configured to call its receiver's port.
    assert found["monitor-alerts"].startswith("the monitor has no callbacks route")
    variables.update(ALERT_RECEIVER_PORT=32195)
    assert capabilities.detect(get, probes={"service-control": lambda: ""})["monitor-alerts"] == ""
    variables.update(ALERT_RECEIVER_PORT=0, MONITOR_PATHS={"callbacks": "/health/callbacks"})
    assert capabilities.detect(get, probes={"service-control": lambda: ""})["monitor-alerts"] == ""
    with pytest.raises(capabilities.UnknownCapability, match=r"Known: .*llm-control"):
        capabilities.lookup("llm-controls")


def test_the_table_counts_the_tests_each_missing_capability_skipped():
    class T:
        def __init__(self, status, message):
            self.status, self.message = status, message

    counts = capabilities.skipped_counts([T("SKIP", "Missing capability 'fault-proxy' (x): ..."),
                                          T("SKIP", "Missing capability 'fault-proxy' (y): ..."),
                                          T("SKIP", "Skipped in parent suite setup:\nMissing capability 'ui' (z)"),
                                          T("SKIP", "another reason"), T("FAIL", "Missing capability 'ui'")])
    assert counts == {"fault-proxy": 2, "ui": 1}
    table = capabilities.table({"fault-proxy": "${FAULT_PROXY_URL} is empty", "ui": ""}, counts)
    assert "| fault-proxy | *no* | 2 |" in table and "| ui | yes |" in table


SUITE = """*** Settings ***
Library    XNAi
Test Setup    Log    the setup ran

*** Test Cases ***
Needs The LLM Control
    [Tags]    requires:llm-control
    Fail    a test whose capability is missing must not run

Needs A Misspelt Capability
    [Tags]    requires:llm-controls
    No Operation

Needs What The Target Offers
    [Tags]    requires:fault-proxy
    Requires    fault-proxy

Asks For A Missing Capability In Its Body
    Requires    stream-debug
    Fail    must not get here
"""


def test_a_test_whose_capability_is_missing_is_skipped_before_its_setup(tmp_path):
    (tmp_path / "caps.robot").write_text(SUITE)
    result = subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(tmp_path), "--console", "none", "--log", "NONE",
         "--report", "NONE", "-v", "LLM_CONTROL_PATH:", "-v", "FAULT_PROXY_URL:http://127.0.0.1:1",
         "-v", "STREAM_DEBUG_PATH:", str(tmp_path / "caps.robot")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    run = ExecutionResult(str(tmp_path / "output.xml"))
    tests = {t.name: t for t in run.suite.all_tests}
    assert result.returncode == 1, result.stdout  # the misspelt capability is one failure
    skipped = tests["Needs The LLM Control"]
    assert skipped.status == "SKIP"
    assert skipped.message.startswith(
        "Missing capability 'llm-control' (${LLM_CONTROL_PATH} and ${LLM_CONTROL_URL} are empty)"
    )
    assert "the setup ran" not in str([m.message for m in skipped.setup.body])
    assert tests["Needs A Misspelt Capability"].status == "FAIL"
    assert "Unknown capability 'llm-controls'" in tests["Needs A Misspelt Capability"].message
    assert tests["Needs What The Target Offers"].status == "PASS"
    assert tests["Asks For A Missing Capability In Its Body"].status == "SKIP"
    table = run.suite.metadata["Target capabilities"]
    assert "| llm-control | *no* | 1 |" in table and "| stream-debug | *no* | 1 |" in table
    assert "| fault-proxy | yes |" in table


@pytest.mark.timeout(900)
def test_a_bare_testbed_gives_each_verdict_its_own_kind(tmp_path):
    """Against the testbed without its controls (XNAI_TESTBED_REACH=bare, as the suite reaches a real
    stack): a test that needs a control SKIPs naming it; a defect of the stack FAILs; a wrong variable
    stops the run before the first test, naming it."""
    from ..conftest import free_block

    env = {**os.environ, "XNAI_TESTBED_HOME": str(tmp_path / "home"), "XNAI_TESTBED_BASE_PORT": str(free_block()),
           "XNAI_PROFILE": "fast", "XNAI_TESTBED_REACH": "bare",
           "XNAI_TESTBED_DEFECTS": "gateway-drops-aggregate-health"}
    tests = ["Suites.Kg2 Circuit Breakers.Breaker Opens After The Failure Threshold",
             "Suites.Kg4 Health Monitoring.The Stack Serves An Aggregate Health Report",
             "Suites.Kg1 Service Integration.RAG API Is Healthy Through The Gateway"]
    try:
        subprocess.run(
            [sys.executable, "-m", "robot", "--outputdir", str(tmp_path / "bare"), "--console", "none",
             "--log", "NONE", "--report", "NONE", *[a for t in tests for a in ("--test", t)], "suites/"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
        )
        subprocess.run(
            [sys.executable, "-m", "robot", "--outputdir", str(tmp_path / "bad"), "--console", "none",
             "--log", "NONE", "--report", "NONE", "--variable", "REQUEST_TIMEOUT_S:-1", "--test", tests[2],
             "suites/"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
        )
    finally:
        for command in ("down", "clean"):
            subprocess.run([sys.executable, "-m", "testbed", command], cwd=REPO, env=env,
                           capture_output=True, timeout=120, check=False)
    verdicts = {t.full_name: t for t in ExecutionResult(str(tmp_path / "bare" / "output.xml")).suite.all_tests}
    skip, fail, passed = (verdicts[t] for t in tests)
    assert skip.status == "SKIP" and skip.message.startswith("Missing capability 'llm-control'"), skip.message
    assert fail.status == "FAIL" and "aggregate health report" in fail.message, fail.message
    assert passed.status == "PASS", passed.message
    stopped = ExecutionResult(str(tmp_path / "bad" / "output.xml")).suite
    assert stopped.setup.failed and "REQUEST_TIMEOUT_S" in stopped.setup.message, stopped.setup.message
    assert all(t.status == "FAIL" and "fatal error" in t.message for t in stopped.all_tests)
