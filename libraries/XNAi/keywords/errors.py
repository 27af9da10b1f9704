"""Error-handling keywords: bounded requests, the contract's error body, and no leaks in error answers.

The contract's error body is JSON ``{"error_code", "message", "category",
"http_status", "timestamp", "details", "recovery_suggestion", "request_id"}``
with ``request_id`` equal to the ``X-Request-ID`` header.  An error answer
must not carry a stack trace or the value of any ``Secret`` variable of the run.
"""

from __future__ import annotations

import json as jsonlib
import re
import socket
from datetime import timedelta
from urllib.parse import urlparse

from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure

from ..base import Context, LibraryComponent

ERROR_FIELDS = ("error_code", "message", "category", "http_status", "timestamp", "details",
                "recovery_suggestion", "request_id")
STACK_TRACE = (re.compile(r"Traceback \(most recent call last\)"), re.compile(r'File "[^"]+", line \d+'),
               re.compile(r"\bat [\w.$]+\([\w]+\.java:\d+\)"))


class ErrorKeywords(LibraryComponent):
    """Sends requests that must fail well, and checks how they fail."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._unread: list[socket.socket] = []

    # ------------------------------------------------------- assertions --
    @keyword
    def response_should_be_a_contract_error(self, response: dict, status: int) -> None:
        """Fails unless ``response`` has HTTP ``status`` and the contract's error body: every field,
        ``http_status`` equal to the status, ``request_id`` equal to the ``X-Request-ID`` header.

        Example:
        | Response Should Be A Contract Error | ${response} | 400 |
        """
        problems = []
        if response["status"] != int(status):
            problems.append(f"status {response['status']}, expected {status}")
        body = response["json"]
        if response["status"] < 400:  # answered, not refused: the body is an answer, not an error body
            if problems:
                problems[-1] += " (the request was answered, not refused)"
        elif not isinstance(body, dict):
            problems.append(f"the body is not a JSON object: {response['text'][:200]!r}")
        else:
            missing = [f for f in ERROR_FIELDS if f not in body]
            if missing:
                problems.append(f"the error body lacks {', '.join(missing)}")
            if "http_status" in body and body["http_status"] != response["status"]:
                problems.append(f"http_status {body['http_status']} differs from the HTTP status {response['status']}")
            header = response["headers"].get("x-request-id")
            if not header:
                problems.append("no X-Request-ID header")
            elif body.get("request_id") != header:
                problems.append(f"request_id {body.get('request_id')!r} differs from X-Request-ID {header!r}")
        if problems:
            raise Failure(f"{response['method']} {response['path']} is not the contract's error answer: "
                          + "; ".join(problems) + ".")

    @keyword
    def query_parameter_should_be_refused_outside_its_range(self, name: str, question: str = "Which port?") -> None:
        """Asks ``question`` with parameter ``name`` one step below and one step above its range in
        ``${QUERY_PARAMETER_RANGES}`` (a step is 1 for a whole number, 0.01 otherwise): each must be the
        contract's 400 error.  Fails naming every value that was not.

        Example:
        | Query Parameter Should Be Refused Outside Its Range | max_tokens |
        """
        low, high, step = self._range(name)
        problems = []
        for value in (round(low - step, 6), round(high + step, 6)):
            response = self.ctx.api.send_api_request("POST", self._var("QUERY_PATH"),
                                             json={self._var("QUERY_FIELD"): question, name: value})
            try:
                self.response_should_be_a_contract_error(response, 400)
            except Failure as err:
                problems.append(f"{name}={value} (outside {low}..{high}): {err}")
        if problems:
            raise Failure("\n".join(problems))

    @keyword
    def query_parameter_should_be_answered_at_the_ends_of_its_range(self, name: str,
                                                                    question: str = "Which port?") -> None:
        """Asks ``question`` with parameter ``name`` at the low and at the high end of its range in
        ``${QUERY_PARAMETER_RANGES}``: both ends are allowed, each must be answered 200.  The question is
        asked without retrieval and, unless ``name`` is ``max_tokens``, for one token: a real model's answer
        at temperature 2 stays short.

        Example:
        | Query Parameter Should Be Answered At The Ends Of Its Range | temperature |
        """
        low, high, _ = self._range(name)
        problems = []
        for value in (low, high):
            body = {self._var("QUERY_FIELD"): question, "use_rag": False, "max_tokens": 1, name: value}
            response = self.ctx.api.send_api_request("POST", self._var("QUERY_PATH"), json=body,
                                             within=timedelta(seconds=self._var("REQUEST_TIMEOUT_S", 10)))
            if response["status"] != 200:
                problems.append(f"{name}={value} (an end of {low}..{high}) was answered {response['status']}: "
                                f"{response['text'][:200]}")
        if problems:
            raise Failure("\n".join(problems))

    def _range(self, name: str) -> tuple[float, float, float]:
        ranges = self._var("QUERY_PARAMETER_RANGES", {}) or {}
        if name not in ranges:
            raise Failure(f"No range for query parameter '{name}' in ${{QUERY_PARAMETER_RANGES}} "
                          f"(it has {', '.join(ranges) or 'none'}).")
        low, high = ranges[name]
        whole = isinstance(low, int) and isinstance(high, int)
        return low, high, 1 if whole else 0.01

    @keyword
    def response_should_not_leak_internals(self, response: dict) -> None:
        """Fails if the answer's headers or body carry a stack trace or the value of any ``Secret``
        variable of the run (the failure names the variable, never the value).

        Example:
        | Response Should Not Leak Internals | ${response} |
        """
        text = response["text"] + "\n" + "\n".join(f"{k}: {v}" for k, v in response["headers"].items())
        problems = [f"a stack trace ({pattern.pattern!r})" for pattern in STACK_TRACE if pattern.search(text)]
        for name, value in self.ctx.secrets():
            if value and value in text:
                problems.append(f"the value of {name}")
        if problems:
            raise Failure(f"The {response['status']} answer to {response['method']} {response['path']} leaks "
                          + ", ".join(problems) + ".")

    # ---------------------------------------------------------- streams --
    @keyword
    def open_streams_that_are_never_read(self, count: int = 5, question: str = "Describe the XNAi stack") -> int:
        """Opens ``count`` answer streams through the gateway whose client never reads (slow clients
        with a tiny receive buffer); they stay open until `Close The Unread Streams` or the test's end.

        Example:
        | Open Streams That Are Never Read | 5 |
        """
        if not 1 <= int(count) <= 50:
            raise Failure(f"count={count}: use 1..50.")
        url = urlparse(self._api_url(self._var("STREAM_PATH"), "gateway"))
        body = jsonlib.dumps({self._var("QUERY_FIELD"): question}).encode()
        request = (f"POST {url.path} HTTP/1.1\r\nHost: {url.hostname}:{url.port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        for _ in range(int(count)):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            sock.settimeout(5)
            try:
                sock.connect((url.hostname, url.port or 80))
                sock.sendall(request)
            except OSError as err:
                sock.close()
                raise Failure(f"Could not open a stream to {url.geturl()}: {err}") from None
            self._unread.append(sock)
        logger.info(f"{len(self._unread)} streams open and unread")
        return len(self._unread)

    @keyword
    def close_the_unread_streams(self) -> None:
        """Closes every stream opened by `Open Streams That Are Never Read` (the library also does it
        when each test ends).

        Example:
        | Open Streams That Are Never Read | 5 |
        | Close The Unread Streams |
        """
        while self._unread:
            self._unread.pop().close()
