"""Client-side probes: how a service looks from outside (refused, timing out, cut, healthy again)."""

from __future__ import annotations

import socket
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import capabilities, safehttp, targetconfig

from ..base import LibraryComponent

OUTCOMES = ("ok", "refused", "reset", "closed", "timeout", "incomplete")


def classify(error: BaseException) -> str:
    """Name what a failed request met: refused, reset, closed, timeout or incomplete."""
    chain: list[BaseException] = []
    seen: BaseException | None = error
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__ or (seen.args[1] if len(getattr(seen, "args", ())) > 1
                                                         and isinstance(seen.args[1], BaseException) else None)
    text = " | ".join(f"{type(e).__name__}: {e}" for e in chain)
    if isinstance(error, (requests.Timeout, socket.timeout, TimeoutError)) or "timed out" in text.lower():
        return "timeout"
    if "ConnectionRefusedError" in text or "Connection refused" in text:
        return "refused"
    if "ConnectionResetError" in text or "reset by peer" in text:
        return "reset"
    if isinstance(error, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text \
            or "ended prematurely" in text:
        return "incomplete"
    if "RemoteDisconnected" in text or "closed connection without response" in text:
        return "closed"
    return f"error: {text[:200]}"


class ProbeKeywords(LibraryComponent):
    """Probes the target from the client side, bounded in time, and names what it sees."""

    def _check_url(self, url: str) -> None:
        safehttp.check(url, self._var("ALLOWED_HOSTS", []))

    def _service(self, name: str) -> dict:
        services = self._var("SERVICES", {})
        if name not in services:
            raise Failure(f"No service named '{name}' in ${{SERVICES}}. Known: {', '.join(services)}.")
        return services[name]

    @keyword("Probe URL")
    def probe_url(self, url: str, timeout: timedelta = timedelta(seconds=2), method: str = "GET") -> dict:
        """Sends one request and returns ``outcome`` (ok, refused, reset, closed, timeout, incomplete),
        ``status``, ``elapsed_ms`` and ``size`` (body bytes read).

        Example:
        | ${probe}= | Probe URL | ${url} | timeout=1s |
        """
        self._check_url(url)
        result = self._probe(url, timeout, method)
        logger.info(f"{method} {url}: {result}")
        return result

    def _probe(self, url: str, timeout: timedelta, method: str = "GET") -> dict:
        started = time.perf_counter()
        result: dict[str, Any] = {"url": url, "outcome": "ok", "status": None, "size": 0}
        try:
            allowed = self._var("ALLOWED_HOSTS", [])
            with safehttp.request(method, url, allowed, timeout=timeout.total_seconds(), stream=True) as resp:
                result["status"] = resp.status_code
                result["size"] = len(resp.content)
        except safehttp.RequestRefused as err:  # a redirect off loopback and ${ALLOWED_HOSTS}: not probed
            raise Failure(str(err)) from None
        except requests.RequestException as err:
            result["outcome"] = classify(err)
        result["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return result

    @keyword
    def request_should_fail_with(self, url: str, outcome: str, timeout: timedelta = timedelta(seconds=2)) -> dict:
        """Fails unless a request to ``url`` meets ``outcome``: refused, reset, closed, timeout, incomplete,
        or ``status <code>``.

        Example:
        | Request Should Fail With | ${url} | timeout | timeout=1s |
        | Request Should Fail With | ${url} | status 503 |
        """
        if outcome not in OUTCOMES[1:] and not outcome.startswith("status "):
            raise Failure(f"outcome={outcome!r}: use one of {', '.join(OUTCOMES[1:])} or 'status <code>'.")
        probe = self.probe_url(url, timeout)
        seen = probe["outcome"] if probe["outcome"] != "ok" else f"status {probe['status']}"
        if seen != outcome:
            raise Failure(f"Expected the request to {url} to end with '{outcome}', but it ended with '{seen}' "
                          f"after {probe['elapsed_ms']} ms.")
        return probe

    @keyword
    def request_should_succeed(self, url: str, timeout: timedelta = timedelta(seconds=2)) -> dict:
        """Fails unless a request to ``url`` is answered with a 2xx status within ``timeout``.

        Example:
        | Request Should Succeed | ${RAG_API_URL}/xnai/api/v1/health |
        """
        probe = self.probe_url(url, timeout)
        if probe["outcome"] != "ok" or not 200 <= (probe["status"] or 0) < 300:
            seen = probe["outcome"] if probe["outcome"] != "ok" else f"status {probe['status']}"
            raise Failure(f"The request to {url} ended with '{seen}' after {probe['elapsed_ms']} ms, not a 2xx answer.")
        return probe

    @keyword
    def service_should_refuse_connections(self, service: str) -> None:
        """Fails unless a TCP connection to ``service`` is refused (it is down, not hung).

        Example:
        | Service Should Refuse Connections | rag_api |
        """
        svc = self._service(service)
        try:
            targetconfig.check_host_allowed(svc["host"], self._var("ALLOWED_HOSTS", []))
        except targetconfig.TargetConfigError as err:
            raise Failure(str(err)) from None
        try:
            with socket.create_connection((svc["host"], svc["port"]), timeout=2):
                raise Failure(f"Service '{service}' at {svc['host']}:{svc['port']} still accepts connections.")
        except ConnectionRefusedError:
            logger.info(f"{service}: connection refused, as expected")
        except OSError as err:
            raise Failure(f"Service '{service}': expected a refusal, got {type(err).__name__}: {err}") from None

    @keyword(tags=["requires:service-logs"])
    def service_log_should_not_contain(self, service: str, *texts: str) -> None:
        """Fails if the log of ``service`` since its last start contains any of ``texts``.

        Reads ``${SERVICE_LOG_DIR}/<service>.log`` (testbed) or the container's log since it started
        (``FAULT_BACKEND=docker``).

        Example:
        | Service Log Should Not Contain | rag_api | was never awaited | Task was destroyed |
        """
        log = self._service_log(service)
        found = [t for t in texts if t in log]
        if found:
            lines = [line for line in log.splitlines() if any(t in line for t in found)][:5]
            raise Failure(f"The log of '{service}' contains {found}:\n" + "\n".join(lines))
        logger.info(f"{service}: {len(log.splitlines())} log lines since its start, none with {list(texts)}")

    def _service_log(self, service: str) -> str:
        self._service(service)
        folder = self._var("SERVICE_LOG_DIR", "")
        if folder:
            from pathlib import Path  # noqa: PLC0415

            path = Path(folder) / f"{service}.log"
            if not path.exists():
                raise Failure(f"No log at {path}.")
            text = path.read_text(errors="replace")
            return text.rsplit("--- start ", 1)[-1]
        get = self._var
        from xnai_qa.faults.backends import DockerBackend, FaultError, make_backend  # noqa: PLC0415

        try:
            backend = make_backend(get)
        except FaultError as err:
            raise capabilities.skip("service-logs", f"of '{service}': {err}") from None
        if not isinstance(backend, DockerBackend):
            raise capabilities.skip("service-logs", "${SERVICE_LOG_DIR} is empty and FAULT_BACKEND is not docker")
        container = backend.container(service, self._service(service))
        started = container.attrs.get("State", {}).get("StartedAt", "")  # e.g. 2026-11-26T21:37:15.123456789Z
        try:
            since = datetime.fromisoformat(started[:19]).replace(tzinfo=UTC)
        except ValueError:
            since = None
        return container.logs(since=since).decode(errors="replace")

    @keyword
    def wait_until_service_is_healthy(self, service: str, timeout: timedelta = timedelta(seconds=60)) -> float:
        """Polls ``service`` (its health URL for 200, else a TCP connect) until it answers; returns the seconds waited.

        Fails after ``timeout`` naming the last thing seen.

        Example:
        | ${waited}= | Wait Until Service Is Healthy | rag_api | timeout=30s |
        """
        svc = self._service(service)
        limit = timeout.total_seconds()
        started = time.monotonic()
        last = "not tried"
        while True:
            if "health_url" in svc:
                self._check_url(svc["health_url"])
                probe = self._probe(svc["health_url"], timedelta(seconds=1))
                last = probe["outcome"] if probe["outcome"] != "ok" else f"status {probe['status']}"
                if last == "status 200":
                    break
            else:
                try:
                    with socket.create_connection((svc["host"], svc["port"]), timeout=1):
                        break
                except OSError as err:
                    last = type(err).__name__
            if time.monotonic() - started >= limit:
                raise Failure(f"Service '{service}' not healthy within {limit:g} s; last seen: {last}.")
            time.sleep(0.1)
        waited = time.monotonic() - started
        logger.info(f"{service} healthy after {waited:.2f} s")
        return waited
