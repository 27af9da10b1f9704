"""API keywords: one family for asking the RAG API, one reply for all of it.

`Send API Request` sends any method to any path under ``${API_PREFIX}``; `Ask The RAG API` asks the
query path (``${QUERY_PATH}``, the question in ``${QUERY_FIELD}``) a question; `Ask A Fresh Question`
asks one that no cache can answer.  Each goes ``via`` the ``gateway`` or ``direct`` (straight at the
RAG API), is bounded in time (``within``, by default ``${REQUEST_TIMEOUT_S}``: a hang fails, naming
the bound) and returns a *reply*.
"""

from __future__ import annotations

import json as jsonlib
import time
import uuid
from datetime import timedelta
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import safehttp

from ..base import LibraryComponent


class ApiReply(dict):
    """A reply of the API: a dictionary of ``status``, ``headers`` (any case: ``${reply}[headers][X-Request-ID]``),
    ``text``, ``json`` (the body parsed, None when it is not JSON), ``answer`` (the body of a 2xx answer, else
    None), ``seconds`` (the client's wait), ``request_id`` (the ``X-Request-ID`` header), ``method`` and ``path``.

    It also answers ``${reply.status_code}``, ``${reply.headers}``, ``${reply.text}`` and ``${reply.json()}``
    as a RequestsLibrary response does, so keywords written for those keep working.
    """

    @property
    def status_code(self) -> int:
        return self["status"]

    @property
    def headers(self) -> CaseInsensitiveDict:
        return self["headers"]

    @property
    def text(self) -> str:
        return self["text"]

    def json(self) -> Any:
        return self["json"]


def _expected_status(status: int | str) -> int | None:
    """The status a reply must have (None: any), from a number or ``any``; another word is a clear error."""
    if isinstance(status, str) and status.strip().lower() == "any":
        return None
    try:
        return int(status)
    except ValueError:
        raise Failure(f"status={status!r}: give an HTTP status (200, 503 ...) or any.") from None


