"""What a target offers the suite: named capabilities, detected once at the start of a run.

A test states what it needs to cause or observe its condition with a tag, ``requires:<capability>``
(or the `Requires` keyword).  The target states what it offers through its variables, and where a
capability can be detected, a probe at start confirms it (an engine that answers, a route that is
there).  A test whose need is missing is SKIPPED before its setup runs, with a message naming the
capability and how to provide it; it never FAILs for it.  ``report.html`` shows the table at the top.

Only what the *suite* reaches into is a capability.  What the seed requires of the stack itself (an
aggregate health endpoint, a breaker that opens) is never one: its absence is a FAIL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

TAG_PREFIX = "requires:"
SKIP_PREFIX = "Missing capability"

Get = Callable[[str, Any], Any]  # reads a target variable: get(name, default)


@dataclass(frozen=True)
class Capability:
    name: str
    enables: str  # what a test can do with it, in a QA engineer's words
    provide: str  # how a target offers it
    variables: tuple[str, ...] = ()  # all must be non-empty
    service: str = ""  # a service that must be listed in ${SERVICES}
    check: Callable[[Get], str] | None = None  # any other condition: "" or why not

    def missing(self, get: Get) -> str:
        """"" when the variables offer it, else why not (the first thing missing)."""
        if self.service and self.service not in (get("SERVICES", {}) or {}):
            return f"no '{self.service}' service in ${{SERVICES}}"
        for name in self.variables:
            if not _nonempty(get(name, "")):
                return f"${{{name}}} is empty"
        return self.check(get) if self.check else ""

    def skip_message(self, detail: str = "") -> str:
        detail = f" ({detail.rstrip('.')})" if detail else ""
        return f"{SKIP_PREFIX} '{self.name}'{detail}: this test needs to {self.enables}. To provide it: {self.provide}"


def _logs(get: Get) -> str:
    if _nonempty(get("SERVICE_LOG_DIR", "")) or get("FAULT_BACKEND", "") == "docker":
        return ""
    return "${SERVICE_LOG_DIR} is empty and FAULT_BACKEND is not docker"


def _backend(get: Get) -> str:
    kind = get("FAULT_BACKEND", "")
    return "" if kind in ("process", "docker") else f"FAULT_BACKEND={kind!r} (use docker, or process for the testbed)"


def _llm_control(get: Get) -> str:
    if _nonempty(get("LLM_CONTROL_PATH", "")) or _nonempty(get("LLM_CONTROL_URL", "")):
        return ""
    return "${LLM_CONTROL_PATH} and ${LLM_CONTROL_URL} are empty"


def _figures(get: Get) -> str:
    if any((entry or {}).get("process_match") for entry in (get("SERVICES", {}) or {}).values()):
        return ""  # per service: a service without one fails naming it
    return _backend(get)


def _alerts(get: Get) -> str:
    if (get("MONITOR_PATHS", {}) or {}).get("callbacks") or int(get("ALERT_RECEIVER_PORT", 0) or 0):
        return ""
    return ("the monitor has no callbacks route in ${MONITOR_PATHS} and ${ALERT_RECEIVER_PORT} is 0, so no "
            "alert can reach the suite's receiver")


def _nonempty(value: Any) -> bool:
    inner = getattr(value, "value", value)  # a robot.api.types.Secret
    return bool(inner) if not isinstance(inner, str) else bool(inner.strip())


CAPABILITIES: dict[str, Capability] = {c.name: c for c in (
    Capability("llm-control", "make the model fail, stall or slow down on demand",
               "a control route on the RAG API named in ${LLM_CONTROL_PATH} (the testbed has one), or a stand-in "
               "model's control at ${LLM_CONTROL_URL} (tools/real_stack.py runs the stack's code with one).",
               check=_llm_control),
    Capability("fault-proxy", "put network faults (latency, resets, cut-offs, bandwidth) between services",
               "a Toxiproxy-compatible proxy in front of the services, XNAI_FAULT_PROXY_URL, and a 'proxy' "
               "entry in each proxied service of ${SERVICES} (README, 'Fault injection').",
               ("FAULT_PROXY_URL",)),
    Capability("service-control", "stop, pause, kill or restart a service of the stack",
               "FAULT_BACKEND=docker with ${DOCKER_URL} reaching the Docker engine or Podman's Docker-compatible "
               "socket, XNAI_COMPOSE_PROJECT naming the stack's compose project, and each service's "
               "compose_service in ${SERVICES} (the testbed controls its processes).",
               check=_backend),
    Capability("process-figures", "read a service's open descriptors, memory and threads",
               "the same reach as service-control (the testbed's processes, or the service's container through "
               "${DOCKER_URL}), or for a stack run as plain processes on this machine, a process_match (a "
               "regular expression of its command line) in the service's ${SERVICES} entry.",
               check=_figures),
    Capability("service-logs", "read what a service wrote to its log",
               "${SERVICE_LOG_DIR} (one <service>.log each), or the service's container through ${DOCKER_URL}.",
               check=_logs),
    Capability("stream-debug", "see from the server's side which answer streams are still open",
               "a route on the RAG API listing its open streams, named in ${STREAM_DEBUG_PATH} (the testbed has one).",
               ("STREAM_DEBUG_PATH",)),
    Capability("breaker-bypass", "take a circuit breaker out of the call path (the baseline of its overhead)",
               "a control route named in ${BREAKER_CONTROL_PATH} (the testbed has one).",
               ("BREAKER_CONTROL_PATH",)),
    Capability("cascade-pair", "stop a service the RAG API depends on and watch both circuit breakers",
               "${CASCADE}: {downstream_service, downstream_breaker, upstream_breaker, error_budget}, a service "
               "of the stack the RAG API calls, the breakers guarding each side, and the error rate allowed "
               "while the RAG API answers without it (the testbed names embeddings).",
               ("CASCADE",)),
    Capability("health-monitor", "read and drive the health monitor (its detailed report, recovery actions)",
               "XNAI_MONITOR_URL: the base URL of the monitor's HTTP report, and its routes in ${MONITOR_PATHS}.",
               ("MONITOR_URL",)),
    Capability("monitor-alerts", "receive the health monitor's alerts",
               "a callbacks route in ${MONITOR_PATHS} (the suite registers its receiver there), or the stack's "
               "alert callback pointed at http://<this machine>:${ALERT_RECEIVER_PORT}/alerts "
               "(XNAI_ALERT_RECEIVER_PORT).",
               check=_alerts),
    Capability("rag-facts", "ask questions whose answers live in known documents of the target",
               "${RAG_FACTS}: a list of question, source and answer_contains from the target's own documents.",
               ("RAG_FACTS",)),
    Capability("vikunja", "use the task service (Vikunja)",
               "a 'vikunja' service in ${SERVICES}, ${VIKUNJA_URL} and XNAI_VIKUNJA_TOKEN.",
               ("VIKUNJA_URL", "VIKUNJA_TOKEN"), service="vikunja"),
    Capability("vikunja-gateway", "reach the task service through the gateway",
               "${VIKUNJA_GATEWAY_PREFIX}: the path under which the gateway routes it (older Caddyfiles: /vikunja).",
               ("VIKUNJA_GATEWAY_PREFIX",)),
    Capability("vikunja-db", "read the task service's database",
               "${VIKUNJA_DB} (host, port, dbname, user) and XNAI_VIKUNJA_DB_PASSWORD.",
               ("VIKUNJA_DB", "VIKUNJA_DB_PASSWORD")),
    Capability("mkdocs", "read the documentation site (MkDocs)", "an 'mkdocs' service in ${SERVICES}.",
               service="mkdocs"),
    Capability("ui", "open the chat UI (Chainlit)", "a 'ui' service in ${SERVICES}.", service="ui"),
    Capability("voice", "talk to the voice endpoint (speech to text, text to speech)",
               "${VOICE_URL}: the base URL of the voice service.", ("VOICE_URL",)),
    Capability("voice-control", "make the voice engines fail on demand",
               "a control route named in ${VOICE_CONTROL_PATH} (the testbed has one).", ("VOICE_CONTROL_PATH",)),
)}


class UnknownCapability(ValueError):
    pass


def lookup(name: str) -> Capability:
    try:
        return CAPABILITIES[name]
    except KeyError:
        raise UnknownCapability(f"Unknown capability '{name}'. Known: {', '.join(sorted(CAPABILITIES))}.") from None


def required_by(tags: Iterable[str]) -> list[str]:
    """The capabilities a test's tags ask for (``requires:<name>``), in tag order."""
    return [str(t)[len(TAG_PREFIX):] for t in tags if str(t).startswith(TAG_PREFIX)]


