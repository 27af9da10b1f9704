"""The variables every target profile must define, and their validation.

A variables file (``variables/*.py``) returns these names.  ``validate``
collects *every* problem, each naming the variable and the fix, so a run
stops once, at start, with one clear message.  The loopback policy lives here
too: load, faults and probes only go to loopback or to hosts the variables
file lists in ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable

SERVICE_KEYS = ("host", "port")


class TargetConfigError(ValueError):
    """One or more target variables are missing or malformed."""


def _is_secret(value: Any) -> bool:
    return type(value).__name__ == "Secret" and hasattr(value, "value")


def _nonempty_str(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty string"


def _path(value: Any) -> str | None:
    if not isinstance(value, str) or not value.startswith("/"):
        return "must be a path starting with '/'"
    return None


def _url(value: Any) -> str | None:
    if not isinstance(value, str) or "://" not in value:
        return "must be a URL such as http://127.0.0.1:8000"
    return None


def _positive(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return "must be a positive number"
    return None


def _secret(value: Any) -> str | None:
    if not _is_secret(value):
        return "must be a robot.api.types.Secret (read it from an environment variable; never a plain string)"
    if not value.value:
        return "is empty: set the environment variable the variables file reads it from"
    return None


def _choice(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _services(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not value:
        return "must be a dictionary of service name -> {host, port, ...}"
    for name, svc in value.items():
        if not isinstance(svc, Mapping):
            return f"entry '{name}' must be a dictionary with host and port"
        missing = [k for k in SERVICE_KEYS if k not in svc]
        if missing:
            return f"entry '{name}' lacks {', '.join(missing)}"
        port = svc["port"]
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            return f"entry '{name}' has port {port!r}; use a whole number 1..65535"
        if "process_match" in svc:
            pattern = svc["process_match"]
            try:
                re.compile(pattern)
            except (re.error, TypeError) as err:
                return f"entry '{name}' has process_match {pattern!r}, not a regular expression ({err})"
    return None


def _url_or_empty(value: Any) -> str | None:
    return None if value == "" else _url(value)


def _str_list(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        return "must be a list of host names (may be empty)"
    return None


CASCADE_KEYS = ("downstream_service", "downstream_breaker", "upstream_breaker", "error_budget")


def _cascade(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "must be a dictionary (or empty)"
    if not value:
        return None
    missing = [k for k in CASCADE_KEYS if k not in value]
    if missing:
        return f"lacks {', '.join(missing)}"
    budget = value["error_budget"]
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 <= budget < 1:
        return f"has error_budget {budget!r}; use a fraction such as 0.01"
    return None


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], str | None]
    hint: str


RULES: dict[str, Rule] = {
    "TARGET": Rule(_choice("testbed", "xnai"), "testbed for the embedded testbed, xnai for a real stack"),
    "PROFILE": Rule(_choice("fast", "production"), "the timing profile"),
    "SERVICES": Rule(_services, "e.g. {'rag_api': {'host': '127.0.0.1', 'port': 8002}}"),
    "REQUIRED_SERVICES": Rule(_str_list, "the names in SERVICES the KG-1 suite checks"),
    "ALLOWED_HOSTS": Rule(_str_list, "non-loopback hosts you allow probes and faults to reach"),
    "GATEWAY_URL": Rule(_url, "the Caddy gateway, e.g. http://127.0.0.1:8000"),
    "RAG_API_URL": Rule(_url, "the RAG API reached directly, e.g. http://127.0.0.1:8002"),
    "API_PREFIX": Rule(_path, "/xnai/api/v1 in the stack's code"),
    "HEALTH_PATH": Rule(_path, "/health (appended to API_PREFIX)"),
    "QUERY_PATH": Rule(_path, "/query in the stack's code, /api/query in the seed"),
    "STREAM_PATH": Rule(_path, "/stream in the stack's code"),
    "QUERY_FIELD": Rule(_nonempty_str, "'query' in the stack's code, 'question' in the seed"),
    "REDIS_URL": Rule(_url, "redis://host:port/db or rediss:// for TLS (no password in the URL)"),
    "REDIS_PASSWORD": Rule(_secret, "REDIS_PASSWORD comes from the XNAI_REDIS_PASSWORD environment variable"),
    "BREAKER_KEY_PATTERN": Rule(_nonempty_str, "circuit_breaker:{name} (stack) or cb:{name}:state (seed)"),
    "BREAKER_STATE_FORMAT": Rule(_choice("json", "plain"), "json (stack) or plain OPEN/CLOSED (seed)"),
    "HEALTH_CHECK_KEY": Rule(_nonempty_str, "xnai_health_check in the stack"),
    "RESPONSE_TIME_BOUND_MS": Rule(_positive, "the seed's KG-1 bound: 500"),
    "HEALTH_P99_MS": Rule(_positive, "the seed's KG-5 health-check p99 target: 100"),
    "REQUEST_TIMEOUT_S": Rule(_positive, "seconds one functional request may take"),
    "READY_TIMEOUT_S": Rule(_positive, "seconds to wait for a target to become reachable"),
    "FAULT_BACKEND": Rule(_choice("process", "docker", "none"), "process (testbed), docker (real stack) or none"),
    "FAULT_PROXY_URL": Rule(_url_or_empty, "a Toxiproxy-compatible API such as http://127.0.0.1:8474, or ''"),
    "LLM_CONTROL_URL": Rule(_url_or_empty, "the full URL of a model control outside the API (tools/real_stack.py), or ''"),
    "FAULT_LEDGER": Rule(_nonempty_str, "a file that records faults until they are undone"),
    "CASCADE": Rule(_cascade, "{} or {'downstream_service': ..., 'downstream_breaker': ..., "
                              "'upstream_breaker': 'rag_api', 'error_budget': 0.01}"),
    "BREAKER_RECOVERY_BOUND_S": Rule(_positive, "the seed's breaker recovery bound: 60"),
}


def validate(variables: Mapping[str, Any]) -> None:
    """Raise ``TargetConfigError`` listing every missing or malformed variable."""
    problems = []
    for name, rule in RULES.items():
        if name not in variables:
            problems.append(f"${{{name}}} is missing ({rule.hint}).")
            continue
        err = rule.check(variables[name])
        if err:
            problems.append(f"${{{name}}} {err} ({rule.hint}).")
    if not problems:
        services = variables["SERVICES"]
        unknown = [s for s in variables["REQUIRED_SERVICES"] if s not in services]
        if unknown:
            problems.append(
                f"${{REQUIRED_SERVICES}} names {', '.join(unknown)}, not in ${{SERVICES}} "
                f"(known: {', '.join(services)})."
            )
        for name, svc in services.items():
            try:
                check_host_allowed(svc["host"], variables["ALLOWED_HOSTS"])
            except TargetConfigError as err:
                problems.append(f"${{SERVICES}}['{name}']: {err}")
        problems += url_problems(variables)
    if problems:
        raise TargetConfigError(
            "The target's variables are not usable:\n- " + "\n- ".join(problems)
            + "\nFix the variables file given with --variablefile (default: variables/testbed.py)."
        )


# Every URL the suite may connect to: each must name a loopback host or one in ALLOWED_HOSTS.
URL_VARIABLES = ("GATEWAY_URL", "RAG_API_URL", "REDIS_URL", "FAULT_PROXY_URL", "MONITOR_URL", "VIKUNJA_URL",
                 "VOICE_URL", "DOCKER_URL", "LLM_CONTROL_URL")
SERVICE_URL_KEYS = ("health_url", "proxy_url")


def url_host(url: str) -> str:
    """The host a URL connects to, read strictly: a URL that different parsers could read differently
    (user info, a backslash, whitespace, no host) raises ``TargetConfigError``."""
    from urllib.parse import urlsplit  # noqa: PLC0415

    if not isinstance(url, str) or any(c in url for c in "\\ \t\r\n"):
        raise TargetConfigError(f"'{url}' has a backslash or whitespace: write a plain scheme://host:port/path")
    parts = urlsplit(url)
    if parts.scheme == "unix":  # a local socket (the Docker engine)
        return "localhost"
    if "@" in parts.netloc:
        raise TargetConfigError(f"'{url}' carries user info ('@'): credentials go in Secret variables, and "
                                "parsers disagree on which host such a URL names")
    if not parts.hostname:
        raise TargetConfigError(f"'{url}' names no host: write scheme://host:port")
    return parts.hostname


def check_url(url: str, allowed: list[str] | tuple[str, ...] | None) -> str:
    """The one gate every address passes before the suite connects: ``url`` read strictly
    (``url_host``), its host loopback (every address it resolves to) or listed in ``allowed``.
    Returns the host; raises ``TargetConfigError`` naming the problem."""
    host = url_host(url)
    check_host_allowed(host, allowed or [])
    return host


def url_problems(variables: Mapping[str, Any]) -> list[str]:
    """Every URL variable (and each service's health_url and proxy_url) whose host is not allowed."""
    allowed = variables.get("ALLOWED_HOSTS") or []
    urls = [(f"${{{name}}}", variables.get(name)) for name in URL_VARIABLES]
    for service, entry in (variables.get("SERVICES") or {}).items():
        urls += [(f"${{SERVICES}}['{service}'][{key}]", entry.get(key)) for key in SERVICE_URL_KEYS]
    problems = []
    for where, url in urls:
        if url in (None, ""):
            continue
        try:
            check_url(url, allowed)
        except TargetConfigError as err:
            problems.append(f"{where}: {err}")
    return problems


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    try:
        return _loopback_ip(host.strip("[]"))
    except ValueError:
        pass
    if host == "localhost":
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    addrs = {info[4][0] for info in infos}
    return bool(addrs) and all(_loopback_ip(a) for a in addrs)


def _loopback_ip(text: str) -> bool:
    """An address (IPv4, IPv6 with a zone, IPv4-mapped IPv6) in a loopback range; ValueError if none."""
    ip = ipaddress.ip_address(text.split("%")[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def check_host_allowed(host: str, allowed: list[str] | tuple[str, ...]) -> None:
    """Refuse a host that is neither loopback nor explicitly allowed."""
    if host in allowed or is_loopback(host):
        return
    raise TargetConfigError(
        f"host '{host}' is not loopback and not in ${{ALLOWED_HOSTS}}. Probes, load and faults only go to "
        "127.0.0.1/::1 unless you list the host in ALLOWED_HOSTS of your variables file."
    )


def common_variables(profile_name: str) -> dict[str, Any]:
    """The values every profile shares: the contract's paths, names, timings and SLOs.

    Variables files start from these and set hosts, ports and secrets.
    """
    from .contract import API_PREFIX, profile  # noqa: PLC0415

    timings = profile(profile_name)
    production = timings.name == "production"
    variables = {
        "PROFILE": timings.name,
        "ALLOWED_HOSTS": [],
        "API_PREFIX": API_PREFIX,
        "HEALTH_PATH": "/health",
        "QUERY_PATH": "/query",
        "STREAM_PATH": "/stream",
        "QUERY_FIELD": "query",
        "BREAKER_KEY_PATTERN": "circuit_breaker:{name}",
        "BREAKER_STATE_FORMAT": "json",
        "HEALTH_CHECK_KEY": "xnai_health_check",
        "HEALTH_CHECK_KEY_TTL_S": 10,
        "QUERY_STREAM_KEY": "xnai_queries",
        "SSE_GRAMMAR": {"type_field": "type", "sources": "sources", "token": "token", "done": "done",
                        "error": "error", "content_field": "content"},
        "STREAM_DEBUG_PATH": "",
        "STREAM_FIRST_EVENT_MS": 2000 if timings.name == "fast" else 5000,
        "STREAM_TOTAL_MS": int(timings.stream_timeout_s * 1000 + 1500),
        "SLOW_TOKEN_DELAY": "250ms" if timings.name == "fast" else "10s",
        "LEAK_MIN_GROWTH_KB": 1024,
        "LEAK_SETTLE": "8s",
        "LEAK_MAX_SLOPE_KB": 1024,
        "LLM_CONTROL_PATH": "",
        "LLM_CONTROL_URL": "",
        "BREAKER_CONTROL_PATH": "",
        "BREAKER_OVERHEAD_MS": 2,
        # The seed's "recovery within 60 s".  The contract's rag_api recovery timeout is itself 60 s, so in
        # the production profile the bound is that timeout plus 15 s (the seed and the code disagree).
        "BREAKER_RECOVERY_BOUND_S": max(60, int(timings.breaker("rag_api").recovery_timeout_s) + 15),
        # Each stage of the seed's breaker load scenarios: seconds in the fast profile, a minute in production.
        "BREAKER_LOAD_STAGE": f"{timings.load_duration_s:g}s",
        # Recovery under load: the breaker's recovery timeout plus one stage.
        "BREAKER_RECOVERY_LOAD": f"{timings.breaker('rag_api').recovery_timeout_s + timings.load_duration_s:g}s",
        # The cascade scenario's pair: a downstream service B with its own breaker, and the upstream breaker A.
        # Empty: the target names no such pair and the test is skipped, saying so.
        "CASCADE": {},
        # The health monitor (KG-4).  Detection: checks every interval, unhealthy after N failures, each
        # check bounded by its timeout; one interval of slack for the phase of the loop.
        "MONITOR_URL": "",
        "MONITOR_PATHS": {"aggregate": "/health", "detailed": "/health/detailed", "recovery": "/health/recovery",
                          "callbacks": "", "hold": ""},
        "AGGREGATE_HEALTH_PATH": "/health",
        # The services the aggregate report must name (the stack's; a target adds the task service it runs).
        "AGGREGATE_SERVICES": ["rag_api", "redis", "postgres"],
        "HEALTH_DETECTION_BOUND_S": round(timings.monitor_interval_s * (timings.unhealthy_after_failures + 1)
                                          + timings.check_timeout_s, 1),
        # Recovery: detection up to the rule's failure count (5 at most), then the action and a restart.
        "HEALTH_RECOVERY_BOUND_S": round(timings.monitor_interval_s * 6 + timings.check_timeout_s + 20, 1),
        "ALERT_RECEIVER_PORT": 0,
        "VIKUNJA_URL": "",
        "VIKUNJA_GATEWAY_PREFIX": "",
        # The Chainlit UI: empty URL = through the gateway's catch-all (as the browser reaches it).
        "UI_URL": "",
        "UI_SOCKETIO_PATH": "/ws/socket.io",
        "VIKUNJA_DB": {},
        # KG-5: the seed's four load profiles (its durations in production; seconds in the fast profile),
        # the cooldown bound between baseline runs, the capacity search, the services whose resources
        # are captured, and where baselines are saved / compared from (empty reference: this run's).
        "LOAD_PROFILES": {
            "baseline": {"users": 1, "rate": "1/s", "duration": "5 min" if production else "5s"},
            "normal": {"users": 10, "rate": "10/s", "duration": "15 min" if production else "4s"},
            "peak": {"users": 50, "rate": "50/s", "duration": "10 min" if production else "4s"},
            "stress": {"users": 100, "rate": "100/s", "duration": "5 min" if production else "4s"},
        },
        "PROFILE_COOLDOWN": "5 min" if production else "10s",
        "CAPACITY": {"step": "10%" if production else "100%", "step_duration_s": 300 if production else 2,
                     "max_rate": "2000/s" if production else "640/s", "p99_ms": 1000, "max_error_rate": 0.01,
                     "max_memory_percent": 95},
        "PERFORMANCE_SERVICES": ["rag_api"],
        "BASELINE_REFERENCE_DIR": "",
        # Error handling: how long an error answer (or a degraded answer) may take, and the gateway's
        # bound for an upstream that never answers.
        "ERROR_RESPONSE_BOUND_S": 2 if not production else 5,
        "DEGRADED_ANSWER_BOUND_S": 10 if not production else 35,
        "GATEWAY_TIMEOUT_BOUND_S": 13 if not production else 65,
        # RAG: questions whose answers live in the target's documents (empty: those tests skip, saying so),
        # the query cache's key pattern and the per-query record stream.
        "RAG_FACTS": [],
        "QUERY_CACHE_PATTERN": "query:*",
        "QUERY_STREAM": "xnai_queries",
        "QUERY_RECORD_ID_FIELD": "txn_id",  # the field of a query record naming its request (the stack's code)
        # Voice: the stack runs it inside its API and UI processes with no HTTP endpoint of its own, so a
        # real target leaves VOICE_URL empty and the voice tests skip, saying so.
        "VOICE_URL": "",
        "VOICE_CONTROL_PATH": "",
        "VOICE_WAKE_WORD": "hey nova",
        "VOICE_COMMANDS": [],
        "VOICE_LATENCY_BOUND_MS": 3000 if not production else 5000,
        "TIMINGS": timings.as_dict(),
        "RESPONSE_TIME_BOUND_MS": 500,
        "HEALTH_P99_MS": 100,
        "QUERY_P99_MS": 500,
        "API_P99_MS": 300,
        "REQUEST_TIMEOUT_S": 10,
        "READY_TIMEOUT_S": 60,
        "RESPONSE_TIME_SAMPLES": 30,
        "STOP_GRACE_S": 10,
        "COMPOSE_PROJECT": "",
    }
    variables["TEST_TIMEOUTS"] = test_timeouts(variables, timings)
    return variables


def test_timeouts(variables: Mapping[str, Any], timings) -> dict[str, str]:
    """Each suite's test timeout, from the durations its tests plan in this profile: half as long again
    as the longest plan, plus a minute, never below the suite's own floor.  So no test ends on its
    timeout because a profile's durations grew (the production profile's load runs last 5 to 15 min,
    its capacity steps 5 min each)."""
    from robot.utils import timestr_to_secs  # noqa: PLC0415

    durations = {name: timestr_to_secs(p["duration"]) for name, p in variables["LOAD_PROFILES"].items()}
    cooldown = timestr_to_secs(variables["PROFILE_COOLDOWN"])
    stage = timings.load_duration_s
    recovery = timings.breaker("rag_api").recovery_timeout_s
    capacity = variables["CAPACITY"]["step_duration_s"] * CAPACITY_MAX_STEPS * 2  # each step repeated once at most
    plans = {  # suite -> (its longest test's planned seconds, the floor)
        "kg1": (3 * variables["REQUEST_TIMEOUT_S"], 60),
        "kg2": (3 * stage + 2 * recovery, 300),  # stepped load, then a recovery timeout under load
        "kg2_timing": (3 * stage + 120, 300),  # gradual load's three stages; the overhead's 64 rounds
        "kg3": (3 * timings.stream_timeout_s, 120),  # a stream held past the server's timeout, and rounds
        "kg4": (2 * variables["HEALTH_RECOVERY_BOUND_S"] + 4 * timings.monitor_interval_s, 180),
        "kg5_load": (max(durations.values()) + cooldown, 600),  # one profile run after a cooldown
        "kg5_baselines": (3 * (durations["baseline"] + cooldown) + durations["stress"], 600),
        "capacity": (capacity + cooldown, 600),
        "errors": (2 * variables["GATEWAY_TIMEOUT_BOUND_S"] + variables["DEGRADED_ANSWER_BOUND_S"], 120),
        "functional": (3 * variables["REQUEST_TIMEOUT_S"], 60),  # Vikunja, RAG, voice
    }
    return {suite: f"{int(max(floor, planned * 1.5 + 60))} seconds" for suite, (planned, floor) in plans.items()}


CAPACITY_MAX_STEPS = 50  # Find Capacity's bound on the steps of one search


def real_stack_variables(redis_host: str, redis_port: int) -> dict[str, Any]:
    """What both real-stack profiles (host and compose) read from the environment:
    Redis (TLS by default, password as a Secret), fault backend, proxy, ledger, Docker."""
    import os  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    from robot.api.types import Secret  # noqa: PLC0415

    tls = os.environ.get("XNAI_REDIS_TLS", "1") != "0"
    return {
        "TARGET": "xnai",
        "REDIS_URL": f"{'rediss' if tls else 'redis'}://{redis_host}:{redis_port}/0",
        "REDIS_PASSWORD": Secret(os.environ.get("XNAI_REDIS_PASSWORD", "")),
        "REDIS_CA_FILE": os.environ.get("XNAI_REDIS_CA_FILE", ""),
        "SERVICE_LOG_DIR": os.environ.get("XNAI_SERVICE_LOG_DIR", ""),  # a stack run as plain processes
        "FAULT_BACKEND": os.environ.get("XNAI_FAULT_BACKEND", "docker"),
        # The compose project whose containers the Docker backend may act on (and no other).
        "COMPOSE_PROJECT": os.environ.get("XNAI_COMPOSE_PROJECT", ""),
        "FAULT_PROXY_URL": os.environ.get("XNAI_FAULT_PROXY_URL", ""),
        # A stand-in model's control outside the stack's app (tools/real_stack.py sets it), else none.
        "LLM_CONTROL_URL": os.environ.get("XNAI_LLM_CONTROL_URL", ""),
        # Outside the repository, and outliving the run: the next run heals what a killed one left.
        "FAULT_LEDGER": os.environ.get("XNAI_FAULT_LEDGER") or str(
            Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "xnai-qa" / "fault-ledger.jsonl"),
        "DOCKER_URL": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        # The task service's token and the health monitor: from the environment (empty: those tests fail
        # naming the variable, or skip where the stack offers no such route).
        "VIKUNJA_TOKEN": Secret(os.environ.get("XNAI_VIKUNJA_TOKEN", "")),
        "VIKUNJA_DB_PASSWORD": Secret(os.environ.get("XNAI_VIKUNJA_DB_PASSWORD", "")),
        "MONITOR_URL": os.environ.get("XNAI_MONITOR_URL", ""),
        "ALERT_RECEIVER_PORT": int(os.environ.get("XNAI_ALERT_RECEIVER_PORT", "0") or 0),
    }


def api_url(get: Callable[..., Any], path: str, via: str) -> str:
    """The RAG API's ``path`` (under ``${API_PREFIX}``) through the ``gateway`` or ``direct`` (straight at it),
    its host checked against ``${ALLOWED_HOSTS}``; ``get(name, default)`` reads a variable."""
    from urllib.parse import urlparse  # noqa: PLC0415

    bases = {"gateway": get("GATEWAY_URL"), "direct": get("RAG_API_URL")}
    if via not in bases:
        raise TargetConfigError(f"via={via!r}: use gateway or direct.")
    url = f"{bases[via]}{get('API_PREFIX')}{path}"
    check_host_allowed(urlparse(url).hostname or "", get("ALLOWED_HOSTS", []) or [])
    return url
