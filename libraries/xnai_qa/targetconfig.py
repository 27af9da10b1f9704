"""The variables every target profile must define, and their validation.

A variables file (``variables/*.py``) returns these names.  ``validate``
collects *every* problem, each naming the variable and the fix, so a run
stops once, at start, with one clear message.  The loopback policy lives here
too: load, faults and probes only go to loopback or to hosts the variables
file lists in ``ALLOWED_HOSTS``.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from xnai_contract import API_PREFIX, QUERY_PARAMETER_RANGES
from xnai_contract import profile as timing_profile

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


def _number(value: Any) -> float | None:
    """A number, or a string that is one (``--variable NAME:600`` on the command line gives a string)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _positive(value: Any) -> str | None:
    number = _number(value)
    if number is None or number <= 0:
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


def _count(value: Any) -> str | None:
    number = _number(value)
    if number is None or number <= 0 or number != int(number):
        return "must be a whole number above 0"
    return None


def _at_least_zero(value: Any) -> str | None:
    number = _number(value)
    if number is None or number < 0:
        return "must be a number of 0 or more"
    return None


def _port_or_zero(value: Any) -> str | None:
    number = _number(value)
    if number is None or number != int(number) or not 0 <= number < 65536:
        return "must be a port 1..65535, or 0 for any free one"
    return None


def _seconds(text: Any) -> float:
    """A Robot time string ('5 min', '4s', '1m 30s') or a number, in seconds; ValueError if neither."""
    from robot.utils import timestr_to_secs  # noqa: PLC0415

    if isinstance(text, bool):
        raise ValueError(text)
    return float(timestr_to_secs(text))


def _duration(value: Any) -> str | None:
    try:
        ok = _seconds(value) > 0
    except (ValueError, TypeError):
        ok = False
    return None if ok else "must be a positive time such as '5 min', '30s' or 4"