class ApiKeywords(LibraryComponent):
    """Asks the RAG API: `Send API Request` (any method and path), `Ask The RAG API` and `Ask A Fresh Question`
    (the query path), each bounded in time, each returning one kind of reply: ``status``, ``headers``,
    ``text``, ``json``, ``answer``, ``seconds``, ``request_id``, ``method``, ``path``.
    `Ask And Time` is the earlier name of `Ask The RAG API` (deprecated)."""

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self._warned: set[str] = set()

    @keyword("Send API Request")
    def send_api_request(self, method: str, path: str, json: Any = None, body: str | None = None,
                         via: str = "gateway", within: timedelta | None = None, status: int | str = "any") -> ApiReply:
        """Sends ``method`` to ``path`` under the API prefix (``json`` body, or raw ``body`` text sent as
        JSON content) and returns the reply.  Fails when no answer comes ``within`` the bound (a hang is an
        error of its own), and unless the answer has ``status`` (a number; ``any``, the default, takes every status).

        Example:
        | ${reply}= | Send API Request | POST | /query | body={"query": | within=2s |
        | Should Be Equal As Integers | ${reply}[status] | 400 |
        | ${health}= | Send API Request | GET | /health | via=direct | status=200 |
        """
        expected = _expected_status(status)
        url = self._api_url(path, via)
        bound = within.total_seconds() if within is not None else float(self._var("REQUEST_TIMEOUT_S", 10))
        verb = method.upper()
        headers = {"Content-Type": "application/json"} if (json is not None or body is not None) else {}
        data = body.encode() if body is not None else (jsonlib.dumps(json).encode() if json is not None else None)
        started = time.perf_counter()
        try:
            resp = safehttp.request(verb, url, self._var("ALLOWED_HOSTS", []), data=data, headers=headers,
                                    timeout=(bound, bound))
        except requests.Timeout:
            raise Failure(f"{verb} {path} ({via}) got no answer within {bound:g} s: it hangs.") from None
        except requests.RequestException as err:
            raise Failure(f"{verb} {path} ({via}) failed: {type(err).__name__}: {err}") from None
        seconds = round(time.perf_counter() - started, 4)
        if seconds > bound:
            raise Failure(f"{verb} {path} ({via}) answered {resp.status_code} after {seconds} s, "
                          f"more than the {bound:g} s bound.")
        try:
            parsed = resp.json()
        except ValueError:
            parsed = None
        logger.info(f"{verb} {url} -> {resp.status_code} in {seconds} s: {resp.text[:400]}")
        reply = ApiReply(status=resp.status_code, headers=CaseInsensitiveDict(resp.headers), text=resp.text,
                         json=parsed, answer=parsed if 200 <= resp.status_code < 300 else None, seconds=seconds,
                         request_id=resp.headers.get("X-Request-ID"), method=verb, path=path)
        if expected is not None and resp.status_code != expected:
            raise Failure(f"{verb} {path} ({via}) answered {resp.status_code}, expected {expected}: {resp.text[:300]}")
        return reply

    @keyword("Ask The RAG API")
    def ask_the_rag_api(self, question: str, via: str = "gateway", use_rag: bool = True,
                        max_tokens: int | None = None, status: int | str = 200,
                        within: timedelta | None = None) -> ApiReply:
        """Asks ``question`` on the query path and returns the reply; fails unless it has ``status`` (200:
        answered; ``any``: every status).  ``${reply}[answer]`` is the answer's body (``response``,
        ``sources``, ``tokens_generated`` ...), ``${reply}[seconds]`` the client's wait.

        Example:
        | ${reply}= | Ask The RAG API | What is the gateway? | via=direct |
        | Should Be True | ${reply}[seconds] < 1 |
        | Should Not Be Empty | ${reply}[answer][sources] |
        | ${short}= | Ask The RAG API | What is the gateway? | use_rag=${False} | max_tokens=5 |
        """
        body: dict[str, Any] = {self._var("QUERY_FIELD"): question, "use_rag": bool(use_rag)}
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        reply = self.send_api_request("POST", self._var("QUERY_PATH"), json=body, via=via, within=within,
                                      status=status)
        answer = reply["answer"] or {}
        logger.info(f"{question!r} -> {reply['status']} in {reply['seconds'] * 1000:.1f} ms, sources "
                    f"{answer.get('sources')}, {answer.get('tokens_generated')} tokens: "
                    f"{str(answer.get('response'))[:200]!r}")
        return reply

    @keyword("Ask A Fresh Question")
    def ask_a_fresh_question(self, status: int | str = 200, via: str = "direct") -> ApiReply:
        """Asks a question never asked before (so no cache answers it), by default straight at the RAG API,
        and returns the reply; fails unless it has ``status``.

        Example:
        | ${reply}= | Ask A Fresh Question |
        | Ask A Fresh Question | 503 |
        | Ask A Fresh Question | any |
        """
        return self.ask_the_rag_api(f"fresh question {uuid.uuid4().hex}", via=via, status=status)

    @keyword("Ask And Time", tags=["deprecated"])
    def ask_and_time(self, question: str, use_rag: bool = True, max_tokens: int | None = None,
                     via: str = "gateway") -> ApiReply:
        """*Deprecated:* use `Ask The RAG API`, which takes the same arguments by name and returns the same
        ``answer``, ``seconds`` and ``request_id`` (in one reply with the status and headers).  The log warns
        once per run where it is still used.

        Example:
        | ${reply}= | Ask And Time | What is the gateway? |
        """
        self._warn_deprecated("Ask And Time", "Ask The RAG API")
        return self.ask_the_rag_api(question, via=via, use_rag=use_rag, max_tokens=max_tokens)

    def _warn_deprecated(self, old: str, new: str) -> None:
        if old not in self._warned:
            self._warned.add(old)
            logger.warn(f"Keyword '{old}' is deprecated: use '{new}' (same arguments by name, the same reply). "
                        "This warning is given once per run.")
