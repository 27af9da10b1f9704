"""Defect switches: behaviours of the testbed that can be broken on purpose.

Each switch is declared here once: its name and what it breaks.  The tests that must fail when it is on
say so themselves, with a ``catches:<switch>`` tag (``libraries/xnai_qa/claims.py`` reads them); the
project's own proof (``tests/proof/test_defect_proof.py``) starts a testbed with each switch, runs the suites
that claim it and asserts that exactly those tests fail.

Switch one on with ``XNAI_TESTBED_DEFECTS=name[,name]`` or
``python -m testbed up --defect name``; ``python -m testbed defects`` lists them, ``./qa defects`` with their tests.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    name: str
    breaks: str
    # A regression is seen against a reference: the proof first runs this test ("<suite>.<test>") on a
    # clean testbed and hands its saved baselines to the run with the defect (``BASELINE_REFERENCE_DIR``).
    reference_test: str = ""


DEFECTS: dict[str, Defect] = {d.name: d for d in (
    Defect("gateway-drops-api-route",
           "the Caddy gateway no longer routes /xnai/api/v1/* to the RAG API (requests fall through to the "
           "catch-all)"),
    Defect("slow-health", "the RAG API health endpoint takes 600 ms to answer"),
    Defect("no-request-id", "the RAG API stops sending the X-Request-ID header"),
    Defect("health-memory-zero",
           "the RAG API's health reports 0 GB of memory in use (the field left at its default)"),
    Defect("health-breakers-unhealthy-while-closed",
           "the RAG API's health reports its circuit breakers unhealthy while every one is closed"),
    Defect("health-tier-zero-based",
           "the RAG API's health numbers its degradation tiers from 0 (an index, not the tier)"),
    Defect("breaker-threshold-off-by-one", "the rag_api breaker opens one failure late"),
    Defect("breaker-success-keeps-failures",
           "a success does not reset the failure count: failures far apart add up and open the breaker"),
    Defect("breaker-failures-not-totalled",
           "failures are never added to the breaker's total_calls and total_failures (only the run of failures"
           " counts)"),
    Defect("breaker-never-opens", "no breaker ever opens"),
    Defect("breaker-never-half-opens", "an open breaker never goes half-open"),
    Defect("breaker-closes-after-one-success", "a half-open breaker closes after one success (two required)"),
    Defect("breaker-state-not-in-redis",
           "breaker state is kept in memory only, never written to Redis (nothing about it is observable)"),
    Defect("breaker-state-lost-on-restart", "a restarted API discards the breaker state kept in Redis"),
    Defect("breaker-ttl-missing", "breaker state is written to Redis without an expiry"),
    Defect("breaker-half-open-unlimited",
           "a half-open breaker lets every call through, not just its trial calls"),
    Defect("breaker-corrupt-state-fails-calls",
           "a breaker state in Redis that no breaker wrote makes every call through the breaker fail (the "
           "read's error escapes)"),
    Defect("breaker-fails-without-redis",
           "the breaker has no fallback while Redis is down: its state's read or write error escapes and every "
           "call through it fails 500"),
    Defect("breaker-loses-concurrent-updates",
           "the breaker's read-modify-write of its Redis state is not serialised: concurrent calls lose "
           "updates"),
    Defect("breaker-counts-crowding-as-failure",
           "a call that ends while more than five others are in flight counts as a failure (a bulkhead's "
           "'busy' mistaken for an error): load alone opens the breaker"),
    Defect("breaker-adds-20ms", "every call through the breaker waits 20 ms more"),
    Defect("downstream-failure-cascades",
           "a failure of the downstream embeddings service fails the query and counts against the rag_api "
           "breaker"),
    Defect("stream-missing-done", "streams end after their last token without the final done frame"),
    Defect("stream-leaks-fd", "every stream keeps one file descriptor open after it ends"),
    Defect("stream-keeps-memory",
           "a stream whose client disconnects keeps its memory (XNAI_TESTBED_LEAK_KB, default 256 KB)"),
    Defect("stream-leaks-task", "one asyncio task is left running per disconnected stream"),
    Defect("no-stream-timeout", "the server never ends a stream that runs past its timeout"),
    Defect("cleanup-skipped-before-first-event",
           "a stream whose client disconnects before the first event is never cleaned up (sse-starlette #156)"),
    Defect("stream-unawaited-coroutine",
           "each stream's clean-up calls a coroutine without awaiting it (a RuntimeWarning in the server log)"),
    Defect("health-ignores-redis", "the RAG API health endpoint reports Redis healthy without asking Redis"),
    Defect("monitor-misses-stopped-service", "the monitor takes a refused connection for a healthy service"),
    Defect("monitor-slow-detection",
           "the monitor marks a failing service unhealthy only once its failures have lasted longer than the "
           "detection bound (detection slower than promised)"),
    Defect("monitor-unhealthy-lapses",
           "a service that keeps failing falls back from unhealthy to degraded after three checks (a status "
           "read from a short window of recent checks)"),
    Defect("monitor-failures-not-reset",
           "a service's run of failures is not reset when it answers again: its next single failure marks it "
           "unhealthy"),
    Defect("monitor-no-restart", "the monitor's restart actions are never issued"),
    Defect("monitor-summary-misses-unhealthy", "the report's summary counts an unhealthy service as degraded"),
    Defect("monitor-restart-ignores-cooldown",
           "a service that keeps failing is restarted at every failed check past its count, never waiting for "
           "the restart cooldown"),
    Defect("monitor-restarts-once-per-streak",
           "a service that keeps failing is restarted once and never again (only at its exact failure count)"),
    Defect("alert-never-sent", "the monitor never calls its alert callbacks"),
    Defect("alert-wrong-payload", "alerts name the wrong service"),
    Defect("aggregate-always-healthy", "the aggregate GET /health says healthy whatever the services' state"),
    Defect("checkers-report-no-details",
           "the checkers report a service healthy and nothing of what they checked (no status code, PING, "
           "memory or query result)"),
    Defect("monitor-no-reconnect", "the monitor never asks the task service to reconnect its database"),
    Defect("gateway-drops-aggregate-health",
           "the gateway does not route GET /health to the monitor's aggregate report (the UI's catch-all "
           "answers it), as in a Caddyfile without the health monitor"),
    Defect("aggregate-omits-task-service", "the aggregate /health leaves the task service out"),
    Defect("monitor-false-positive",
           "a check slower than 100 ms counts as failed (a slow-ish healthy service is marked unhealthy)"),
    Defect("tasks-no-reconnect", "the task service never re-opens a lost database connection"),
    Defect("tasks-token-not-checked", "the task service accepts any bearer token, or none"),
    Defect("tasks-info-needs-token",
           "the task service's open info route demands a token (liveness probes without one see 401)"),
    Defect("tasks-delete-ignored", "deleting a task answers success and deletes nothing"),
    Defect("tasks-all-first-project-only", "/api/v1/tasks/all lists only the first project's tasks"),
    Defect("tasks-wrong-project", "a new task is stored in the first project, not the one asked for"),
    Defect("query-slow-path",
           "a slow path adds 30 % to every query's latency (a regression only a baseline comparison sees: "
           "every absolute target still holds)",
           reference_test="Kg5 Performance Baselines.Baseline Is Established From Three Runs"),
    Defect("memory-grows-under-load", "every query keeps 32 KB for ever: the API's memory grows under load"),
    Defect("query-concurrency-capped",
           "the API answers at most 4 queries at once (a worker pool sized for a few users): normal load is "
           "served, peak load queues"),
    Defect("validation-as-500", "request validation errors are answered 500 instead of the contract's 400"),
    Defect("request-bounds-off-by-one",
           "the query's max_tokens, temperature and top_p ranges are one step up: the low end is refused, one "
           "step past the high end answered"),
    Defect("stack-trace-in-error-body",
           "an LLM failure's 500 answer carries the Python traceback in its details"),
    Defect("redis-down-hangs", "the API's Redis calls have no timeout: a silent Redis makes queries hang"),
    Defect("gateway-no-upstream-timeout",
           "the gateway waits for ever for an upstream that accepted and never answers"),
    Defect("wrong-sources", "answers cite the documents that did not match the question"),
    Defect("max-tokens-ignored", "max_tokens is ignored: every answer is full length"),
    Defect("cache-never-written", "answers are never written to the query cache"),
    Defect("cache-never-hit", "the query cache is written but never read: repeats take the full path"),
    Defect("docs-search-misranks", "document search returns its results worst first"),
    Defect("queries-not-recorded", "query requests leave no entry in the xnai_queries stream"),
    Defect("cache-breaker-ignored", "the API reads and writes the cache while the redis_cache breaker is open"),
    Defect("cache-read-past-open-breaker",
           "the redis_cache breaker guards only the cache's writes: the API still reads it while the breaker "
           "is open"),
    Defect("tts-truncated-wav",
           "synthesised speech loses its second half; the WAV header still promises the whole clip"),
    Defect("voice-breaker-never-opens", "the voice breakers never open: a failing engine is called for ever"),
    Defect("query-over-target",
           "every answer takes 600 ms longer: over the seed's 500 ms p99 target at any load"),
    Defect("docs-search-slow", "document search takes 400 ms (the index is re-read for every search)"),
    Defect("routing-errors-bare",
           "a wrong method or an unknown route is answered with the framework's bare {\"detail\": ...} body: no "
           "error code, request id or suggestion"),
    Defect("llm-error-body-bare",
           "an LLM failure is answered 500 with the bare {\"detail\": ...} body (as FastAPI's HTTPException "
           "gives it): no error code, request id or suggestion"),
    Defect("internal-error-without-request-id",
           "an error no handler expects is answered by the framework's last-resort handler, outside the "
           "request-id middleware: the 500 has no X-Request-ID"),
    Defect("token-rate-per-ms",
           "an answer's token_rate_tps is computed per millisecond (a units slip): a thousandth of the rate"),
    Defect("tasks-db-down-500", "the task service answers 500 (not 503) while its database is down"),
    Defect("gateway-masks-upstream-errors",
           "the gateway answers a refused upstream with a friendly page and status 200, hiding the outage from"
           " clients and monitors"),
    Defect("stream-ends-silently-on-error", "an LLM failure mid-stream just ends the stream: no error frame"),
    Defect("use-rag-ignored", "use_rag=false is ignored: answers still retrieve and cite sources"),
    Defect("stream-cites-fewer-sources",
           "the stream's sources frame cites only the first of the plain answer's sources"),
    Defect("stt-slow", "speech recognition takes 3.5 s longer per clip (its model loaded for every clip)"),
    Defect("ui-drops-stream",
           "the Chainlit UI waits for the whole answer and sends it as one message, never streaming a token "
           "over its WebSocket"),
)}


def is_on(name: str, carried) -> bool:
    """The one question the testbed's code asks of its switches: is ``name`` among those ``carried``?
    Asking for a switch declared nowhere above is an error: a misspelt switch would silently never be on
    (tests/proof/test_defect_registry.py finds every name asked for in the code, before any run)."""
    if name not in DEFECTS:
        raise ValueError(f"has_defect({name!r}): testbed/defects.py declares no such switch")
    return name in carried


def validate(names: list[str], setting: str) -> None:
    """Fail naming the unknown switches and the known ones."""
    unknown = [n for n in names if n not in DEFECTS]
    if unknown:
        known = ", ".join(sorted(DEFECTS))
        raise ValueError(
            f"{setting}: unknown defect switch(es) {', '.join(unknown)}. "
            f"Known switches: {known}. List them with: python -m testbed defects"
        )
