"""The API family (XNAi/keywords/api.py): one reply for every way of asking, the expected status checked,
a hang bounded, and the deprecated `Ask And Time` still answering, with one warning per run."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from robot.api import ExecutionResult

REPO = Path(__file__).resolve().parents[2]


class Api(BaseHTTPRequestHandler):
    """A loopback stand-in for the query path: 200 with an answer, 503 for a question about an open breaker."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "breaker" in body["query"]:
            status, answer = 503, {"error": "LLM service unavailable (circuit open)"}
        else:
            status, answer = 200, {"response": "ok", "sources": ["a"], "tokens_generated": 1,
                                   "use_rag": body.get("use_rag"), "max_tokens": body.get("max_tokens")}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Request-ID", "req_00000000-0000-0000-0000-000000000000")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args):
        pass


SUITE = """*** Settings ***
Library    XNAi

*** Test Cases ***
A Question Is Answered In One Reply
    ${reply}    Ask The RAG API    What is it?    use_rag=${False}    max_tokens=5
    Should Be Equal As Integers    ${reply}[status]    200
    Should Be Equal    ${reply}[answer][response]    ok
    Should Be Equal    ${reply}[json]    ${reply}[answer]
    Should Be Equal    ${reply}[answer][use_rag]    ${False}
    Should Be Equal As Integers    ${reply}[answer][max_tokens]    5
    Should Be Equal    ${reply}[request_id]    req_00000000-0000-0000-0000-000000000000
    Should Be Equal    ${reply}[headers][x-request-id]    ${reply}[headers][X-Request-ID]
    Should Be True    0 <= ${reply}[seconds] < 5
    # What a RequestsLibrary response answered, for keywords written against it.
    Should Be Equal As Integers    ${reply.status_code}    200
    Should Be Equal    ${reply.json()}[response]    ok

A Refusal Has No Answer
    ${reply}    Ask The RAG API    Is the breaker open?    status=503
    Should Be Equal    ${reply}[answer]    ${None}
    Should Contain    ${reply}[json][error]    circuit open
    ${any}    Send API Request    POST    /query    json=${{ {"query": "breaker"} }}
    Should Be Equal As Integers    ${any}[status]    503

An Unexpected Status Fails Naming It
    Ask The RAG API    Is the breaker open?

A Status That Is Not One Fails Clearly
    Send API Request    GET    /health    status=sometimes

The Earlier Name Still Answers
    ${first}    Ask And Time    What is it?
    ${second}    Ask And Time    What else?    use_rag=${False}
    Should Be Equal    ${first}[answer][response]    ok
    Should Be Equal    ${second}[answer][use_rag]    ${False}
"""


@pytest.fixture
def api_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_way_of_asking_returns_one_reply(tmp_path, api_url):
    (tmp_path / "api.robot").write_text(SUITE)
    variables = {"GATEWAY_URL": api_url, "RAG_API_URL": api_url, "API_PREFIX": "", "QUERY_PATH": "/query",
                 "QUERY_FIELD": "query", "REQUEST_TIMEOUT_S": "5"}
    result = subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(tmp_path), "--console", "none", "--report", "NONE",
         "--log", "NONE", *[a for k, v in variables.items() for a in ("-v", f"{k}:{v}")], str(tmp_path / "api.robot")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    run = ExecutionResult(str(tmp_path / "output.xml"))
    tests = {t.name: t for t in run.suite.all_tests}
    for name in ("A Question Is Answered In One Reply", "A Refusal Has No Answer", "The Earlier Name Still Answers"):
        assert tests[name].status == "PASS", (name, tests[name].message, result.stdout[-2000:])
    assert tests["An Unexpected Status Fails Naming It"].message.startswith(
        "POST /query (gateway) answered 503, expected 200")
    assert tests["A Status That Is Not One Fails Clearly"].message == (
        "status='sometimes': give an HTTP status (200, 503 ...) or any.")
    warnings = [m.message for m in run.errors.messages if m.level == "WARN"]
    deprecated = [w for w in warnings if "Ask And Time" in w]
    assert len(deprecated) == 1, warnings  # once per run, however often it is used
    assert "use 'Ask The RAG API'" in deprecated[0]