def _string(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a string (may be empty)"


def _path_or_empty(value: Any) -> str | None:
    return None if value == "" else _path(value)


def _secret_or_empty(value: Any) -> str | None:
    return None if _is_secret(value) else "must be a robot.api.types.Secret (read it from an environment variable)"


def _rate(value: Any) -> bool:
    from .load import parse_rate  # noqa: PLC0415

    try:
        return parse_rate(value) > 0
    except (ValueError, TypeError):
        return False


def _load_profiles(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not all(name in value for name in LOAD_PROFILE_NAMES):
        return f"must be a dictionary with the seed's profiles {', '.join(LOAD_PROFILE_NAMES)}"
    for name, profile in value.items():
        if not isinstance(profile, Mapping) or set(profile) < {"users", "rate", "duration"}:
            return f"profile '{name}' must have users, rate and duration"
        if _count(profile["users"]) or not _rate(profile["rate"]) or _duration(profile["duration"]):
            return (f"profile '{name}' has users {profile['users']!r}, rate {profile['rate']!r}, duration "
                    f"{profile['duration']!r}: use a whole number of users, a rate such as '10/s' and a time")
    return None


def _capacity(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "must be a dictionary"
    missing = [k for k in CAPACITY_KEYS if k not in value]
    if missing:
        return f"lacks {', '.join(missing)}"
    step = str(value["step"])
    step_ok = (step.endswith("%") and step[:-1].replace(".", "", 1).isdigit() and float(step[:-1]) > 0) or _rate(step)
    if not step_ok:
        return f"has step {value['step']!r}: use a percentage such as '10%' or a rate such as '50/s'"
    if not _rate(value["max_rate"]):
        return f"has max_rate {value['max_rate']!r}: use a rate such as '2000/s'"
    for key in ("step_duration_s", "p99_ms", "max_memory_percent"):
        if _positive(value[key]):
            return f"has {key} {value[key]!r}: use a positive number"
    if _fraction(value["max_error_rate"]):
        return f"has max_error_rate {value['max_error_rate']!r}: use a fraction such as 0.01"
    return None


def _fraction(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        return "must be a fraction from 0 up to 1"
    return None


def _str_map(*required: str, paths: bool = False) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
            return "must be a dictionary of strings"
        missing = [k for k in required if k not in value]
        if missing:
            return f"lacks {', '.join(missing)}"
        if paths:
            bad = [k for k, v in value.items() if v and not v.startswith("/")]
            if bad:
                return f"has {', '.join(bad)} not starting with '/' (a path, or '' where the target has none)"
        return None

    return check


def _ranges(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not value:
        return "must be a dictionary of parameter -> [low, high]"
    for name, bounds in value.items():
        numbers = isinstance(bounds, (list, tuple)) and len(bounds) == 2 and all(
            isinstance(b, (int, float)) and not isinstance(b, bool) for b in bounds)
        if not numbers or bounds[0] >= bounds[1]:
            return f"has {name} {bounds!r}: use [low, high] with low below high"
    return None


def _timeouts(value: Any) -> str | None:
    if not isinstance(value, Mapping) or any(_duration(v) for v in value.values()):
        return "must be a dictionary of suite -> time (it follows from the profile: leave it to common_variables)"
    return None


def _mapping(value: Any) -> str | None:
    return None if isinstance(value, Mapping) else "must be a dictionary"


def _vikunja_db(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return "must be a dictionary ({} when the task service's database is not reachable)"
    if value and [k for k in ("host", "port", "dbname", "user") if k not in value]:
        return "lacks one of host, port, dbname, user"
    return None


def _facts(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)):
        return "must be a list (may be empty)"
    for fact in value:
        if not isinstance(fact, Mapping) or not {"question", "source"} <= set(fact):
            return "each fact must be a dictionary with question, source (and answer_contains)"
    return None


def _phrases(value: Any) -> str | None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in value):
        return "must be a list of non-empty strings (may be empty)"
    return None


LOAD_PROFILE_NAMES = ("baseline", "normal", "peak", "stress")
CAPACITY_KEYS = ("step", "step_duration_s", "max_rate", "p99_ms", "max_error_rate", "max_memory_percent")


@dataclass(frozen=True)
class Rule:
    check: Callable[[Any], str | None]
    hint: str
    required: bool = True  # False: checked where the variables file sets it


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
    "QUERY_PARAMETER_RANGES": Rule(_ranges, "{'max_tokens': [1, 2048], 'temperature': [0.0, 2.0], 'top_p': [0.0, 1.0]} "
                                   "in the stack's request schema"),
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
    "LLM_CONTROL_URL": Rule(_url_or_empty,
                            "the full URL of a model control outside the API (tools/real_stack.py), or ''"),
    "FAULT_LEDGER": Rule(_nonempty_str, "a file that records faults until they are undone"),
    "CASCADE": Rule(_cascade, "{} or {'downstream_service': ..., 'downstream_breaker': ..., "
                              "'upstream_breaker': 'rag_api', 'error_budget': 0.01}"),
    "BREAKER_RECOVERY_BOUND_S": Rule(_positive, "the seed's breaker recovery bound: 60"),
    # Bounds and targets (milliseconds, seconds, kilobytes, counts)
    "API_P99_MS": Rule(_positive, "the seed's API p99 target: 300"),
    "QUERY_P99_MS": Rule(_positive, "the seed's query p99 target: 500"),
    "BREAKER_OVERHEAD_MS": Rule(_positive, "the seed's breaker overhead bound: 2"),
    "DEGRADED_ANSWER_BOUND_S": Rule(_positive, "seconds a degraded answer may take"),
    "ERROR_RESPONSE_BOUND_S": Rule(_positive, "seconds an error answer may take"),
    "GATEWAY_TIMEOUT_BOUND_S": Rule(_positive, "seconds the gateway may hold a hung upstream"),
    "HEALTH_CHECK_KEY_TTL_S": Rule(_positive, "the expiry of the health check's Redis key"),
    "HEALTH_DETECTION_BOUND_S": Rule(_positive, "seconds the monitor may take to see a service down"),
    "HEALTH_RECOVERY_BOUND_S": Rule(_positive, "seconds a recovery may take"),
    "LEAK_MAX_SLOPE_KB": Rule(_positive, "memory growth per round that counts as a leak, in KB"),
    "LEAK_MIN_GROWTH_KB": Rule(_positive, "total growth below which memory is not a leak, in KB"),
    "RESPONSE_TIME_SAMPLES": Rule(_count, "how many requests a response-time measurement sends"),
    "STOP_GRACE_S": Rule(_at_least_zero, "seconds between SIGTERM and SIGKILL when a test stops a service"),
    "STREAM_FIRST_EVENT_MS": Rule(_positive, "milliseconds until a stream's first event"),
    "STREAM_TOTAL_MS": Rule(_positive, "milliseconds a whole stream may take"),
    "VOICE_LATENCY_BOUND_MS": Rule(_positive, "the seed's voice round-trip bound"),
    "ALERT_RECEIVER_PORT": Rule(_port_or_zero, "the loopback port of the KG-4 alert receiver, 0 for any"),
    # Durations (Robot time strings)
    "BREAKER_LOAD_STAGE": Rule(_duration, "each stage of KG-2's stepped load, e.g. '60s'"),
    "BREAKER_RECOVERY_LOAD": Rule(_duration, "the load held while a breaker recovers, e.g. '120s'"),
    "LEAK_SETTLE": Rule(_duration, "how long descriptors may take to close after a round, e.g. '8s'"),
    "PROFILE_COOLDOWN": Rule(_duration, "the quiet time between KG-5 runs, e.g. '5 min'"),
    "SLOW_TOKEN_DELAY": Rule(_duration, "the per-token delay of a slow model, e.g. '10s'"),
    # KG-5's load profiles and capacity search, the suites' timeouts, the contract's timings
    "LOAD_PROFILES": Rule(_load_profiles, "{'baseline': {'users': 1, 'rate': '1/s', 'duration': '5 min'}, "
                                          "'normal': ..., 'peak': ..., 'stress': ...}"),
    "CAPACITY": Rule(_capacity, "{'step': '10%', 'step_duration_s': 300, 'max_rate': '2000/s', 'p99_ms': 1000, "
                                "'max_error_rate': 0.01, 'max_memory_percent': 95}"),
    "TEST_TIMEOUTS": Rule(_timeouts, "set by common_variables from the profile"),
    "TIMINGS": Rule(_mapping, "set by common_variables from the profile"),
    # Paths ('' where the target has no such route)
    "AGGREGATE_HEALTH_PATH": Rule(_path, "/health at the gateway"),
    "UI_SOCKETIO_PATH": Rule(_path, "/ws/socket.io (Chainlit)"),
    "LLM_CONTROL_PATH": Rule(_path_or_empty, "the testbed's /_debug/llm, or ''"),
    "STREAM_DEBUG_PATH": Rule(_path_or_empty, "the testbed's /_debug/streams, or ''"),
    "BREAKER_CONTROL_PATH": Rule(_path_or_empty, "the testbed's /_debug/breakers, or ''"),
    "VOICE_CONTROL_PATH": Rule(_path_or_empty, "the testbed's /_debug/voice, or ''"),
    "VIKUNJA_GATEWAY_PREFIX": Rule(_path_or_empty, "the task service's prefix at the gateway (/vikunja), or ''"),
    "MONITOR_PATHS": Rule(_str_map("aggregate", "detailed", "recovery", paths=True),
                          "{'aggregate': '/health', 'detailed': '/health/detailed', 'recovery': '/health/recovery', "
                          "'callbacks': '', 'hold': ''}"),
    "SSE_GRAMMAR": Rule(_str_map("type_field", "token", "done", "error"),
                        "the stream's event names: {'type_field': 'type', 'token': 'token', 'done': 'done', ...}"),
    # URLs ('' where the target has none)
    "MONITOR_URL": Rule(_url_or_empty, "the health monitor's API, or ''"),
    "UI_URL": Rule(_url_or_empty, "the Chainlit UI reached directly, or '' (through the gateway)"),
    "VIKUNJA_URL": Rule(_url_or_empty, "the task service, or '' where the stack runs none"),
    "VOICE_URL": Rule(_url_or_empty, "the voice service, or ''"),
    "DOCKER_URL": Rule(_url_or_empty, "unix:///var/run/docker.sock, Podman's socket, or ''", required=False),
    # Names, lists and other strings
    "AGGREGATE_SERVICES": Rule(_str_list, "the services the aggregate health report must cover"),
    "PERFORMANCE_SERVICES": Rule(_str_list, "the services KG-5 captures resources of"),
    "QUERY_CACHE_PATTERN": Rule(_nonempty_str, "the query cache's Redis keys, e.g. query:*"),
    "QUERY_RECORD_ID_FIELD": Rule(_nonempty_str, "the query record's id field (txn_id in the stack)"),
    "QUERY_STREAM": Rule(_nonempty_str, "the Redis stream of query records"),
    "QUERY_STREAM_KEY": Rule(_nonempty_str, "the Redis stream of query records"),
    "RAG_FACTS": Rule(_facts, "[{'question': ..., 'source': ..., 'answer_contains': ...}] or []"),
    "VOICE_COMMANDS": Rule(_phrases, "phrases of the voice grammar, or []"),
    "VOICE_WAKE_WORD": Rule(_nonempty_str, "the assistant's wake word"),
    "COMPOSE_PROJECT": Rule(_string, "the compose project whose containers faults may touch, or ''"),
    "BASELINE_REFERENCE_DIR": Rule(_string, "a folder of saved baselines to compare with, or ''"),
    "SERVICE_LOG_DIR": Rule(_string, "a folder with one <service>.log each, or ''", required=False),
    "REDIS_CA_FILE": Rule(_string, "the CA file of a TLS Redis, or ''", required=False),
    "VIKUNJA_DB": Rule(_vikunja_db, "{'host': ..., 'port': ..., 'dbname': 'vikunja', 'user': ...} or {}"),
    "TESTBED_REACH": Rule(_choice("full", "bare"), "XNAI_TESTBED_REACH: full or bare", required=False),
    "TESTBED_BASE_PORT": Rule(_port_or_zero, "XNAI_TESTBED_BASE_PORT", required=False),
    "TESTBED_RUN_DIR": Rule(_nonempty_str, "the testbed's run folder", required=False),
    "VIKUNJA_TOKEN": Rule(_secret_or_empty, "from XNAI_VIKUNJA_TOKEN", required=False),
    "VIKUNJA_DB_PASSWORD": Rule(_secret_or_empty, "from XNAI_VIKUNJA_DB_PASSWORD", required=False),
}


def validate(variables: Mapping[str, Any]) -> None:
    """Raise ``TargetConfigError`` listing every missing or malformed variable."""
    problems = []
    for name, rule in RULES.items():
        if name not in variables:
            if rule.required:
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
        for list_name in ("AGGREGATE_SERVICES", "PERFORMANCE_SERVICES"):
            strangers = [s for s in variables[list_name] if s not in services]
            if strangers:
                problems.append(f"${{{list_name}}} names {', '.join(strangers)}, not in ${{SERVICES}} "
                                f"(known: {', '.join(services)}).")
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
    addrs = {str(info[4][0]) for info in infos}
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
    timings = timing_profile(profile_name)
    production = timings.name == "production"
    variables = {
        "PROFILE": timings.name,
        "ALLOWED_HOSTS": [],
        "API_PREFIX": API_PREFIX,
        "HEALTH_PATH": "/health",
        "QUERY_PATH": "/query",
        "STREAM_PATH": "/stream",
        "QUERY_FIELD": "query",
        "QUERY_PARAMETER_RANGES": {name: list(bounds) for name, bounds in QUERY_PARAMETER_RANGES.items()},
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
            Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
            / "xnai-qa" / "fault-ledger.jsonl"),
        "DOCKER_URL": os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"),
        # The task service's token and the health monitor: from the environment (empty: those tests fail
        # naming the variable, or skip where the stack offers no such route).
        "VIKUNJA_TOKEN": Secret(os.environ.get("XNAI_VIKUNJA_TOKEN", "")),
        "VIKUNJA_DB_PASSWORD": Secret(os.environ.get("XNAI_VIKUNJA_DB_PASSWORD", "")),
        "MONITOR_URL": os.environ.get("XNAI_MONITOR_URL", ""),
        "ALERT_RECEIVER_PORT": int(os.environ.get("XNAI_ALERT_RECEIVER_PORT", "0") or 0),
    }


def env_port(env: str, default: int) -> int:
    """The port in the environment variable ``env`` (``default`` when unset), for the targets' files."""
    raw = os.environ.get(env, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise ValueError(f"{env}={raw!r} is not a port number; unset it or set a whole number.") from None


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
