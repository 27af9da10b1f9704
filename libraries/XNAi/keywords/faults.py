"""Fault injection on named services, always undone.

Service faults (stop, kill, pause, restart) go to the backend the variables
file names in ``${FAULT_BACKEND}``: ``process`` for the embedded testbed,
``docker`` for a real stack (``${DOCKER_URL}``; containers found by their
compose label or name).  Network and HTTP faults go to the fault proxy at
``${FAULT_PROXY_URL}`` (Toxiproxy's API; the testbed runs its own), on the
proxy named by the service's ``proxy`` entry in ``${SERVICES}``.

Every fault is written to the ledger (``${FAULT_LEDGER}``) before it takes
effect.  A fault left in place by a test is undone when the test ends (and
one left by a suite setup when the suite ends), with a warning; a run killed
outright leaves its ledger, and the next run heals it before testing.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any, overload

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import capabilities, safehttp, targetconfig
from xnai_qa.faults import heal_ledger
from xnai_qa.faults.backends import (
    DockerBackend,
    FaultError,
    ProxyClient,
    make_backend,
    perform_undo,
)

from xnai_contract.ledger import Ledger

from ..base import Context, LibraryComponent

STREAMS = ("downstream", "upstream")


@overload
def _seconds(value: timedelta | float, name: str, allow_zero: bool = True) -> float: ...
@overload
def _seconds(value: None, name: str, allow_zero: bool = True) -> None: ...
@overload
def _seconds(value: timedelta | float | None, name: str, allow_zero: bool = True) -> float | None: ...


def _seconds(value: timedelta | float | None, name: str, allow_zero: bool = True) -> float | None:
    """``value`` in seconds (None stays None: no duration); a negative one, or zero where not allowed, fails."""
    if value is None:
        return None
    secs = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if secs < 0 or (secs == 0 and not allow_zero):
        raise Failure(
            f"{name}={secs:g} s: use a {'non-negative' if allow_zero else 'positive'} time such as 200ms or 1.5s."
        )
    return secs


UNDO_LATE_S = 0.5  # a timed fault undone later than this after its time fails its test
STARTED_BY_UNDO = ("stop", "kill")  # faults whose undo starts the service again


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch)) + f".{int(epoch * 1000) % 1000:03d}"


# Faults of the model: once undone, the API must answer again before the next test (see _undo_many).
MODEL_FAULTS = ("slow_llm", "failing_llm", "crashing_llm")
# The variable naming each control route (under the RAG API, or under a base URL).
ROUTE_VARIABLE = {"llm-control": "LLM_CONTROL_PATH", "breaker-bypass": "BREAKER_CONTROL_PATH",
                  "voice-control": "VOICE_CONTROL_PATH"}


class FaultKeywords(LibraryComponent):
    """Injects faults into services of the XNAi target and guarantees they are undone.

    Services are named as in ``${SERVICES}``.  Times are Robot time strings
    (``200ms``, ``1.5s``, ``2 minutes``).  Every fault keyword returns a fault
    id for `Remove Fault`; ``duration`` makes a fault undo itself.
    """

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._active: dict[str, dict] = {}  # fault id -> ledger record (this process)
        self._scopes: list[list[str]] = [[]]
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}
        # Faults with a duration, this test's: when each was applied, due and really undone (wall clock).
        self._timed: dict[str, dict] = {}

    # ------------------------------------------------------------ config --
    def _ledger(self) -> Ledger:
        path = self._var("FAULT_LEDGER")
        if not path:
            raise Failure("${FAULT_LEDGER} is not set: the variables file must name a ledger file.")
        return Ledger(path)

    def _entry(self, service: str) -> dict:
        services = self._var("SERVICES") or {}
        if service not in services:
            raise Failure(f"No service named '{service}' in ${{SERVICES}}; faults only touch configured services. "
                          f"Known: {', '.join(services)}.")
        entry = dict(services[service])
        try:
            targetconfig.check_host_allowed(entry["host"], self._var("ALLOWED_HOSTS", []))
        except targetconfig.TargetConfigError as err:
            raise Failure(str(err)) from None
        return entry

    def _backend(self):
        try:
            return make_backend(self._var)
        except FaultError as err:
            raise capabilities.skip("service-control", str(err)) from None

    def _proxy(self, service: str) -> tuple[ProxyClient, str]:
        entry = self._entry(service)
        api = self._var("FAULT_PROXY_URL", "")
        if not api:
            raise capabilities.skip("fault-proxy", "${FAULT_PROXY_URL} is empty")
        if not entry.get("proxy"):
            raise capabilities.skip("fault-proxy", f"the traffic of '{service}' does not pass through it: "
                                    "no 'proxy' entry in ${SERVICES}")
        safehttp.check(api, self._var("ALLOWED_HOSTS", []))
        client = ProxyClient(api)
        try:
            client.proxy(entry["proxy"])
        except FaultError as err:
            raise Failure(str(err)) from None
        return client, entry["proxy"]

    # --------------------------------------------------------- bookkeeping --
    def _register(self, service: str, kind: str, undo: dict, detail: dict, duration: float | None) -> str:
        expires = time.time() + duration if duration else None
        fault_id = self._ledger().record_apply(service, kind, undo, detail, expires)
        with self._lock:
            self._active[fault_id] = {"id": fault_id, "service": service, "kind": kind, "undo": undo,
                                      "detail": detail}
            self._scopes[-1].append(fault_id)
        return fault_id

    def _arm(self, fault_id: str, duration: float | None) -> None:
        if duration:
            with self._lock:
                record = self._active[fault_id]
            applied = time.time()
            self._timed[fault_id] = {"id": fault_id, "kind": record["kind"], "service": record["service"],
                                     "applied_at": applied, "due_at": applied + duration, "fired_at": None,
                                     "undone_at": None, "outcome": None, "error": None}
            timer = threading.Timer(duration, self._undo_on_time, args=(fault_id,))
            timer.daemon = True
            self._timers[fault_id] = timer
            timer.start()

    def _undo_on_time(self, fault_id: str) -> None:
        """The timer's undo: what happened, and when, is kept for the test's log and verdict."""
        timed = self._timed.get(fault_id, {})
        timed["fired_at"] = time.time()
        try:
            timed["outcome"] = self._undo(fault_id)
        except Exception as err:  # noqa: BLE001 - reported by the test's end (and healed by the next run)
            timed["error"] = f"{type(err).__name__}: {err}"
        timed["undone_at"] = time.time()

    def _timed_report(self) -> tuple[list[str], list[str]]:
        """One line per timed fault of this test (applied, due, undone, real duration), and the problems:
        an undo later than ``UNDO_LATE_S`` after its time, or one that failed."""
        lines, problems = [], []
        for timed in self._timed.values():
            what = f"{timed['id']} ({timed['kind']} on {timed['service']})"
            due = timed["due_at"]
            if timed["error"]:
                problems.append(f"{what}: its undo at {_clock(due)} failed: {timed['error']}")
                continue
            if timed["undone_at"] is None:
                continue  # still in place: undone by the test's teardown or its end
            # A service fault's undo starts the service: on time is when the start was issued (the service
            # then takes its own start-up time, shown); every other undo is in effect when it returns.
            starts = timed["kind"] in STARTED_BY_UNDO
            effective = (timed["fired_at"] or timed["undone_at"]) if starts else timed["undone_at"]
            late = effective - due
            lines.append(f"{what}: applied {_clock(timed['applied_at'])}, due {_clock(due)}, "
                         + (f"start issued {_clock(effective)}, service up {_clock(timed['undone_at'])}"
                            if starts else f"undone {_clock(timed['undone_at'])}")
                         + f" ({timed['outcome']}): in place {effective - timed['applied_at']:.2f} s for "
                         f"{due - timed['applied_at']:g} s")
            if late > UNDO_LATE_S:
                problems.append(f"{what} was undone {late:.2f} s after its time (allowed {UNDO_LATE_S:g} s): "
                                "the fault lasted longer than the test meant")
        return lines, problems

    def _log_timed(self) -> None:
        lines, _problems = self._timed_report()
        for line in lines:
            logger.info(f"Timed fault {line}")

    def _apply(self, service: str, kind: str, undo: dict, detail: dict, duration: float | None, action) -> str:
        """Ledger first, then the action; if the action fails the fault is closed again."""
        fault_id = self._register(service, kind, undo, detail, duration)
        try:
            outcome = action()
        except (FaultError, requests.RequestException) as err:
            self._forget(fault_id, note=f"not applied: {err}")
            raise Failure(f"{kind} on '{service}' failed: {err}") from None
        self._arm(fault_id, duration)
        logger.info(f"{fault_id}: {kind} on {service} {detail or ''} ({outcome})"
                    + (f", to be undone at {_clock(self._timed[fault_id]['due_at'])} (after {duration:g} s; the "
                       "keyword returns at once)" if duration else ""))
        return fault_id

    def _forget(self, fault_id: str, note: str) -> None:
        with self._lock:
            self._active.pop(fault_id, None)
            for scope in self._scopes:
                if fault_id in scope:
                    scope.remove(fault_id)
        timer = self._timers.pop(fault_id, None)
        if timer:
            timer.cancel()
        self._ledger().record_undo(fault_id, note)

    def _undo(self, fault_id: str) -> str:
        with self._lock:
            record = self._active.get(fault_id)
        if record is None:
            return "already undone"
        outcome = perform_undo(record["undo"])
        self._forget(fault_id, note=outcome)
        return outcome

    def _undo_quietly(self, fault_id: str) -> None:
        try:
            self._undo(fault_id)
        except Exception:  # noqa: BLE001, S110 - the teardown or the next run heals it
            pass

    # ----------------------------------------------------- service faults --
    def _service_fault(self, action: str, service: str, grace: float | None, duration: float | None) -> str:
        entry = self._entry(service)
        backend = self._backend()
        undo_action = {"stop": "start", "kill": "start", "pause": "resume"}[action]
        try:
            if isinstance(backend, DockerBackend):
                undo = backend.spec(undo_action, service, entry)
                act = lambda: backend.act(action, service, entry, grace)  # noqa: E731
            else:
                undo = backend.spec(undo_action, service)
                act = lambda: backend.act(action, service, grace)  # noqa: E731
        except FaultError as err:
            raise Failure(str(err)) from None
        return self._apply(service, action, undo, {"grace_s": grace} if grace is not None else {}, duration, act)

    @keyword(tags=["requires:service-control"])
    def stop_service(self, service: str, grace: timedelta = timedelta(seconds=10),
                     duration: timedelta | None = None) -> str:
        """Stops ``service`` gracefully (SIGTERM / docker stop), forcing it after ``grace``. Returns the fault id.

        Undone by `Start Service`, `Remove Fault`, the end of the test, or after ``duration``.

        Example:
        | ${fault}= | Stop Service | rag_api | grace=5s |
        | Service Should Refuse Connections | rag_api |
        """
        return self._service_fault("stop", service, _seconds(grace, "grace"), _seconds(duration, "duration", False))

    @keyword(tags=["requires:service-control"])
    def kill_service(self, service: str, duration: timedelta | None = None) -> str:
        """Kills ``service`` at once (SIGKILL / docker kill). Returns the fault id.

        Example:
        | Kill Service | redis |
        """
        return self._service_fault("kill", service, None, _seconds(duration, "duration", False))

    @keyword(tags=["requires:service-control"])
    def pause_service(self, service: str, duration: timedelta | None = None) -> str:
        """Freezes ``service`` (SIGSTOP / docker pause): alive, holding its sockets, answering nothing.

        Example:
        | Pause Service | rag_api | duration=3s |
        """
        return self._service_fault("pause", service, None, _seconds(duration, "duration", False))

    def _close_faults(self, service: str, kinds: tuple[str, ...], note: str) -> None:
        with self._lock:
            matching = [fid for fid, rec in self._active.items() if rec["service"] == service and rec["kind"] in kinds]
        for fault_id in matching:
            self._forget(fault_id, note)

    @keyword(tags=["requires:service-control"])
    def start_service(self, service: str) -> None:
        """Starts ``service`` (no-op if running) and closes its stop/kill faults.

        Example:
        | Start Service | rag_api |
        """
        self._plain_action("start", service)
        self._close_faults(service, ("stop", "kill"), "started by Start Service")

    @keyword(tags=["requires:service-control"])
    def resume_service(self, service: str) -> None:
        """Resumes a paused ``service`` and closes its pause faults.

        Example:
        | Resume Service | rag_api |
        """
        self._plain_action("resume", service)
        self._close_faults(service, ("pause",), "resumed by Resume Service")

    @keyword(tags=["requires:service-control"])
    def restart_service(self, service: str, grace: timedelta = timedelta(seconds=10)) -> None:
        """Restarts ``service`` (stop with ``grace``, then start), as the health monitor's recovery does.

        Example:
        | Restart Service | rag_api |
        """
        self._plain_action("restart", service, _seconds(grace, "grace"))

    def _plain_action(self, action: str, service: str, grace: float | None = None) -> None:
        entry = self._entry(service)
        backend = self._backend()
        try:
            if isinstance(backend, DockerBackend):
                outcome = backend.act(action, service, entry, grace)
            else:
                outcome = backend.act(action, service, grace)
        except FaultError as err:
            raise Failure(str(err)) from None
        logger.info(outcome)

    @keyword("Service Instance ID", tags=["requires:service-control"])
    def service_instance_id(self, service: str) -> str:
        """An id of the running instance of ``service`` (pid, or container id and start time); changes on restart.

        Example:
        | ${before}= | Service Instance ID | rag_api |
        """
        entry = self._entry(service)
        backend = self._backend()
        if isinstance(backend, DockerBackend):
            return backend.instance_id(service, entry)
        return backend.instance_id(service)

    # ----------------------------------------------------- network faults --
    def _toxic(self, service: str, kind: str, ttype: str, attributes: dict, stream: str = "downstream",
               toxicity: float = 1.0, duration: float | None = None) -> str:
        if stream not in STREAMS:
            raise Failure(f"stream={stream!r}: use downstream (responses) or upstream (requests).")
        if not 0 <= float(toxicity) <= 1:
            raise Failure(f"toxicity={toxicity}: use a fraction between 0 and 1.")
        client, proxy = self._proxy(service)
        name = f"xnai_{ttype}_{stream}_{int(time.time() * 1000) % 10**9}"
        toxic = {"name": name, "type": ttype, "stream": stream, "toxicity": float(toxicity),
                 "attributes": attributes}
        undo = {"backend": "proxy", "api": client.api, "proxy": proxy, "toxic": name}
        return self._apply(service, kind, undo, {"type": ttype, "stream": stream, "toxicity": float(toxicity),
                                                 **attributes}, duration, lambda: client.add_toxic(proxy, toxic))

    @keyword(tags=["requires:fault-proxy"])
    def add_latency(self, service: str, latency: timedelta, jitter: timedelta = timedelta(0),
                    stream: str = "downstream", toxicity: float = 1.0, duration: timedelta | None = None) -> str:
        """Delays the traffic to ``service`` by ``latency`` ± ``jitter`` on each chunk.

        Example:
        | Add Latency | rag_api | 200ms | jitter=20ms |
        """
        lat, jit = _seconds(latency, "latency"), _seconds(jitter, "jitter")
        return self._toxic(service, "latency", "latency", {"latency": lat * 1000, "jitter": jit * 1000},
                           stream, toxicity, _seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def limit_bandwidth(self, service: str, rate_kb_per_s: float, stream: str = "downstream",
                        duration: timedelta | None = None) -> str:
        """Limits the traffic to ``service`` to ``rate_kb_per_s`` kilobytes per second.

        Example:
        | Limit Bandwidth | rag_api | 10 |
        """
        if rate_kb_per_s <= 0:
            raise Failure(f"rate_kb_per_s={rate_kb_per_s}: use a positive rate.")
        return self._toxic(service, "bandwidth", "bandwidth", {"rate": float(rate_kb_per_s)}, stream,
                           duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def reset_connections(self, service: str, after: timedelta = timedelta(0), toxicity: float = 1.0,
                          duration: timedelta | None = None) -> str:
        """Resets (TCP RST) connections to ``service`` ``after`` they open.

        Example:
        | Reset Connections | redis |
        """
        return self._toxic(service, "reset", "reset_peer", {"timeout": _seconds(after, "after") * 1000},
                           toxicity=toxicity, duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def blackhole_service(self, service: str, duration: timedelta | None = None) -> str:
        """Swallows every request to ``service``: connections open, nothing ever answers.

        Example:
        | Blackhole Service | rag_api | duration=2s |
        """
        return self._toxic(service, "blackhole", "timeout", {"timeout": 0}, "upstream",
                           duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def time_out_connections(self, service: str, after: timedelta, duration: timedelta | None = None) -> str:
        """Stops data to ``service`` and closes each connection ``after`` the given time.

        Example:
        | Time Out Connections | rag_api | 500ms |
        """
        return self._toxic(service, "timeout", "timeout", {"timeout": _seconds(after, "after", False) * 1000},
                           "upstream", duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def cut_responses_after(self, service: str, size_bytes: int, duration: timedelta | None = None) -> str:
        """Closes each connection from ``service`` after ``size_bytes`` of response: a cut mid-response.

        Example:
        | Cut Responses After | rag_api | 200 |
        """
        if size_bytes < 0:
            raise Failure(f"size_bytes={size_bytes}: use a number of bytes >= 0.")
        return self._toxic(service, "cut", "limit_data", {"bytes": int(size_bytes)},
                           duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def delay_connection_close(self, service: str, delay: timedelta, duration: timedelta | None = None) -> str:
        """Keeps each connection to ``service`` open ``delay`` longer when it closes.

        Example:
        | Delay Connection Close | rag_api | 1s |
        """
        return self._toxic(service, "slow_close", "slow_close", {"delay": _seconds(delay, "delay") * 1000},
                           duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def fail_requests(self, service: str, status: int = 503, count: int = 0, fraction: float = 1.0,
                      duration: timedelta | None = None) -> str:
        """Answers requests to ``service`` with HTTP ``status``: the next ``count`` (0 = all), or a ``fraction``.

        Example:
        | Fail Requests | rag_api | status=500 | count=3 |
        | Fail Requests | rag_api | fraction=0.5 |
        """
        if not 100 <= int(status) <= 599:
            raise Failure(f"status={status}: use an HTTP status code 100..599.")
        if count < 0:
            raise Failure(f"count={count}: use 0 (every request) or a positive number.")
        return self._toxic(service, "http_status", "http_status", {"status": int(status), "count": int(count)},
                           toxicity=fraction, duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def delay_first_byte(self, service: str, delay: timedelta, duration: timedelta | None = None) -> str:
        """Holds the first byte of each response from ``service`` for ``delay``: a slow first byte.

        Example:
        | Delay First Byte | rag_api | 300ms |
        """
        return self._toxic(service, "first_byte_delay", "first_byte_delay",
                           {"delay": _seconds(delay, "delay") * 1000}, duration=_seconds(duration, "duration", False))

    @keyword(tags=["requires:fault-proxy"])
    def cut_off_service(self, service: str, duration: timedelta | None = None) -> str:
        """Closes the path to ``service``: connections through the proxy are refused.

        Example:
        | Cut Off Service | redis |
        """
        client, proxy = self._proxy(service)
        undo = {"backend": "proxy", "api": client.api, "proxy": proxy, "enable": True}
        return self._apply(service, "cut_off", undo, {}, _seconds(duration, "duration", False),
                           lambda: client.set_enabled(proxy, False))

    # ------------------------------------------------------------- the LLM --
    def _control(self, capability: str, kind: str, control: dict, undo_body: dict,
                 duration: float | None, base: str | None = None, service: str = "rag_api") -> str:
        """A fault applied through one of the target's control routes (the capability's variable names
        the route under the API, or under ``base``)."""
        capabilities.require(capability, self._var)
        path = self._var(ROUTE_VARIABLE[capability])
        url = f"{base}{path}" if base else f"{self._var('RAG_API_URL')}{self._var('API_PREFIX')}{path}"
        return self._post_control(url, service, kind, control, undo_body, duration)

    def _post_control(self, url: str, service: str, kind: str, control: dict, undo_body: dict,
                      duration: float | None) -> str:
        """POSTs ``control`` to a control route as a fault whose undo POSTs ``undo_body`` there."""
        allowed = self._var("ALLOWED_HOSTS", [])
        safehttp.check(url, allowed)

        def act():
            resp = safehttp.request("POST", url, allowed, json=control, timeout=10)
            if resp.status_code != 200:
                raise FaultError(f"{url} answered {resp.status_code}: {resp.text[:200]}")
            return resp.json()

        return self._apply(service, kind, {"backend": "http", "url": url, "json": undo_body}, control, duration, act)

    def _llm(self, kind: str, control: dict, duration: float | None) -> str:
        undo = {"mode": "ok", "token_delay_s": None, "fail_after_tokens": 0}
        if self._var("LLM_CONTROL_URL", ""):  # a stand-in model's own control, outside the API
            return self._post_control(self._var("LLM_CONTROL_URL"), "rag_api", kind, control, undo, duration)
        return self._control("llm-control", kind, control, undo, duration)

    @keyword(tags=["requires:breaker-bypass"])
    def take_circuit_breaker_out_of_the_path(self, name: str) -> str:
        """Makes the RAG API call through without breaker ``name`` (testbed: ``${BREAKER_CONTROL_PATH}``):
        the baseline of the breaker-overhead measurement.  Undone like every fault.

        Example:
        | ${fault}= | Take Circuit Breaker Out Of The Path | rag_api |
        | Remove Fault | ${fault} |
        """
        return self._control("breaker-bypass", "breaker_bypassed",
                             {"name": name, "bypass": True}, {"name": name, "bypass": False}, None)

    @keyword("Slow Down The LLM", tags=["requires:llm-control"])
    def slow_down_the_llm(self, token_delay: timedelta, duration: timedelta | None = None) -> str:
        """Makes the RAG API's LLM produce one token per ``token_delay`` (testbed: ``${LLM_CONTROL_PATH}``).

        Example:
        | Slow Down The LLM | 250ms |
        """
        delay = _seconds(token_delay, "token_delay", allow_zero=False)
        if delay > 10:
            raise Failure(f"token_delay={delay:g} s: use at most 10 s.")
        return self._llm("slow_llm", {"mode": "slow", "token_delay_s": delay}, _seconds(duration, "duration", False))

    @keyword("Make The LLM Fail", tags=["requires:llm-control"])
    def make_the_llm_fail(self, duration: timedelta | None = None, after_tokens: int = 0) -> str:
        """Makes every generation of the RAG API's LLM fail (the ``rag_api`` breaker counts the failures).

        ``after_tokens`` lets a streamed answer send that many tokens first: a failure mid-stream.

        Example:
        | Make The LLM Fail |
        | Make The LLM Fail | after_tokens=5 |
        """
        if not 0 <= int(after_tokens) <= 2048:
            raise Failure(f"after_tokens={after_tokens}: use 0..2048.")
        control: dict[str, Any] = {"mode": "fail", "token_delay_s": None}
        if int(after_tokens):
            control["fail_after_tokens"] = int(after_tokens)
        return self._llm("failing_llm", control, _seconds(duration, "duration", False))

    @keyword("Make The LLM Crash", tags=["requires:llm-control"])
    def make_the_llm_crash(self, duration: timedelta | None = None) -> str:
        """Makes every generation raise an error the RAG API's handlers do not expect (a bug, not a
        model's reported failure), so the API's last-resort error handling answers.  On the real stack's
        stand-in model (``tools/real_stack.py``) it raises, as its ``fail`` does.

        Example:
        | Make The LLM Crash |
        """
        return self._llm("crashing_llm", {"mode": "crash", "token_delay_s": None},
                         _seconds(duration, "duration", False))

    @keyword(tags=["requires:voice-control"])
    def make_the_voice_engine_fail(self, engine: str, duration: timedelta | None = None) -> str:
        """Makes the voice service's ``tts`` (synthesis) or ``stt`` (recognition) engine fail on every
        call (testbed: ``${VOICE_CONTROL_PATH}``); its breaker counts the failures.  Undone like every fault.

        Example:
        | Make The Voice Engine Fail | tts |
        """
        if engine not in ("tts", "stt"):
            raise Failure(f"engine={engine!r}: use tts or stt.")
        return self._control("voice-control", f"failing_{engine}", {"fail": engine},
                             {"fail": None}, _seconds(duration, "duration", False), base=self._var("VOICE_URL"),
                             service="voice")

    @keyword("Hold The Health Monitor's Recovery Actions")
    def hold_the_health_monitors_recovery_actions(self) -> str:
        """Keeps the health monitor from acting (restarts, cache clears, reconnects) while the test runs;
        its checks go on, and what it would have done is recorded as held (``<action>_held`` at
        ``/health/recovery``).  Undone like a fault: by `Remove Fault`, `Remove All Faults` or the end of
        the test.  Returns the fault id, or an empty string where the target offers no hold
        (``${MONITOR_PATHS}[hold]`` empty: the log says so and nothing changes; a recovery action during
        the scenario then shows in its verdict).

        Use it where a measurement needs the same process from start to end (descriptor and memory
        rounds), so a slow health check on a busy machine cannot restart the service mid-measurement.

        Example:
        | [Setup] | Hold The Health Monitor's Recovery Actions |
        """
        path = (self._var("MONITOR_PATHS", {}) or {}).get("hold", "")
        if not path or not self._var("MONITOR_URL", ""):
            logger.warn("This target offers no way to hold its health monitor's recovery actions "
                        "(${MONITOR_PATHS}[hold] or ${MONITOR_URL} is empty): the monitor may act during this test.")
            return ""
        return self._post_control(f"{self._var('MONITOR_URL')}{path}", "monitor", "monitor_held",
                                  {"hold": True}, {"hold": False}, None)

    # --------------------------------------------------------- management --
    @keyword
    def remove_fault(self, fault_id: str) -> None:
        """Undoes one fault by its id (no error if it was already undone).

        Example:
        | ${fault}= | Add Latency | rag_api | 100ms |
        | Remove Fault | ${fault} |
        """
        try:
            logger.info(f"{fault_id}: {self._undo(fault_id)}")
        except FaultError as err:
            raise Failure(f"Undoing {fault_id} failed: {err}") from None

    @keyword
    def remove_all_faults(self) -> None:
        """Undoes every fault this run applied and that is still in place, newest first.

        Timed faults (``duration=``) that already undid themselves are logged with the time each was
        applied, due and really undone.

        Example:
        | [Teardown] | Remove All Faults |
        """
        self._undo_many(list(self._active))
        self._log_timed()

    def _undo_many(self, fault_ids: list[str], warn: bool = False) -> None:
        errors = []
        model_restored = False
        for fault_id in reversed(fault_ids):
            record = self._active.get(fault_id)
            if record is None:
                continue
            try:
                outcome = self._undo(fault_id)
                message = f"{fault_id} ({record['kind']} on {record['service']}) undone: {outcome}"
                if warn:
                    logger.warn(message + " at the end of its test; undo faults in a teardown.")
                else:
                    logger.info(message)
                model_restored |= record["kind"] in MODEL_FAULTS
            except FaultError as err:
                errors.append(f"{fault_id}: {err}")
        if errors:
            raise Failure("Some faults could not be undone (the next run heals them):\n" + "\n".join(errors))
        if model_restored:
            self._wait_until_the_api_answers()

    def _wait_until_the_api_answers(self) -> None:
        """After the model is restored, the RAG API must answer its health check again within the recovery
        bound before the next test starts: a stack that generates on its event loop still works off the
        requests queued behind the slow or failing model, and the next test must not inherit them."""
        logger.info("The model is restored: waiting for the RAG API to answer its health check again.")
        bound = float(self._var("HEALTH_RECOVERY_BOUND_S", 60))
        self.ctx.probes.wait_until_service_is_healthy("rag_api", timedelta(seconds=bound))

    @keyword
    def wait_for_timed_fault_to_end(self, fault_id: str, timeout: timedelta = timedelta(seconds=30)) -> dict:
        """Waits until a fault given a ``duration`` has undone itself, and returns when: ``applied_at``,
        ``due_at``, ``undone_at`` (epoch seconds), ``lasted_s`` and ``late_s``.  Fails if its undo failed,
        came more than 0.5 s after its time, or has not come within ``timeout``.  For a stopped or killed
        service the undo is on time when its start is issued on time (the service then takes its own
        start-up time, which the log shows).

        Example:
        | ${fault}= | Pause Service | redis | duration=2s |
        | ${times}= | Wait For Timed Fault To End | ${fault} |
        """
        timed = self._timed.get(fault_id)
        if timed is None:
            raise Failure(f"{fault_id} is not a timed fault of this test (give the fault keyword a duration).")
        deadline = time.monotonic() + timeout.total_seconds()
        while timed["undone_at"] is None and timed["error"] is None:
            if time.monotonic() >= deadline:
                raise Failure(f"{fault_id} was due at {_clock(timed['due_at'])} and is still in place after "
                              f"{timeout.total_seconds():g} s.")
            time.sleep(0.05)
        self._log_timed()
        problems = [p for p in self._timed_report()[1] if p.startswith(fault_id)]
        if problems:
            raise Failure("; ".join(problems))
        effective = timed["fired_at"] if timed["kind"] in STARTED_BY_UNDO else timed["undone_at"]
        return {"applied_at": timed["applied_at"], "due_at": timed["due_at"], "undone_at": timed["undone_at"],
                "lasted_s": round(effective - timed["applied_at"], 3), "late_s": round(effective - timed["due_at"], 3)}

    @keyword
    def faults_in_place(self) -> list:
        """The faults this run applied and not yet undone, as a list of dictionaries.

        Example:
        | ${faults}= | Faults In Place |
        | Should Be Empty | ${faults} |
        """
        return [dict(r) for r in self._active.values()]

    @keyword(tags=["requires:fault-proxy"])
    def network_path_should_be_clean(self, service: str) -> None:
        """Fails if the fault proxy in front of ``service`` is disabled or still holds a toxic.

        Example:
        | Network Path Should Be Clean | rag_api |
        """
        client, proxy = self._proxy(service)
        state = client.proxy(proxy)
        problems = []
        if not state.get("enabled", True):
            problems.append("the proxy is disabled (connections refused)")
        if state.get("toxics"):
            problems.append("toxics in place: " + ", ".join(f"{t['name']} ({t['type']})" for t in state["toxics"]))
        if problems:
            raise Failure(f"The path to '{service}' is not clean: " + "; ".join(problems) + ".")

    @keyword
    def heal_faults_from_earlier_runs(self) -> int:
        """Undoes faults that earlier runs recorded but never undid (a killed run); returns how many.

        Faults of runs still alive are left to them.

        Example:
        | Heal Faults From Earlier Runs |
        """
        path = self._var("FAULT_LEDGER")
        if not path:
            raise Failure("${FAULT_LEDGER} is not set: the variables file must name a ledger file.")
        try:
            healed = heal_ledger(path)
        except FaultError as err:
            raise Failure(f"Healing the fault ledger {path} failed: {err}") from None
        for line in healed:
            logger.warn(f"Healed a fault left by an earlier run: {line}")
        return len(healed)

    # ------------------------------------- called by the library's listener --
    def open_test_scope(self) -> None:
        self._scopes.append([])
        self._timed = {}

    def undo_test_faults(self, result) -> None:
        """Undoes the faults the test left (with a warning); one that cannot be undone, or a timed fault that
        outlived its time, fails the test."""
        leftovers = self._scopes.pop() if len(self._scopes) > 1 else []
        problems = []
        try:
            self._undo_many(leftovers, warn=True)
        except Failure as err:
            problems.append(str(err))
        problems += self._timed_report()[1]  # a fault that outlived its time fails the test that made it
        if problems:
            result.status = "FAIL"
            result.message = "\n".join([result.message, *problems]).strip()

    def undo_suite_faults(self) -> None:
        if len(self._scopes) == 1:
            leftovers, self._scopes[0] = self._scopes[0], []
            try:
                self._undo_many(leftovers, warn=True)
            except Failure as err:
                logger.error(str(err))

    def undo_all_faults(self) -> None:
        for fault_id in list(self._active):
            self._undo_quietly(fault_id)
