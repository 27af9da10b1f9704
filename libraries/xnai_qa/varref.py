"""The variables reference: every variable a target file defines, what it means, its value per target
and profile, and which suites and libraries read it.  ``./qa docs`` writes ``docs/variables.html``.

``DESCRIPTIONS`` is the one place a variable is explained; ``tests/utest/test_varref.py`` fails when a target
file defines a variable that has no description here.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

DESCRIPTIONS: dict[str, str] = {
    "TARGET": "testbed (the embedded testbed) or xnai (a real stack): decides whether the run starts a testbed.",
    "PROFILE": "The timing profile: fast (seconds, for CI) or production (the contract's and the seed's timings).",
    "TIMINGS": "The profile's timings as a dictionary: monitor interval, check timeout, unhealthy_after_failures, "
               "restart_cooldown_s, "
               "breakers (name -> failure_threshold, recovery_timeout_s, success_threshold, half_open_max_calls), "
               "breaker_ttl_s, token delay, stream timeout, load duration.",
    "ALLOWED_HOSTS": "Non-loopback hosts probes, load and faults may reach (loopback is always allowed).",
    "SERVICES": "Service name -> {host, port, health_url, health_json, proxy, proxy_url, proxy_port, "
                "compose_service, container}: every service the suite may reach or fault, by name.",
    "REQUIRED_SERVICES": "The names in SERVICES that must answer before the first test (KG-1 checks each).",
    "GATEWAY_URL": "The Caddy gateway, as clients reach it.",
    "RAG_API_URL": "The RAG API reached directly (behind the gateway).",
    "API_PREFIX": "The API's route prefix (the stack's code: /xnai/api/v1; the gateway keeps it).",
    "HEALTH_PATH": "The API's health route under API_PREFIX.",
    "QUERY_PATH": "The query route under API_PREFIX (/query in the code, /api/query in the seed).",
    "STREAM_PATH": "The SSE stream route under API_PREFIX.",
    "QUERY_FIELD": "The request body's question field (query in the code, question in the seed).",
    "QUERY_PARAMETER_RANGES": "Each numeric query parameter's allowed range, both ends included (the stack's "
                              "request schema: max_tokens 1..2048, temperature 0..2, top_p 0..1).",
    "REDIS_URL": "redis://host:port/db or rediss:// for TLS; the password is never in the URL.",
    "REDIS_PASSWORD": "The stack's REDIS_PASSWORD, a Secret read from XNAI_REDIS_PASSWORD (testbed: generated).",
    "REDIS_CA_FILE": "CA file for a TLS Redis (XNAI_REDIS_CA_FILE); empty for plain Redis.",
    "BREAKER_KEY_PATTERN": "Where a breaker's state lives in Redis: circuit_breaker:{name} (stack) or cb:{name}:state "
                           "(seed).",
    "BREAKER_STATE_FORMAT": "json (the stack's JSON state) or plain (the seed's OPEN/CLOSED/HALF_OPEN).",
    "HEALTH_CHECK_KEY": "The Redis key the API's health check writes (xnai_health_check).",
    "HEALTH_CHECK_KEY_TTL_S": "That key's expiry in seconds (10).",
    "QUERY_STREAM_KEY": "The Redis stream of query records (xnai_queries).",
    "QUERY_STREAM": "The Redis stream the RAG suite reads one record per query from.",
    "QUERY_CACHE_PATTERN": "The query cache's key pattern (query:*).",
    "SSE_GRAMMAR": "The stream's frame vocabulary: type_field, sources, token, done, error, content_field.",
    "STREAM_DEBUG_PATH": "Testbed only: the API route reporting open streams, tasks and descriptors (empty: those "
                         "KG-3 checks skip, naming it).",
    "STREAM_FIRST_EVENT_MS": "Bound on the time to a stream's first event.",
    "STREAM_TOTAL_MS": "Bound on a whole stream (the server's stream timeout + 1.5 s).",
    "SLOW_TOKEN_DELAY": "Per-token delay that pushes a stream past the server's timeout (KG-3 timeout test).",
    "LEAK_MIN_GROWTH_KB": "Leak rule: memory that grows in every round by more than this in all is a leak.",
    "LEAK_MAX_SLOPE_KB": "Leak rule: memory that grows by more than this per round is a leak.",
    "LEAK_SETTLE": "How long descriptor rounds wait for connections the server closes late (its keep-alive).",
    "LLM_CONTROL_PATH": "Testbed only: the route that slows or fails the stand-in LLM (empty: tests that need it "
                        "skip).",
    "LLM_CONTROL_URL": "The full URL of a stand-in model's control outside the API (tools/real_stack.py); used "
                       "instead of LLM_CONTROL_PATH when set.",
    "BREAKER_CONTROL_PATH": "Testbed only: the route that takes a breaker out of the call path (the overhead "
                            "baseline).",
    "BREAKER_OVERHEAD_MS": "The seed's bound on a breaker's overhead per call (2 ms).",
    "BREAKER_RECOVERY_BOUND_S": "The seed's 'recovery within 60 s' (production: the rag_api recovery timeout + 15 s).",
    "BREAKER_LOAD_STAGE": "Each stage of the seed's breaker load scenarios (3 s fast, 60 s production).",
    "BREAKER_RECOVERY_LOAD": "The recovery-under-load scenario's load: recovery timeout + one stage.",
    "CASCADE": "The cascade pair {downstream_service, downstream_breaker, upstream_breaker, error_budget}; "
               "empty: the cascade test skips, saying so.",
    "MONITOR_URL": "The health monitor's HTTP base (XNAI_MONITOR_URL; empty: the monitor tests skip, naming it).",
    "MONITOR_PATHS": "The monitor's routes: aggregate, detailed, recovery, callbacks (alert registration), hold "
                     "(testbed: hold recovery actions); an empty route is a capability the target lacks.",
    "AGGREGATE_HEALTH_PATH": "The seed's aggregate health route through the gateway (/health).",
    "HEALTH_DETECTION_BOUND_S": "Bound on detecting a stopped or paused service: interval x (failures + 1) + timeout.",
    "HEALTH_RECOVERY_BOUND_S": "Bound on a recovery action and the service healthy again.",
    "ALERT_RECEIVER_PORT": "Port of the suite's alert receiver (0: any free port; on a real stack the one its "
                           "callbacks point to).",
    "VIKUNJA_URL": "The task service reached directly.",
    "VIKUNJA_GATEWAY_PREFIX": "The gateway's route to the task service (/vikunja in older Caddyfiles; empty: none).",
    "VIKUNJA_TOKEN": "The task service's bearer token, a Secret (XNAI_VIKUNJA_TOKEN).",
    "VIKUNJA_DB": "The task service's database {host, port, dbname, user} (empty: row checks skip).",
    "VIKUNJA_DB_PASSWORD": "That database's password, a Secret (XNAI_VIKUNJA_DB_PASSWORD).",
    "UI_URL": "The Chainlit UI (empty: through the gateway's catch-all, as the browser reaches it).",
    "UI_SOCKETIO_PATH": "Chainlit's Socket.IO path (/ws/socket.io).",
    "LOAD_PROFILES": "The seed's four load profiles: name -> {users, rate, duration} (baseline, normal, peak, stress).",
    "PROFILE_COOLDOWN": "Bound on waiting for the API to be idle before a baseline run.",
    "CAPACITY": "The capacity search: step, step_duration_s, max_rate, p99_ms, max_error_rate, max_memory_percent.",
    "PERFORMANCE_SERVICES": "Services whose memory and CPU a load profile records.",
    "BASELINE_REFERENCE_DIR": "A kept baseline folder to compare with (empty: this run's own baseline).",
    "ERROR_RESPONSE_BOUND_S": "How long an error answer may take (the task service's 503 with its database cut off).",
    "DEGRADED_ANSWER_BOUND_S": "How long a query may take while Redis does not answer.",
    "GATEWAY_TIMEOUT_BOUND_S": "The gateway's bound for an upstream that never answers (504).",
    "RAG_FACTS": "Questions whose answers live in the target's documents: [{question, source, answer_contains}] "
                 "(empty: the RAG tests that need them skip, saying so).",
    "VOICE_URL": "The voice service (empty on the stack, which has no voice endpoint: the voice tests skip).",
    "VOICE_CONTROL_PATH": "Testbed only: the route that makes a voice engine fail.",
    "VOICE_WAKE_WORD": "The assistant's wake word (hey nova).",
    "VOICE_COMMANDS": "Commands of the assistant's grammar that a round trip must keep word for word.",
    "VOICE_LATENCY_BOUND_MS": "Bound on a voice round trip (synthesis + recognition).",
    "RESPONSE_TIME_BOUND_MS": "The seed's KG-1 bound on a request/response (500 ms).",
    "HEALTH_P99_MS": "The seed's KG-5 health-check p99 target (100 ms).",
    "QUERY_P99_MS": "The seed's query p99 target (500 ms).",
    "API_P99_MS": "The document search's p99 target (300 ms).",
    "REQUEST_TIMEOUT_S": "Seconds one functional request may take.",
    "READY_TIMEOUT_S": "Seconds to wait for the required services before the first test.",
    "RESPONSE_TIME_SAMPLES": "Requests per response-time measurement.",
    "STOP_GRACE_S": "Seconds a stopped service gets before it is killed.",
    "SERVICE_LOG_DIR": "Folder of the services' logs (testbed); empty: logs come from the container engine.",
    "FAULT_BACKEND": "process (the testbed's supervisor), docker (a Docker-compatible engine) or none.",
    "FAULT_PROXY_URL": "A Toxiproxy-compatible API for network and HTTP faults (empty: those tests skip).",
    "FAULT_LEDGER": "The file every fault is written to before it takes effect (healed by the next run).",
    "DOCKER_URL": "The container engine's API (Docker, or Podman's Docker-compatible socket).",
    "QUERY_RECORD_ID_FIELD": "The field of a ${QUERY_STREAM} record that names its request's id (txn_id in the "
                             "stack's code).",
    "TEST_TIMEOUTS": "Each suite's test timeout, from the durations its tests plan in the profile (never below a "
                     "floor).",
    "COMPOSE_PROJECT": "The compose project (XNAI_COMPOSE_PROJECT) whose containers FAULT_BACKEND=docker may act on; "
                       "no other project's container is touched.",
    "AGGREGATE_SERVICES": "The services the aggregate GET /health must name (the task service where the target runs "
                          "one).",
    "TESTBED_REACH": "Testbed only: full (with its controls) or bare (none of them, as the suite reaches a real stack; "
                     "XNAI_TESTBED_REACH=bare).",
    "TESTBED_BASE_PORT": "Testbed only: this process's base port (its services at fixed offsets from it).",
    "TESTBED_RUN_DIR": "Testbed only: its run folder (config, state, logs, ledger).",
}

TARGET_FILES = {"testbed (fast)": "variables/testbed.py", "xnai_host (production)": "variables/xnai_host.py",
                "xnai_compose (production)": "variables/xnai_compose.py"}


def load_target(relative: str, profile: str) -> dict:
    """The variables a target file defines (its ``get_variables()``) in ``profile``, as Robot would see them."""
    import os  # noqa: PLC0415

    os.environ["XNAI_PROFILE"] = profile
    path = REPO / relative
    spec = importlib.util.spec_from_file_location(f"_xnai_vars_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be loaded as Python")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_variables()


def readers(name: str) -> list[str]:
    """Suite, resource and library files that read ``name``."""
    found = []
    pattern = re.compile(r"[$&@%]\{" + re.escape(name) + r"[}\[ ]|\$" + re.escape(name) + r"\b")
    for path in sorted([*REPO.glob("suites/*.robot"), *REPO.glob("resources/*.resource")]):
        if pattern.search(path.read_text()):
            found.append(path.name)
    quoted = re.compile(r"[\"']" + re.escape(name) + r"[\"']|\$\{" + re.escape(name) + r"\}")
    for path in sorted([*REPO.glob("libraries/XNAi/**/*.py"), *REPO.glob("libraries/xnai_qa/**/*.py")]):
        if path.name != "varref.py" and quoted.search(path.read_text()):
            found.append(path.relative_to(REPO / "libraries").as_posix())
    return found


def _shown(value) -> str:
    if type(value).__name__ == "Secret":
        return "<secret>"
    text = json.dumps(value, default=str) if isinstance(value, (dict, list, tuple)) else str(value)
    return text if len(text) <= 400 else text[:400] + " ..."


def render(targets: dict[str, dict]) -> str:
    names = sorted(set().union(*targets.values()))
    head = "".join(f"<th>{html.escape(t)}</th>" for t in targets)
    rows = []
    for name in names:
        cells = "".join(f"<td><code>{html.escape(_shown(v[name])) if name in v else '-'}</code></td>"
                        for v in targets.values())
        rows.append(f"<tr id='{name}'><th><code>${{{name}}}</code></th><td>{html.escape(DESCRIPTIONS.get(name, ''))}"
                    f"</td>{cells}<td>{html.escape(', '.join(readers(name)))}</td></tr>")
    return ("<!doctype html><meta charset='utf-8'><title>XNAi suite: variables</title>"
            "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top;"
            "text-align:left}code{white-space:pre-wrap;word-break:break-word}table{border-collapse:collapse}"
            "</style><h1>Variables</h1><p>Every variable a target file defines: what it means, its value in "
            "each target file (secrets print as &lt;secret&gt;), and the suites, resources and libraries that "
            "read it. Generated by <code>./qa docs</code> from <code>libraries/xnai_qa/varref.py</code>.</p>"
            f"<table><tr><th>variable</th><th>meaning</th>{head}<th>read by</th></tr>{''.join(rows)}</table>")


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else REPO / "docs" / "variables.html"
    targets = {label: load_target(path, label.split("(")[1].rstrip(")")) for label, path in TARGET_FILES.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(targets))
    missing = sorted(set().union(*targets.values()) - set(DESCRIPTIONS))
    if missing:
        print(f"varref: no description for {', '.join(missing)} (add them to DESCRIPTIONS)", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
