"""Health-monitor keywords: the aggregate and detailed reports, recovery actions, alert callbacks.

The monitor's routes come from ``${MONITOR_URL}`` and ``${MONITOR_PATHS}``
(``aggregate``, ``detailed``, ``recovery``, ``callbacks``); the aggregate
report through the gateway from ``${GATEWAY_URL}${AGGREGATE_HEALTH_PATH}``.
Alerts are received by a small HTTP server this component runs on loopback; on
the testbed it registers itself with the monitor, on a real stack the stack's
alert callback must point at ``${ALERT_RECEIVER_PORT}``.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure, SkipExecution
from xnai_qa import capabilities, report, safehttp

from ..base import Context, LibraryComponent

STATUSES = ("healthy", "degraded", "unhealthy", "unknown")
ALERT_FIELDS = ("service", "status", "previous_status", "timestamp")


class _AlertServer(ThreadingHTTPServer):
    """The alert receiver: every POST it is sent, in order."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int]):
        super().__init__(address, _AlertHandler)
        self.alerts: list[dict] = []


class _AlertHandler(BaseHTTPRequestHandler):
    server: _AlertServer

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(min(length, 1_000_000))
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            body = {"_unparsable": raw[:200].decode(errors="replace")}
        self.server.alerts.append({"received_at": time.time(), "path": self.path, "body": body})
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args):  # quiet
        pass


# The monitor times its cooldown on a monotonic clock and stamps its actions with the wall clock; the two
# drift apart by a few ms, so a restart this much inside the cooldown still counts as after it.
COOLDOWN_CLOCK_SLACK_S = 0.1

# The one test that reports a stack without an aggregate health report; the others skip, naming it.
AGGREGATE_FINDING = "Kg4 Health Monitoring.The Stack Serves An Aggregate Health Report"