def detect(get: Get, probes: Mapping[str, Callable[[], str]] | None = None) -> dict[str, str]:
    """{capability: "" if offered, else why not}.  ``probes`` confirm what variables alone cannot: each
    returns "" or the reason (for example, the container engine does not answer)."""
    out = {}
    probes = probes or {}
    for name, cap in CAPABILITIES.items():
        out[name] = cap.missing(get)
        if not out[name] and name in probes:
            out[name] = probes[name]()
    return out


def table(detected: Mapping[str, str], skipped: Mapping[str, int] | None = None) -> str:
    """The capability table in Robot's documentation syntax (report.html renders it as a table)."""
    rows = ["| =Capability= | =Offered= | =Tests skipped= | =Why not / how to provide= |"]
    for name, why in detected.items():
        count = (skipped or {}).get(name, 0)
        why = why.rstrip(".")
        cell = "" if not why else f"{why}. To provide it: {CAPABILITIES[name].provide}" if name in CAPABILITIES else why
        rows.append(f"| {name} | {'yes' if not why else '*no*'} | {count if why else ''} | {cell.replace('|', '/')} |")
    return "\n".join(rows)


def skipped_counts(tests: Iterable[Any]) -> dict[str, int]:
    """{capability: number of tests skipped for its lack}, from result tests' skip messages."""
    counts: dict[str, int] = {}
    for test in tests:
        message = getattr(test, "message", "") or ""
        if getattr(test, "status", "") != "SKIP":
            continue
        for line in message.splitlines():  # also "Skipped in parent suite setup:\n<the message>"
            if line.startswith(SKIP_PREFIX + " '"):
                name = line[len(SKIP_PREFIX) + 2:].split("'", 1)[0]
                counts[name] = counts.get(name, 0) + 1
                break
    return counts


