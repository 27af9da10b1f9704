"""Keywords for Server-Sent Event streams: read them strictly, time them, cut them short, run many at once.

Streams are read on a real socket.  The framing is checked strictly (UTF-8,
terminated frames) and the frames against the XNAi grammar (optional
``sources``, tokens, exactly one final ``done``, or an ``error``), with the
field names from ``${SSE_GRAMMAR}``.  The RAG API's stream endpoint and body
field come from ``${API_PREFIX}${STREAM_PATH}`` and ``${QUERY_FIELD}``.
"""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import capabilities, safehttp
from xnai_qa.sse import Event, FramingError, Grammar, decode_payloads, grammar_problems
from xnai_qa.sseclient import StreamOptions, open_stream

from ..base import LibraryComponent

MAX_CONCURRENT = 500


class StreamKeywords(LibraryComponent):
    """Opens, reads and judges SSE streams of the RAG API (or any URL)."""

    # ---------------------------------------------------------- helpers --
    def _grammar(self) -> Grammar:
        names = self._var("SSE_GRAMMAR", {}) or {}
        return Grammar(**{k: v for k, v in dict(names).items() if k in Grammar.__dataclass_fields__})

    def _check(self, url: str) -> None:
        safehttp.check(url, self._var("ALLOWED_HOSTS", []))

    def _body(self, question: str, max_tokens: int | None, use_rag: bool) -> dict:
        body = {self._var("QUERY_FIELD", "query"): question, "use_rag": use_rag}
        if max_tokens is not None:
            body["max_tokens"] = int(max_tokens)
        return body

    @staticmethod
    def _options(stop_after_events, stop_after, stop_before_first_event, timeout, abrupt) -> StreamOptions:
        if stop_after_events is not None and int(stop_after_events) < 1:
            raise Failure(f"stop_after_events={stop_after_events}: use 1 or more.")
        secs = None if stop_after is None else stop_after.total_seconds()
        if secs is not None and secs <= 0:
            raise Failure(f"stop_after={secs}: use a positive time.")
        return StreamOptions(None if stop_after_events is None else int(stop_after_events), secs,
                             bool(stop_before_first_event), timeout.total_seconds(), bool(abrupt))

    def _finish(self, result: dict) -> dict:
        """Decode frames, apply the grammar, add token counts; log a summary."""
        grammar = self._grammar()
        events = [Event(e["data"], e["event"], e["id"], None, e["t_ms"], e["index"]) for e in result["events"]]
        result["grammar_problems"] = []
        if result.get("framing_error") is None and events:
            try:
                decode_payloads(events)
            except FramingError as err:
                result["framing_error"] = str(err)
        payloads = [e.payload for e in events]
        for event, payload in zip(result["events"], payloads, strict=False):
            event["payload"] = payload
        if result.get("framing_error") is None and result["status"] == 200:
            complete = result["ended_by"] == "server"
            result["grammar_problems"] = grammar_problems(events, grammar, complete=complete)
        types = [p.get(grammar.type_field) if isinstance(p, dict) else None for p in payloads]
        result["types"] = types
        result["token_count"] = types.count(grammar.token)
        result["final_type"] = types[-1] if types else None
        # The answer as the stream told it: its tokens joined, and the sources frame's list (None: no frame).
        result["text"] = "".join(str(p.get(grammar.content_field, "")) for p, t in zip(payloads, types, strict=True)
                                 if t == grammar.token and isinstance(p, dict))
        result["sources"] = next((p.get(grammar.sources) for p, t in zip(payloads, types, strict=True)
                                  if t == grammar.sources and isinstance(p, dict)), None)
        if types and types[-1] == grammar.error and isinstance(payloads[-1], dict):
            result["error_message"] = payloads[-1].get(grammar.error)
        logger.info(f"{result['url']}: status {result['status']}, {result['event_count']} events "
                    f"({result['token_count']} tokens), ended by {result['ended_by']}, TTFB {result['ttfb_ms']} ms, "
                    f"first event {result['first_event_ms']} ms, total {result['duration_ms']} ms"
                    + (f", FRAMING ERROR: {result['framing_error']}" if result.get("framing_error") else "")
                    + (f", grammar: {result['grammar_problems']}" if result["grammar_problems"] else ""))
        return result

    def _run(self, url: str, body: dict, opts: StreamOptions) -> dict:
        self._check(url)
        try:
            result = asyncio.run(open_stream(url, body, opts))
        except (TimeoutError, OSError) as err:
            raise Failure(f"Stream from {url} failed: {type(err).__name__}: {err}") from None
        return self._finish(result)

    # --------------------------------------------------------- keywords --
    @keyword
    def open_answer_stream(self, question: str, via: str = "gateway", max_tokens: int | None = None,
                           use_rag: bool = True, stop_after_events: int | None = None,
                           stop_after: timedelta | None = None, stop_before_first_event: bool = False,
                           timeout: timedelta = timedelta(seconds=30), abrupt: bool = True) -> dict:
        """Streams the RAG API's answer to ``question`` and returns what was seen.

        Reads until the server ends the stream, or stops early: after
        ``stop_after_events`` events, after ``stop_after``, or right after the
        response headers (``stop_before_first_event``); the socket is then
        closed at once (``abrupt``, like a closed browser tab).  The result has
        ``status``, ``events`` (with ``payload`` and arrival ``t_ms``),
        ``event_count``, ``token_count``, ``types``, ``final_type``, ``text`` (the tokens joined),
        ``sources`` (the sources frame's list, None without one),
        ``ttfb_ms``, ``first_event_ms``, ``gaps_ms``, ``duration_ms``,
        ``ended_by``, ``framing_error`` and ``grammar_problems``.

        Example:
        | ${stream}= | Open Answer Stream | What does the gateway forward? |
        | Stream Should Follow The XNAi Grammar | ${stream} |
        | ${partial}= | Open Answer Stream | Tell me about Redis | stop_after_events=3 |
        """
        opts = self._options(stop_after_events, stop_after, stop_before_first_event, timeout, abrupt)
        return self._run(self._api_url(self._var("STREAM_PATH"), via), self._body(question, max_tokens, use_rag), opts)

    @keyword
    def read_event_stream(self, url: str, body: dict | None = None, timeout: timedelta = timedelta(seconds=30)) -> dict:
        """POSTs ``body`` (JSON) to any ``url`` and reads its event stream to the end, strictly.

        Example:
        | ${stream}= | Read Event Stream | ${url} | ${body} |
        """
        return self._run(url, dict(body or {}), StreamOptions(timeout_s=timeout.total_seconds()))

    @keyword
    def run_concurrent_streams(
        self,
        count: int,
        question: str,
        via: str = "gateway",
        max_tokens: int | None = None,
        stop_after_events: int | None = None,
        timeout: timedelta = timedelta(seconds=60),
    ) -> list:
        """Opens ``count`` streams at once and returns each one's result (in order).

        Example:
        | ${streams}= | Run Concurrent Streams | 12 | What is Vikunja? |
        | Every Stream Should Follow The XNAi Grammar | ${streams} |
        """
        if not 1 <= int(count) <= MAX_CONCURRENT:
            raise Failure(f"count={count}: use 1..{MAX_CONCURRENT}.")
        url = self._api_url(self._var("STREAM_PATH"), via)
        self._check(url)
        opts = self._options(stop_after_events, None, False, timeout, True)
        body = self._body(question, max_tokens, True)

        async def all_streams():
            return await asyncio.gather(*(open_stream(url, body, opts) for _ in range(int(count))),
                                        return_exceptions=True)

        results: list[dict] = []
        for index, item in enumerate(asyncio.run(all_streams()), 1):
            if isinstance(item, BaseException):
                results.append({"url": url, "status": None, "events": [], "event_count": 0, "ended_by": "exception",
                                "framing_error": None, "ttfb_ms": None, "first_event_ms": None, "duration_ms": None,
                                "exception": f"{type(item).__name__}: {item}", "index": index})
                logger.info(f"stream {index}: {type(item).__name__}: {item}")
            else:
                item["index"] = index
                results.append(self._finish(item))
        firsts = sorted(r["first_event_ms"] for r in results if r.get("first_event_ms") is not None)
        if firsts:
            logger.info(f"{count} concurrent streams: first event p50 {firsts[len(firsts) // 2]} ms, "
                        f"max {firsts[-1]} ms")
        return results

    @keyword
    def stream_should_follow_the_xnai_grammar(self, stream: dict) -> None:
        """Fails unless the stream was well framed, ended by the server, and went sources?, token+, done.

        Example:
        | Stream Should Follow The XNAi Grammar | ${stream} |
        """
        self._well_formed(stream)
        if stream["ended_by"] != "server":
            raise Failure(f"The stream did not end by itself: {stream['ended_by']}.")
        grammar = self._grammar()
        if stream["final_type"] != grammar.done:
            raise Failure(f"The stream ended with a '{stream['final_type']}' frame, not '{grammar.done}'"
                          + (f": {stream.get('error_message')}" if stream.get("error_message") else "."))

    @keyword
    def every_stream_should_follow_the_xnai_grammar(self, streams: list) -> None:
        """Runs `Stream Should Follow The XNAi Grammar` on each stream, failing with every broken one.

        Example:
        | Every Stream Should Follow The XNAi Grammar | ${streams} |
        """
        errors = []
        for stream in streams:
            try:
                if stream.get("exception"):
                    raise Failure(stream["exception"])
                self.stream_should_follow_the_xnai_grammar(stream)
            except Failure as err:
                errors.append(f"stream {stream.get('index')}: {err}")
        if errors:
            raise Failure(f"{len(errors)} of {len(streams)} streams broke:\n" + "\n".join(errors))

    @keyword
    def stream_should_end_with_error(self, stream: dict, message: str | None = None) -> None:
        """Fails unless the server ended the stream with an ``error`` frame (containing ``message``).

        Example:
        | Stream Should End With Error | ${stream} | timeout |
        """
        self._well_formed(stream)
        grammar = self._grammar()
        if stream["final_type"] != grammar.error:
            raise Failure(f"The stream ended with '{stream['final_type']}' after {stream['event_count']} events "
                          f"({stream['duration_ms']} ms), not with an '{grammar.error}' frame.")
        if message and message not in str(stream.get("error_message")):
            raise Failure(f"The error frame says {stream.get('error_message')!r}, not {message!r}.")

    def _well_formed(self, stream: dict) -> None:
        if stream.get("status") != 200:
            raise Failure(f"The stream request answered {stream.get('status')}: {stream.get('body', '')[:300]}")
        if stream.get("framing_error"):
            raise Failure(f"Broken SSE framing: {stream['framing_error']}")
        if stream.get("grammar_problems"):
            raise Failure("The frames break the XNAi grammar: " + "; ".join(stream["grammar_problems"]))

    @keyword
    def stream_timings_should_be_within(self, stream: dict, first_event_ms: float, total_ms: float) -> None:
        """Fails if the first event came after ``first_event_ms`` or the stream lasted ``total_ms`` or longer.

        Example:
        | Stream Timings Should Be Within | ${stream} | first_event_ms=1000 | total_ms=5000 |
        """
        if stream.get("first_event_ms") is None or stream["first_event_ms"] >= float(first_event_ms):
            raise Failure(f"First event after {stream.get('first_event_ms')} ms (limit {first_event_ms} ms).")
        if stream["duration_ms"] >= float(total_ms):
            raise Failure(f"Stream lasted {stream['duration_ms']} ms (limit {total_ms} ms).")

    # ---------------------------------------------------- server side --
    @keyword(tags=["requires:stream-debug"])
    def get_server_stream_state(self) -> dict:
        """The RAG API's own view of its streams (testbed debug route ``${STREAM_DEBUG_PATH}``):
        ``open_streams``, ``task_count``, ``tasks`` by coroutine, ``retained_bytes``, ``fds``.

        Skips the test, saying why, when the target has no such route (a real stack).

        Example:
        | ${state}= | Get Server Stream State |
        """
        capabilities.require("stream-debug", self._var)
        path = self._var("STREAM_DEBUG_PATH")
        url = f"{self._var('RAG_API_URL')}{self._var('API_PREFIX')}{path}"
        self._check(url)
        try:
            resp = safehttp.request(
                "GET", url, self._var("ALLOWED_HOSTS", []), timeout=5, headers={"Connection": "close"}
            )
        except requests.RequestException as err:
            raise Failure(f"GET {url} failed: {type(err).__name__}: {err}") from None
        if resp.status_code != 200:
            raise Failure(f"{url} answered {resp.status_code}: is the testbed started with --debug-endpoints?")
        return resp.json()

    @keyword(tags=["requires:stream-debug"])
    def get_quiet_server_stream_state(self, wait: timedelta = timedelta(seconds=2)) -> dict:
        """`Get Server Stream State` once no stream is open (waiting up to ``wait``; a stream that never
        closes is left to the tests that look for it), as the quietest of three readings 0.1 s apart:
        a request in flight at that moment (the health monitor's check, say) is not taken for the baseline.

        Example:
        | ${baseline}= | Get Quiet Server Stream State |
        """
        import time  # noqa: PLC0415

        deadline = time.monotonic() + wait.total_seconds()
        state = self.get_server_stream_state()
        while state.get("open_streams") and time.monotonic() < deadline:
            time.sleep(0.05)
            state = self.get_server_stream_state()
        readings = [state]
        for _ in range(2):
            time.sleep(0.1)
            readings.append(self.get_server_stream_state())
        return min(readings, key=lambda r: (r.get("open_streams", 0), r.get("task_count", 0),
                                            r.get("other_sockets", 0), r.get("file_fds", 0)))

    @keyword(tags=["requires:stream-debug"])
    def server_streams_should_return_to(self, baseline: dict, timeout: timedelta = timedelta(seconds=5)) -> dict:
        """Polls the server's stream state until open streams, tasks, file descriptors, sockets (other than
        inbound connections and the Redis pool) and retained memory are back *exactly* at ``baseline``
        (a `Get Server Stream State` result); fails naming what stayed.

        Example:
        | ${baseline}= | Get Server Stream State |
        | Open Answer Stream | Tell me about Redis | stop_after_events=2 |
        | Server Streams Should Return To | ${baseline} |
        """
        import time  # noqa: PLC0415

        keys = ("open_streams", "task_count", "file_fds", "other_sockets", "retained_bytes")
        deadline = time.monotonic() + timeout.total_seconds()
        while True:
            state = self.get_server_stream_state()
            diff = {k: (baseline.get(k), state.get(k)) for k in keys if state.get(k) != baseline.get(k)}
            if not diff:
                return state
            if time.monotonic() >= deadline:
                extra = {name: n - baseline.get("tasks", {}).get(name, 0) for name, n in state.get("tasks", {}).items()
                         if n != baseline.get("tasks", {}).get(name, 0)}
                raise Failure(
                    "The server did not return to its baseline within "
                    f"{timeout.total_seconds():g} s: "
                    + ", ".join(f"{k} {b} -> {n}" for k, (b, n) in diff.items())
                    + (f"; tasks that changed: {extra}" if extra else "")
                    + (f"; open streams: {json.dumps(state.get('streams'))[:300]}" if state.get("streams") else "")
                )
            time.sleep(0.05)