class HealthKeywords(LibraryComponent):
    """Reads the health monitor and receives its alerts."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._since = time.time()
        self._receiver: _AlertServer | None = None

    def _check_host(self, url: str) -> None:
        safehttp.check(url, self._var("ALLOWED_HOSTS", []))

    def _get(self, url: str) -> dict:
        self._check_host(url)
        return self._fetch(url)

    def _request(self, url: str) -> requests.Response:
        try:
            return safehttp.request("GET", url, self._var("ALLOWED_HOSTS", []),
                                    timeout=float(self._var("REQUEST_TIMEOUT_S", 10)))
        except requests.RequestException as err:
            raise Failure(f"GET {url} failed: {type(err).__name__}: {err}") from None

    def _fetch(self, url: str) -> dict:
        resp = self._request(url)
        if resp.status_code != 200:
            raise Failure(f"GET {url} answered {resp.status_code}: {resp.text[:300]}")
        try:
            return resp.json()
        except ValueError:
            raise Failure(f"GET {url} answered 200 with {resp.headers.get('Content-Type')!r}, not JSON: "
                          f"{resp.text[:120]!r}") from None

    def _monitor_name(self, service: str) -> str:
        """What the health monitor calls ``service`` (its ``monitor_name`` in ``${SERVICES}``, else the same)."""
        return ((self._var("SERVICES", {}) or {}).get(service) or {}).get("monitor_name", service)

    def _has_monitor_route(self, route: str) -> bool:
        return bool(self._var("MONITOR_URL", "") and (self._var("MONITOR_PATHS", {}) or {}).get(route))

    def _monitor(self, route: str) -> str:
        paths = self._var("MONITOR_PATHS", {}) or {}
        if not self._var("MONITOR_URL", ""):
            raise capabilities.skip("health-monitor", "${MONITOR_URL} is empty")
        if not paths.get(route):
            raise capabilities.skip("health-monitor", f"it offers no '{route}' route in ${{MONITOR_PATHS}}")
        return f"{self._var('MONITOR_URL')}{paths[route]}"

    @staticmethod
    def _status(status: str) -> str:
        value = str(status).lower()
        if value not in STATUSES:
            raise Failure(f"status={status!r}: use one of {', '.join(STATUSES)}.")
        return value

    # ---------------------------------------------------------- reports --
    @keyword(tags=["requires:health-monitor"])
    def get_health_report(self) -> dict:
        """The monitor's detailed report: ``services`` (per service: status, last_check, response_time,
        consecutive_failures, details ...), ``summary``, ``monitoring_active``, ``timestamp``.

        Example:
        | ${report}= | Get Health Report |
        """
        report = self._get(self._monitor("detailed"))
        logger.info(f"Health report: { {n: s['status'] for n, s in report['services'].items()} }")
        return report

    @keyword
    def check_counts_should_be_consistent(self, report: dict) -> None:
        """Fails unless every service of a `Get Health Report` has counters that agree: at least one check,
        ``consecutive_failures`` and ``consecutive_successes`` one of them zero and together at most
        ``total_checks``, and a ``healthy`` service with no failure in its run.

        Example:
        | ${report}= | Get Health Report |
        | Check Counts Should Be Consistent | ${report} |
        """
        problems = []
        for name, svc in report["services"].items():
            try:
                failures, successes = int(svc["consecutive_failures"]), int(svc["consecutive_successes"])
                total = int(svc["total_checks"])
            except (KeyError, TypeError, ValueError) as err:
                problems.append(f"{name}: the counters are missing or not numbers ({err})")
                continue
            if total < 1:
                problems.append(f"{name}: no check counted")
            if (failures == 0) == (successes == 0):
                problems.append(f"{name}: {failures} failures and {successes} successes in a row (one must be 0)")
            if failures + successes > total:
                problems.append(f"{name}: {failures} + {successes} in a row but only {total} checks")
            if svc.get("status") == "healthy" and failures:
                problems.append(f"{name}: healthy with {failures} failures in a row")
        if problems:
            raise Failure("The monitor's check counts disagree: " + "; ".join(problems) + ".")

    @keyword(tags=["requires:health-monitor"])
    def summary_should_count_the_services(self, report: dict) -> None:
        """Fails unless the ``summary`` of a `Get Health Report` counts what its ``services`` say: ``total``
        is the number of services, and each status's count the number of services with that status.

        Example:
        | ${report}= | Get Health Report |
        | Summary Should Count The Services | ${report} |
        """
        services = report.get("services") or {}
        summary = report.get("summary") or {}
        expected = {"total": len(services)}
        for status in STATUSES:
            expected[status] = sum(1 for svc in services.values() if svc.get("status") == status)
        wrong = {key: (summary.get(key), want) for key, want in expected.items() if summary.get(key) != want}
        if wrong:
            statuses = {name: svc.get("status") for name, svc in services.items()}
            raise Failure("The report's summary miscounts its services: "
                          + ", ".join(f"{key} {got} (the services say {want})" for key, (got, want) in wrong.items())
                          + f"; the services: {statuses}.")

    @keyword
    def get_aggregate_health(self, via: str = "gateway", if_missing: str = "skip") -> dict:
        """The seed's aggregate report (``status``, ``services``, ``timestamp``) ``via`` the gateway or
        the monitor ``direct``.

        A stack that serves no such report at all (404, 502, or an answer without a ``services`` map:
        another service's catch-all, such as Chainlit's ``{"status": "ok"}``) lacks what the seed's KG-4
        requires.  That is one finding, reported by the
        test that asks with ``if_missing=fail`` (*The Stack Serves An Aggregate Health Report*); every
        other caller skips, naming it.  A report that exists but times out or errs is always a failure.

        Example:
        | ${health}= | Get Aggregate Health |
        | ${health}= | Get Aggregate Health | if_missing=fail |
        """
        if if_missing not in ("skip", "fail"):
            raise Failure(f"if_missing={if_missing!r}: use skip or fail.")
        if via == "gateway":
            url = f"{self._var('GATEWAY_URL')}{self._var('AGGREGATE_HEALTH_PATH', '/health')}"
        elif via == "direct":
            url = self._monitor("aggregate")
        else:
            raise Failure(f"via={via!r}: use gateway or direct (the monitor itself).")
        self._check_host(url)
        resp = self._request(url)
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code in (404, 502) or not isinstance(body, dict) or "services" not in body:
            finding = (f"The stack serves no aggregate health report at {url}, which the seed's KG-4 requires "
                       f"(GET /health: an overall status, each service's status, a timestamp): it answered "
                       f"{resp.status_code} {resp.headers.get('Content-Type', '')!r} {resp.text[:120]!r}")
            if if_missing == "fail":
                raise Failure(finding)
            raise SkipExecution(f"{finding}. Reported once, as a failure, by '{AGGREGATE_FINDING}'.")
        if resp.status_code != 200:
            raise Failure(f"GET {url} answered {resp.status_code}: {resp.text[:300]}")
        return body

    @keyword
    def aggregate_health_should_be_complete(self, health: dict, checked=None) -> None:
        """Fails unless the aggregate report has ``status`` (healthy/degraded/unhealthy), a ``services``
        map of statuses and a ``timestamp`` no older than a minute; given ``checked`` (the names, or the
        ``services`` of `Get Health Report`), it must name every one of those services.

        Example:
        | Aggregate Health Should Be Complete | ${health} |
        | Aggregate Health Should Be Complete | ${health} | checked=${report}[services] |
        """
        missing = [k for k in ("status", "services", "timestamp") if k not in health]
        if missing:
            raise Failure(f"The aggregate health report lacks {', '.join(missing)}: {health}")
        if health["status"] not in ("healthy", "degraded", "unhealthy"):
            raise Failure(f"Aggregate status {health['status']!r} is not healthy, degraded or unhealthy.")
        bad = {n: s for n, s in health["services"].items() if s not in STATUSES}
        if not health["services"] or bad:
            raise Failure(f"The aggregate report's services are empty or have unknown statuses: {health['services']}")
        missing_services = [name for name in (checked or ()) if name not in health["services"]]
        if missing_services:
            raise Failure(f"The aggregate report leaves out {', '.join(missing_services)}, which the monitor "
                          f"checks: {health['services']}")
        age = time.time() - _epoch(health["timestamp"])
        if not -5 <= age <= 60:
            raise Failure(f"The aggregate report's timestamp {health['timestamp']} is {age:.0f} s old.")

    @keyword(tags=["requires:health-monitor"])
    def wait_until_monitor_reports(self, service: str, status: str, timeout: timedelta | None = None) -> float:
        """Polls the detailed report until ``service`` has ``status``; returns the seconds waited.
        ``timeout`` defaults to ``${HEALTH_DETECTION_BOUND_S}``.

        ``service`` is the suite's name for it (``${SERVICES}``); where the monitor names it otherwise,
        the service's ``monitor_name`` says how (the UI: ``chainlit_ui``).

        Example:
        | ${seconds}= | Wait Until Monitor Reports | mkdocs | unhealthy |
        """
        service = self._monitor_name(service)
        wanted = self._status(status)
        bound = timeout.total_seconds() if timeout else float(self._var("HEALTH_DETECTION_BOUND_S", 60))

        def seen():
            services = self._get(self._monitor("detailed"))["services"]
            if service not in services:
                raise Failure(f"The monitor does not check '{service}'. It checks: {', '.join(services)}.")
            return services[service]

        _last, waited = self._poll(
            seen, lambda svc: svc["status"] == wanted, bound,
            lambda svc, b: f"The monitor did not report {service} {wanted} within {b:g} s "
                           f"(last: {svc['status']}, {svc['consecutive_failures']} failures, {svc['details']}).")
        # The figure names the event it is measured from: the test's watch mark (where it broke the
        # service), not the start of this wait, which may begin after the monitor has already acted.
        since_mark = (
            f"{time.time() - self._since:.1f} s after the watch mark (the test's fault), " if self._since else ""
        )
        logger.info(f"Monitor reported {service} {wanted} {since_mark}after a wait of {waited} s")
        report.figure(f"{service} reported {wanted} {since_mark}this wait {waited} s (bound {bound:g} s)")
        return waited

    @keyword(tags=["requires:health-monitor"])
    def monitor_should_keep_reporting(self, service: str, status: str, checks: int = 3) -> None:
        """Fails unless ``service`` keeps ``status`` over its next ``checks`` checks: the detailed report is
        read until its ``total_checks`` has grown by ``checks``, and every read says ``status``.  For a state
        that must hold, such as a stopped service staying unhealthy while its checks go on failing.  Bound:
        each check an interval and a check timeout of ``${TIMINGS}``, and one interval more.

        Example:
        | Wait Until Monitor Reports | mkdocs | unhealthy |
        | Monitor Should Keep Reporting | mkdocs | unhealthy | checks=3 |
        """
        name = self._monitor_name(service)
        wanted = self._status(status)
        if int(checks) < 1:
            raise Failure(f"checks={checks}: give 1 or more.")
        timings = self._var("TIMINGS", {}) or {}
        interval = float(timings.get("monitor_interval_s", 30.0))
        bound = int(checks) * (interval + float(timings.get("check_timeout_s", 5.0))) + interval

        first: int | None = None  # total_checks at the first read

        def read():
            svc = self._get(self._monitor("detailed"))["services"].get(name)
            if svc is None:
                raise Failure(f"The monitor does not check '{name}'.")
            if svc["status"] != wanted:
                after = f"after {int(svc['total_checks']) - first} more check(s)" if first is not None else "at once"
                raise Failure(f"The monitor reported {name} {svc['status']} {after}, not {wanted} "
                              f"({svc['consecutive_failures']} failures in a row, {svc['details']}).")
            return svc

        first = int(read()["total_checks"])
        last, waited = self._poll(
            read, lambda svc: int(svc["total_checks"]) >= first + int(checks), bound,
            lambda svc, b: f"The monitor checked {name} {int(svc['total_checks']) - first} time(s) in {b:g} s, "
                           f"not {checks}.")
        logger.info(f"The monitor kept {name} {wanted} over {int(last['total_checks']) - first} checks "
                    f"({last['consecutive_failures']} failures in a row) in {waited} s")

    @staticmethod
    def _poll(fetch, done, bound: float, describe) -> tuple:
        """Calls ``fetch`` every 0.1 s until ``done(value)``; returns (value, seconds) or fails after ``bound``."""
        started = time.monotonic()
        while True:
            value = fetch()
            if done(value):
                return value, round(time.monotonic() - started, 3)
            if time.monotonic() - started >= bound:
                raise Failure(describe(value, bound))
            time.sleep(0.1)

    @keyword(tags=["requires:health-monitor"])
    def wait_until_monitor_reports_every_service_healthy(self, timeout: timedelta | None = None) -> float:
        """Polls the detailed report until every service is healthy; returns the seconds waited.
        ``timeout`` defaults to ``${HEALTH_RECOVERY_BOUND_S}``.

        Example:
        | Wait Until Monitor Reports Every Service Healthy |
        """
        bound = timeout.total_seconds() if timeout else float(self._var("HEALTH_RECOVERY_BOUND_S", 120))

        def unwell():
            services = self._get(self._monitor("detailed"))["services"]
            return {n: s["status"] for n, s in services.items() if s["status"] != "healthy"}

        return self._poll(unwell, lambda bad: not bad, bound,
                          lambda bad, b: f"Not every service became healthy within {b:g} s: {bad}")[1]

    @keyword
    def wait_until_aggregate_health_is(self, status: str, timeout: timedelta | None = None) -> dict:
        """Polls the aggregate report through the gateway until its ``status`` is ``status``; returns it.

        Example:
        | Wait Until Aggregate Health Is | degraded |
        """
        wanted = self._status(status)
        bound = timeout.total_seconds() if timeout else float(self._var("HEALTH_DETECTION_BOUND_S", 60))
        return self._poll(self.get_aggregate_health, lambda h: h.get("status") == wanted, bound,
                          lambda h, b: f"The aggregate health did not become {wanted} within {b:g} s: {h}")[0]

    # --------------------------------------------------------- recovery --
    @keyword
    def start_watching_the_health_monitor(self) -> float:
        """Marks now: recovery actions and alerts before this moment are ignored by the keywords below.

        Example:
        | [Setup] | Start Watching The Health Monitor |
        """
        self._since = time.time()
        if self._receiver is not None:
            self._receiver.alerts.clear()
        return self._since

    @keyword(tags=["requires:health-monitor"])
    def recovery_actions_since_watching(self) -> list:
        """The monitor's recovery actions (service, action, failures, ok, detail) since the mark.

        Example:
        | ${actions}= | Recovery Actions Since Watching |
        """
        actions = self._get(self._monitor("recovery"))["actions"]
        return [a for a in actions if float(a.get("time", 0)) >= self._since]

    @keyword(tags=["requires:health-monitor"])
    def wait_for_recovery_action(self, service: str, action: str, timeout: timedelta | None = None) -> dict:
        """Waits until the monitor has taken ``action`` (restart, clear_cache, reconnect_database) for
        ``service`` since the mark; returns it (``failures`` says at which failure count it fired).
        ``timeout`` defaults to ``${HEALTH_RECOVERY_BOUND_S}``.

        Example:
        | ${action}= | Wait For Recovery Action | rag_api | restart |
        """
        service = self._monitor_name(service)
        bound = timeout.total_seconds() if timeout else float(self._var("HEALTH_RECOVERY_BOUND_S", 120))
        started = time.monotonic()
        while True:
            for entry in self.recovery_actions_since_watching():
                if entry["service"] == service and entry["action"] == action:
                    entry["after_mark_s"] = round(float(entry.get("time", self._since)) - self._since, 2)
                    logger.info(f"Recovery action {entry['after_mark_s']} s after the watch mark: {entry}")
                    report.figure(f"{service} {action} {entry['after_mark_s']} s after the watch mark, at "
                                  f"{entry.get('failures')} failures")
                    return entry
            if time.monotonic() - started >= bound:
                raise Failure(f"The monitor took no '{action}' action for {service} within {bound:g} s "
                              f"(actions since the mark: {self.recovery_actions_since_watching()}).")
            time.sleep(0.2)

    @keyword(tags=["requires:health-monitor"])
    def wait_for_the_restart_after_the_cooldown(self, service: str, first: dict) -> dict:
        """Waits for the monitor's next restart of ``service`` after the restart ``first`` (one that
        ``Wait For Recovery Action`` returned, while the service keeps failing) and returns it.  The
        contract's restart cooldown (``${TIMINGS}[restart_cooldown_s]``) must hold on both sides: no
        restart before it has passed since ``first`` began, and one at the first check after it (within
        a monitor interval and a check timeout of ``first``'s end, so a cooldown counted from either
        end of a restart passes).

        Example:
        | ${first}= | Wait For Recovery Action | rag_api | restart |
        | Wait For The Restart After The Cooldown | rag_api | ${first} |
        """
        timings = self._var("TIMINGS", {}) or {}
        cooldown = float(timings.get("restart_cooldown_s", 180.0))
        began, ended = float(first.get("started", first["time"])), float(first["time"])
        latest = cooldown + float(timings.get("monitor_interval_s", 30.0)) + float(timings.get("check_timeout_s", 5.0))
        service = self._monitor_name(service)
        while True:
            later = [a for a in self.recovery_actions_since_watching() if a["service"] == service
                     and a["action"] == "restart" and float(a.get("started", a["time"])) > began]
            if later:
                second = later[0]
                gap = float(second.get("started", second["time"])) - began
                report.figure(f"{service} restarted again {gap:.2f} s after the first restart began "
                              f"(cooldown {cooldown:g} s)")
                if gap < cooldown - COOLDOWN_CLOCK_SLACK_S:
                    raise Failure(f"The monitor restarted {service} again {gap:.2f} s after the first restart "
                                  f"began, inside its {cooldown:g} s cooldown: {second}")
                return second
            if time.time() - ended > latest:
                raise Failure(f"The monitor did not restart {service} again within {latest:g} s of the first "
                              f"restart's end, though it kept failing: once the {cooldown:g} s cooldown is over, "
                              f"the next failed check must restart it (actions since the mark: "
                              f"{self.recovery_actions_since_watching()}).")
            time.sleep(0.2)

    @keyword(tags=["requires:health-monitor"])
    def no_recovery_action_should_have_been_taken(self) -> None:
        """Fails if the monitor took any recovery action since the mark.

        Example:
        | No Recovery Action Should Have Been Taken |
        """
        actions = self.recovery_actions_since_watching()
        if actions:
            raise Failure(f"The monitor took {len(actions)} recovery action(s): {actions}")

    # ----------------------------------------------------------- alerts --
    @keyword
    def start_alert_receiver(self) -> str:
        """Starts the alert receiver on loopback (port ``${ALERT_RECEIVER_PORT}``, 0 = any) and, where the
        target's monitor offers a callbacks route, registers it with the monitor; returns its URL.

        Example:
        | Start Alert Receiver |
        """
        if self._receiver is None:
            server = _AlertServer(("127.0.0.1", int(self._var("ALERT_RECEIVER_PORT", 0) or 0)))
            threading.Thread(target=server.serve_forever, name="xnai-alert-receiver", daemon=True).start()
            self._receiver = server
        url = f"http://127.0.0.1:{self._receiver.server_address[1]}/alerts"
        if self._has_monitor_route("callbacks"):
            self._register([url])
        return url

    def _register(self, urls: list[str]) -> None:
        resp = safehttp.request("PUT", self._monitor("callbacks"), self._var("ALLOWED_HOSTS", []),
                                json={"urls": urls}, timeout=10)
        if resp.status_code != 200:
            raise Failure(f"The monitor refused the callback registration: {resp.status_code} {resp.text[:200]}")

    @keyword
    def stop_alert_receiver(self) -> None:
        """Unregisters and stops the alert receiver (suite teardown).

        Example:
        | [Teardown] | Stop Alert Receiver |
        """
        if self._receiver is None:
            return
        if self._has_monitor_route("callbacks"):
            try:
                self._register([])
            except (Failure, requests.RequestException) as err:
                logger.warn(f"Could not unregister the alert receiver: {err}")
        self._receiver.shutdown()
        self._receiver.server_close()
        self._receiver = None

    @keyword(tags=["requires:monitor-alerts"])
    def wait_for_alert(self, service: str, status: str, timeout: timedelta | None = None) -> dict:
        """Waits for an alert about ``service`` with ``status`` received since the mark; returns its body
        with ``received_at``.  Fails naming the alerts that did arrive.

        Example:
        | ${alert}= | Wait For Alert | mkdocs | unhealthy |
        """
        if self._receiver is None:
            raise Failure("Start the alert receiver first (Start Alert Receiver).")
        service = self._monitor_name(service)
        wanted = self._status(status)
        bound = timeout.total_seconds() if timeout else float(self._var("HEALTH_DETECTION_BOUND_S", 60)) + 5
        started = time.monotonic()
        while True:
            for alert in list(self._receiver.alerts):
                body = alert["body"] if isinstance(alert["body"], dict) else {}
                if (
                    alert["received_at"] >= self._since
                    and body.get("service") == service
                    and body.get("status") == wanted
                ):
                    logger.info(f"Alert: {body}")
                    return {**body, "received_at": alert["received_at"]}
            if time.monotonic() - started >= bound:
                got = [a["body"] for a in self._receiver.alerts]
                raise Failure(f"No alert '{service} {wanted}' within {bound:g} s. Alerts received: {got or 'none'}")
            time.sleep(0.1)

    @keyword
    def alert_should_be_well_formed(self, alert: dict) -> None:
        """Fails unless the alert has service, status, previous_status and a timestamp taken between the
        mark and its arrival.

        Example:
        | Alert Should Be Well Formed | ${alert} |
        """
        missing = [k for k in ALERT_FIELDS if k not in alert]
        if missing:
            raise Failure(f"The alert lacks {', '.join(missing)}: {alert}")
        at = _epoch(alert["timestamp"])
        if not self._since - 1 <= at <= alert["received_at"] + 1:
            raise Failure(f"The alert's timestamp {alert['timestamp']} is outside the fault window.")

    @keyword
    def no_alert_should_have_arrived(self) -> None:
        """Fails if any alert arrived since the mark.

        Example:
        | No Alert Should Have Arrived |
        """
        if self._receiver is None:
            raise Failure("Start the alert receiver first (Start Alert Receiver).")
        got = [a["body"] for a in self._receiver.alerts if a["received_at"] >= self._since]
        if got:
            raise Failure(f"{len(got)} alert(s) arrived: {got}")


def _epoch(stamp: str) -> float:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        raise Failure(f"Timestamp {stamp!r} is not ISO 8601.") from None