def skip(name: str, why: str) -> Exception:
    """The SkipExecution to raise where a keyword finds capability ``name`` missing, for ``why``."""
    from robot.api.exceptions import SkipExecution  # noqa: PLC0415

    return SkipExecution(lookup(name).skip_message(why))


def require(name: str, get: Get) -> None:
    """Raises the SkipExecution naming capability ``name`` when the variables do not offer it."""
    why = lookup(name).missing(get)
    if why:
        raise skip(name, why)


def recount(output_xml: str) -> bool:
    """Rewrites the table in a merged output (pabot: each process saw only its own suites) with the
    whole run's skip counts; True when it changed.  ``python -m xnai_qa.capabilities results``."""
    from robot.api import ExecutionResult  # noqa: PLC0415

    result = ExecutionResult(output_xml)
    old = result.suite.metadata.get("Target capabilities")
    if not old:
        return False
    counts = skipped_counts(result.suite.all_tests)
    rows = old.split("\n")
    for index, row in enumerate(rows[1:], start=1):
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[1] == "*no*":
            cells[2] = str(counts.get(cells[0], 0))
            rows[index] = "| " + " | ".join(cells) + " |"
    new = "\n".join(rows)
    if new == old:
        return False
    result.suite.metadata["Target capabilities"] = new
    result.save()
    return True


def main(argv: list[str]) -> int:
    """``python -m xnai_qa.capabilities <results dir>``: recounts the merged output and rebuilds the
    log and report from it (``./qa run`` does this after pabot)."""
    from pathlib import Path  # noqa: PLC0415

    from robot import rebot  # type: ignore[attr-defined]  # noqa: PLC0415 - robot exports it untyped

    folder = Path(argv[0] if argv else "results")
    output = folder / "output.xml"
    if not output.exists() or not recount(str(output)):
        return 0
    import io  # noqa: PLC0415

    rc = rebot(str(output), outputdir=str(folder), output="NONE", log="log.html", report="report.html",
               xunit="xunit.xml", stdout=io.StringIO())
    return 0 if rc < 252 else rc  # the tests' own failures are not this step's


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
