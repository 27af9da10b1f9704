"""Defect switches: behaviours of the testbed that can be broken on purpose.

Each switch names what it breaks and the tests expected to catch it, as
``"<suite name>.<test name>"`` with Robot's suite names (file name without the
numeric prefix, underscores as spaces, title case).  The project's own proof
(``tests/test_defect_proof.py``) starts a testbed with each switch, runs the
suites and asserts that exactly these tests fail.

Switch one on with ``XNAI_TESTBED_DEFECTS=name[,name]`` or
``python -m testbed up --defect name``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defect:
    name: str
    breaks: str
    caught_by: tuple[str, ...]
    # A regression is seen against a reference: the proof first runs this test on a clean testbed and
    # hands its saved baselines to the run with the defect (``BASELINE_REFERENCE_DIR``).
    reference_test: str = ""


KG1 = "Kg1 Service Integration"
KG2 = "Kg2 Circuit Breakers"
KG2_TIMING = "Kg2 Breaker Timing"
KG3 = "Kg3 Stream Cleanup"
KG4 = "Kg4 Health Monitoring"

# The KG-2 tests that need some breaker to open (and to be seen open in Redis).
KG2_NEED_AN_OPEN_BREAKER = tuple(f"{KG2}.{t}" for t in (
    "Breaker Opens After The Failure Threshold", "Open Breaker Rejects Calls With 503",
    "Open Breaker Goes Half-Open After The Recovery Timeout",
    "Half-Open Breaker Closes After Two Successes", "Half-Open Breaker Reopens On A Failure",
    "Breaker State Is Kept In Redis With An Expiry", "Breaker State Survives An API Restart",
    "Health Reports An Open Breaker", "Half-Open Breaker Admits Only Its Trial Calls",
    "Breaker Opens After The Threshold Under 50 Requests Per Second",
    "A Failing Downstream Service Opens Only Its Own Breaker",
    "Breaker Recovers Under Load Within The Bound", "Only Consecutive Failures Count Toward The Threshold"))
VIK = "Vikunja Integration"
KG5 = "Kg5 Performance Baselines"
KG5_TARGETS = "Kg5 Load Targets"
ERR = "Error Handling"
RAG = "Rag Integration"
VOICE = "Voice Integration"


DEFECTS: dict[str, Defect] = {
    d.name: d
    for d in (
        Defect(
            "gateway-drops-api-route",
            "the Caddy gateway no longer routes /xnai/api/v1/* to the RAG API "
            "(requests fall through to the catch-all)",
            (
                f"{KG1}.RAG API Is Healthy Through The Gateway",
                f"{KG1}.Gateway Keeps The API Prefix",
                f"{KG1}.Query Is Answered Through The Gateway",
                f"{KG1}.Health Calls Through The Gateway Are Fast",
                f"{KG1}.Every Service Answers Its Health Check",
                f"{KG3}.A Complete Stream Follows The Grammar",
            ),
        ),
        Defect(
            "slow-health",
            "the RAG API health endpoint takes 600 ms to answer",
            (
                f"{KG1}.Health Calls Through The Gateway Are Fast",
                f"{KG1}.Health Calls To The RAG API Are Fast",
                f"{KG5_TARGETS}.Health Checks Stay Under 100 ms Under Normal Load",
            ),
        ),
        Defect(
            "no-request-id",
            "the RAG API stops sending the X-Request-ID header",
            (
                f"{KG1}.Every API Response Carries A Request ID",
                f"{KG1}.Gateway Keeps The API Prefix",
            ),
        ),
        Defect(
            "health-memory-zero",
            "the RAG API's health reports 0 GB of memory in use (the field left at its default)",
            (
                f"{KG1}.RAG API Is Healthy Directly",
                f"{KG1}.RAG API Is Healthy Through The Gateway",
            ),
        ),
        Defect(
            "health-breakers-unhealthy-while-closed",
            "the RAG API's health reports its circuit breakers unhealthy while every one is closed",
            (f"{KG2}.Health Reports An Open Breaker",),
        ),
        Defect(
            "health-tier-zero-based",
            "the RAG API's health numbers its degradation tiers from 0 (an index, not the tier)",
            (
                f"{KG1}.RAG API Is Healthy Directly",
                f"{KG1}.RAG API Is Healthy Through The Gateway",
            ),
        ),
        Defect("breaker-threshold-off-by-one", "the rag_api breaker opens one failure late",
               (f"{KG2}.Breaker Opens After The Failure Threshold",
                f"{KG2}.Only Consecutive Failures Count Toward The Threshold")),
        Defect("breaker-success-keeps-failures", "a success does not reset the failure count: failures "
               "far apart add up and open the breaker",
               (f"{KG2}.Only Consecutive Failures Count Toward The Threshold",)),
        Defect("breaker-failures-not-totalled", "failures are never added to the breaker's total_calls and "
               "total_failures (only the run of failures counts)",
               (f"{KG2}.The Breaker State Counts Every Call",)),
        Defect("breaker-never-opens", "no breaker ever opens", KG2_NEED_AN_OPEN_BREAKER),
        Defect("breaker-never-half-opens", "an open breaker never goes half-open",
               tuple(f"{KG2}.{t}" for t in (
                   "Open Breaker Goes Half-Open After The Recovery Timeout",
                   "Half-Open Breaker Closes After Two Successes", "Half-Open Breaker Reopens On A Failure",
                   "Half-Open Breaker Admits Only Its Trial Calls", "Breaker Recovers Under Load Within The Bound"))),
        Defect("breaker-closes-after-one-success", "a half-open breaker closes after one success (two required)",
               (f"{KG2}.Open Breaker Goes Half-Open After The Recovery Timeout",)),
        Defect("breaker-state-not-in-redis",
               "breaker state is kept in memory only, never written to Redis (nothing about it is observable)",
               # The one finding; the other breaker tests skip, naming it (resources/breakers.resource).
               (f"{KG2}.A Query Writes The Breaker State To Redis",)),
        Defect("breaker-state-lost-on-restart", "a restarted API discards the breaker state kept in Redis",
               (f"{KG2}.Breaker State Survives An API Restart",)),
        Defect("breaker-ttl-missing", "breaker state is written to Redis without an expiry",
               (f"{KG2}.Breaker State Is Kept In Redis With An Expiry",)),
        Defect("breaker-half-open-unlimited", "a half-open breaker lets every call through, not just its trial calls",
               (f"{KG2}.Half-Open Breaker Admits Only Its Trial Calls",)),
        Defect("breaker-corrupt-state-fails-calls", "a breaker state in Redis that no breaker wrote makes every "
               "call through the breaker fail (the read's error escapes)",
               (f"{KG2}.A Corrupt Breaker State Does Not Fail The Queries",)),
        Defect("breaker-loses-concurrent-updates",
               "the breaker's read-modify-write of its Redis state is not serialised: concurrent calls lose updates",
               (f"{KG2}.Breaker Holds 120 Concurrent Requests",
                f"{KG2}.Half-Open Breaker Admits Only Its Trial Calls")),
        Defect("breaker-counts-crowding-as-failure",
               "a call that ends while more than five others are in flight counts as a failure (a bulkhead's "
               "'busy' mistaken for an error): load alone opens the breaker",
               (f"{KG2_TIMING}.Breaker Stays Closed Under Gradual Load",)),
        Defect("breaker-adds-20ms", "every call through the breaker waits 20 ms more",
               (f"{KG2_TIMING}.Breaker Adds Less Than 2 ms Per Call",)),
        Defect("downstream-failure-cascades",
               "a failure of the downstream embeddings service fails the query and counts against the rag_api breaker",
               (f"{KG2}.A Failing Downstream Service Opens Only Its Own Breaker",)),
        Defect(
            "stream-missing-done",
            "streams end after their last token without the final done frame",
            (f"{KG3}.A Complete Stream Follows The Grammar",
             f"{KG3}.Normal Completion Frees Stream Resources",
             f"{KG3}.Twelve Concurrent Streams Complete And Are All Freed"),
        ),
        Defect(
            "stream-leaks-fd",
            "every stream keeps one file descriptor open after it ends",
            (f"{KG3}.Normal Completion Frees Stream Resources",
             f"{KG3}.Disconnect Mid-Stream Frees Stream Resources",
             f"{KG3}.Disconnect Before The First Event Frees Stream Resources",
             f"{KG3}.A Stream Past The Server Timeout Ends With An Error And Is Freed",
             f"{KG3}.Twelve Concurrent Streams Complete And Are All Freed",
             f"{KG3}.File Descriptors Return Exactly To Baseline Over Rounds",
             f"{KG3}.Server Stream State Returns Exactly To Baseline Over Rounds"),
        ),
        Defect(
            "stream-keeps-memory",
            "a stream whose client disconnects keeps its memory (XNAI_TESTBED_LEAK_KB, default 256 KB)",
            (f"{KG3}.Disconnect Mid-Stream Frees Stream Resources",
             f"{KG3}.Disconnect Before The First Event Frees Stream Resources",
             f"{KG3}.Memory Does Not Grow Over Rounds Of Disconnected Streams",
             f"{KG3}.Server Stream State Returns Exactly To Baseline Over Rounds"),
        ),
        Defect(
            "stream-leaks-task",
            "one asyncio task is left running per disconnected stream",
            (f"{KG3}.Disconnect Mid-Stream Frees Stream Resources",
             f"{KG3}.Disconnect Before The First Event Frees Stream Resources",
             f"{KG3}.Server Stream State Returns Exactly To Baseline Over Rounds"),
        ),
        Defect(
            "no-stream-timeout",
            "the server never ends a stream that runs past its timeout",
            (f"{KG3}.A Stream Past The Server Timeout Ends With An Error And Is Freed",),
        ),
        Defect(
            "cleanup-skipped-before-first-event",
            "a stream whose client disconnects before the first event is never cleaned up (sse-starlette #156)",
            (f"{KG3}.Disconnect Before The First Event Frees Stream Resources",),
        ),
        Defect(
            "stream-unawaited-coroutine",
            "each stream's clean-up calls a coroutine without awaiting it (a RuntimeWarning in the server log)",
            (f"{KG3}.No Coroutine Is Left Unawaited In The Server Log",),
        ),
        Defect(
            "health-ignores-redis",
            "the RAG API health endpoint reports Redis healthy without asking Redis",
            (f"{KG1}.Health Reports The Live Redis Connection",),
        ),
        Defect("monitor-misses-stopped-service", "the monitor takes a refused connection for a healthy service",
               tuple(f"{KG4}.{t}" for t in (
                   "A Stopped Service Is Detected Within The Bound", "The Monitor Restarts A Stopped RAG API",
                   "The Report Counts Each Service's Checks In A Row",
                   "The Monitor Clears The API Cache After Five Failures",
                   "An Alert Names The Service, Its Status And The Time",
                   "Aggregate Health Is Degraded While A Secondary Service Is Down",
                   "Aggregate Health Is Unhealthy While The RAG API Is Unreachable",
                   "The Report's Summary Counts Each Status",
                   "A Stopped Service Stays Unhealthy While Its Checks Fail"))),
        Defect("monitor-slow-detection", "the monitor marks a failing service unhealthy only once its failures have "
               "lasted longer than the detection bound (detection slower than promised)",
               tuple(f"{KG4}.{t}" for t in (
                   "A Stopped Service Is Detected Within The Bound", "A Paused Service Is Detected Within The Bound",
                   "The Report Counts Each Service's Checks In A Row",
                   "Aggregate Health Is Degraded While A Secondary Service Is Down",
                   "Aggregate Health Is Unhealthy While The RAG API Is Unreachable",
                   "The Report's Summary Counts Each Status",
                   "A Stopped Service Stays Unhealthy While Its Checks Fail"))),
        Defect("monitor-unhealthy-lapses", "a service that keeps failing falls back from unhealthy to degraded "
               "after three checks (a status read from a short window of recent checks)",
               (f"{KG4}.A Stopped Service Stays Unhealthy While Its Checks Fail",)),
        Defect("monitor-failures-not-reset", "a service's run of failures is not reset when it answers again: "
               "its next single failure marks it unhealthy",
               (f"{KG4}.The Report Counts Each Service's Checks In A Row",
                # unhealthy at its first new failure: the alert comes straight from healthy, not from degraded
                f"{KG4}.An Alert Names The Service, Its Status And The Time")),
        Defect("monitor-no-restart", "the monitor's restart actions are never issued",
               (f"{KG4}.The Monitor Restarts A Stopped RAG API", f"{KG4}.The Monitor Restarts A Stopped Redis",
                f"{KG4}.The Monitor Restarts A Stopped Chainlit UI",
                f"{KG4}.The Monitor Reconnects The Task Service To Its Database",
                f"{KG4}.A Failing RAG API Is Restarted Again Once Its Cooldown Is Over")),
        Defect("monitor-summary-misses-unhealthy", "the report's summary counts an unhealthy service as degraded",
               (f"{KG4}.The Report's Summary Counts Each Status",)),
        Defect("monitor-restart-ignores-cooldown", "a service that keeps failing is restarted at every failed "
               "check past its count, never waiting for the restart cooldown",
               (f"{KG4}.A Failing RAG API Is Restarted Again Once Its Cooldown Is Over",)),
        Defect("monitor-restarts-once-per-streak", "a service that keeps failing is restarted once and never again "
               "(only at its exact failure count)",
               (f"{KG4}.A Failing RAG API Is Restarted Again Once Its Cooldown Is Over",)),
        Defect("alert-never-sent", "the monitor never calls its alert callbacks",
               (f"{KG4}.An Alert Names The Service, Its Status And The Time",)),
        Defect("alert-wrong-payload", "alerts name the wrong service",
               (f"{KG4}.An Alert Names The Service, Its Status And The Time",)),
        Defect("aggregate-always-healthy", "the aggregate GET /health says healthy whatever the services' state",
               (f"{KG4}.Aggregate Health Is Degraded While A Secondary Service Is Down",
                f"{KG4}.Aggregate Health Is Unhealthy While The RAG API Is Unreachable")),
        Defect("checkers-report-no-details", "the checkers report a service healthy and nothing of what they "
               "checked (no status code, PING, memory or query result)",
               tuple(f"{KG4}.{t}" for t in ("HTTP Checker Reports Status And Response Time",
                                            "Redis Checker Reports Ping And Memory", "Database Checker Runs A Query"))),
        Defect("monitor-no-reconnect", "the monitor never asks the task service to reconnect its database",
               (f"{KG4}.The Monitor Reconnects The Task Service To Its Database",)),
        Defect("gateway-drops-aggregate-health", "the gateway does not route GET /health to the monitor's aggregate "
               "report (the UI's catch-all answers it), as in a Caddyfile without the health monitor",
               # The one finding; the other readers of the aggregate skip, naming it (XnaiHealth).
               (f"{KG4}.The Stack Serves An Aggregate Health Report",)),
        Defect("aggregate-omits-task-service", "the aggregate /health leaves the task service out",
               (f"{KG4}.Aggregate Health Is Complete Through The Gateway",
                f"{KG1}.Aggregate Health Through The Gateway Covers The Stack")),
        Defect("monitor-false-positive", "a check slower than 100 ms counts as failed (a slow-ish healthy service "
               "is marked unhealthy)",
               (f"{KG4}.No False Alarm Under Normal Load With A Slower API",)),
        Defect("tasks-no-reconnect", "the task service never re-opens a lost database connection",
               (f"{VIK}.The Task Service Reconnects After A Database Restart",)),
        Defect("tasks-token-not-checked", "the task service accepts any bearer token, or none",
               (f"{VIK}.A Missing Token Is Refused", f"{VIK}.An Invalid Token Is Refused")),
        Defect("tasks-info-needs-token", "the task service's open info route demands a token (liveness probes "
               "without one see 401)", (f"{VIK}.Info Is Open Without A Token",
                                        f"{KG1}.Task Service Answers Through The Gateway",
                                        f"{KG1}.Every Service Answers Its Health Check")),
        Defect("tasks-delete-ignored", "deleting a task answers success and deletes nothing",
               (f"{VIK}.Tasks Can Be Read, Updated And Deleted",)),
        Defect("tasks-all-first-project-only", "/api/v1/tasks/all lists only the first project's tasks",
               (f"{VIK}.All Tasks Lists Every Project's Tasks", f"{VIK}.Tasks Are Served Through The Gateway")),
        Defect("tasks-wrong-project", "a new task is stored in the first project, not the one asked for",
               (f"{VIK}.A Task Lands In The Project It Was Created In",)),
        Defect("query-slow-path", "a slow path adds 30 % to every query's latency (a regression only a "
               "baseline comparison sees: every absolute target still holds)",
               (f"{KG5}.Query Latency Matches The Saved Baseline",),
               reference_test=f"{KG5}.Baseline Is Established From Three Runs"),
        Defect("memory-grows-under-load", "every query keeps 32 KB for ever: the API's memory grows under load",
               (f"{KG5_TARGETS}.Memory Stays Flat Under Repeated Normal Load",)),
        Defect("query-concurrency-capped", "the API answers at most 4 queries at once (a worker pool sized for a "
               "few users): normal load is served, peak load queues",
               (f"{KG5_TARGETS}.Peak Profile Meets The Targets Without Tripping A Breaker",
                f"{KG5}.Stress Profile Is Served Below One Percent Errors",
                f"{KG5}.Capacity Exceeds The Peak Profile")),
        Defect("validation-as-500", "request validation errors are answered 500 instead of the contract's 400",
               tuple(f"{ERR}.{t}" for t in ("Malformed JSON Is A 400 With The Contract's Error Body",
                                            "A Missing Query Field Is A 400", "An Oversized Query Is A 400",
                                            "An Out-Of-Range Token Limit Is A 400"))),
        Defect("stack-trace-in-error-body", "an LLM failure's 500 answer carries the Python traceback in its details",
               (f"{ERR}.No Error Answer Leaks A Stack Trace Or A Secret",)),
        Defect("redis-down-hangs", "the API's Redis calls have no timeout: a silent Redis makes queries hang",
               (f"{ERR}.Queries Are Answered Promptly While Redis Does Not Answer",)),
        Defect("gateway-no-upstream-timeout", "the gateway waits for ever for an upstream that accepted and "
               "never answers", (f"{ERR}.A Hung Upstream Is A 504 At The Gateway Within The Bound",)),
        Defect("wrong-sources", "answers cite the documents that did not match the question",
               (f"{RAG}.An Answer Cites The Document Its Facts Come From",
                f"{RAG}.Answers Stay Right While The Cache Breaker Is Open")),
        Defect("max-tokens-ignored", "max_tokens is ignored: every answer is full length",
               (f"{RAG}.The Token Limit Is Honoured",)),
        Defect("cache-never-written", "answers are never written to the query cache",
               (f"{RAG}.A Query Is Cached Once And Served Faster On Repeat",
                f"{KG1}.A Query Writes Its Answer To The Redis Cache")),
        Defect("cache-never-hit", "the query cache is written but never read: repeats take the full path",
               (f"{RAG}.A Query Is Cached Once And Served Faster On Repeat",
                f"{RAG}.The Cache Is Not Read While Its Breaker Is Open")),
        Defect("docs-search-misranks", "document search returns its results worst first",
               (f"{RAG}.Document Search Ranks The Right Document First",)),
        Defect("queries-not-recorded", "query requests leave no entry in the xnai_queries stream",
               (f"{RAG}.Every Query Leaves One Record With Its Request ID",)),
        Defect("cache-breaker-ignored", "the API reads and writes the cache while the redis_cache breaker is open",
               (f"{RAG}.Answers Stay Right While The Cache Breaker Is Open",
                f"{RAG}.The Cache Is Not Read While Its Breaker Is Open")),
        Defect("cache-read-past-open-breaker", "the redis_cache breaker guards only the cache's writes: the API "
               "still reads it while the breaker is open", (f"{RAG}.The Cache Is Not Read While Its Breaker Is Open",)),
        Defect("tts-truncated-wav", "synthesised speech loses its second half; the WAV header still promises "
               "the whole clip", (f"{VOICE}.Synthesised Speech Is A Valid WAV Of Plausible Duration",
                                  f"{VOICE}.A Spoken Command Is Recognised Word For Word",
                                  f"{VOICE}.The Wake Word Is Heard Only When Spoken")),
        Defect("voice-breaker-never-opens", "the voice breakers never open: a failing engine is called for ever",
               (f"{VOICE}.A Failing Synthesiser Opens Its Breaker And Queries Still Answer",
                f"{VOICE}.A Failing Recogniser Opens Its Breaker And Queries Still Answer")),
        Defect("query-over-target", "every answer takes 600 ms longer: over the seed's 500 ms p99 target at any load",
               (f"{KG5}.Baseline Is Established From Three Runs",
                f"{KG5_TARGETS}.Baseline Profile Meets The Query Target",
                f"{KG5_TARGETS}.Normal Profile Meets The Query, Error And Memory Targets")),
        Defect("docs-search-slow", "document search takes 400 ms (the index is re-read for every search)",
               (f"{KG5_TARGETS}.Document Search Stays Under 300 ms At The Normal Rate",)),
        Defect("routing-errors-bare", "a wrong method or an unknown route is answered with the framework's bare "
               "{\"detail\": ...} body: no error code, request id or suggestion",
               (f"{ERR}.A Wrong Method Is A 405", f"{ERR}.An Unknown Route Is A 404 From The API")),
        Defect("llm-error-body-bare", "an LLM failure is answered 500 with the bare {\"detail\": ...} body "
               "(as FastAPI's HTTPException gives it): no error code, request id or suggestion",
               (f"{ERR}.An LLM Failure Is A 500 With The Contract's Error Body",)),
        Defect("internal-error-without-request-id", "an error no handler expects is answered by the framework's "
               "last-resort handler, outside the request-id middleware: the 500 has no X-Request-ID",
               (f"{ERR}.An Unexpected Error Is A 500 With The Contract's Error Body",)),
        Defect("token-rate-per-ms", "an answer's token_rate_tps is computed per millisecond (a units slip): "
               "a thousandth of the rate",
               (f"{RAG}.An Answer's Figures Agree With Each Other",)),
        Defect("tasks-db-down-500", "the task service answers 500 (not 503) while its database is down",
               (f"{ERR}.The Task Service Answers 503 Promptly While Its Database Is Down",)),
        Defect("gateway-masks-upstream-errors", "the gateway answers a refused upstream with a friendly page and "
               "status 200, hiding the outage from clients and monitors",
               (f"{ERR}.A Refused Upstream Is A 502 At The Gateway",)),
        Defect("stream-ends-silently-on-error", "an LLM failure mid-stream just ends the stream: no error frame",
               (f"{ERR}.An LLM Failure Mid-Stream Ends In An Error Frame",)),
        Defect("use-rag-ignored", "use_rag=false is ignored: answers still retrieve and cite sources",
               (f"{RAG}.Without Retrieval An Answer Cites No Source",)),
        Defect("stream-cites-fewer-sources", "the stream's sources frame cites only the first of the plain "
               "answer's sources", (f"{RAG}.Streamed And Plain Answers Agree",)),
        Defect("stt-slow", "speech recognition takes 3.5 s longer per clip (its model loaded for every clip)",
               (f"{VOICE}.A Voice Round Trip Is Within The Latency Bound",)),
        Defect("ui-drops-stream", "the Chainlit UI waits for the whole answer and sends it as one message, "
               "never streaming a token over its WebSocket",
               (f"{KG1}.A Question Through The UI WebSocket Is Answered In Streamed Tokens",)),
    )
}


def validate(names: list[str], setting: str) -> None:
    """Fail naming the unknown switches and the known ones."""
    unknown = [n for n in names if n not in DEFECTS]
    if unknown:
        known = ", ".join(sorted(DEFECTS))
        raise ValueError(
            f"{setting}: unknown defect switch(es) {', '.join(unknown)}. "
            f"Known switches: {known}. List them with: python -m testbed defects"
        )
