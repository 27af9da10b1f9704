"""The testbed's health monitor: the stack's health package, as a service.

Checkers (the contract's): HTTP (status 200 within the check timeout), Redis
(PING and memory use) and database (connect + ``SELECT 1``).  Every
``monitor_interval_s`` each service is checked; a failed check makes it
``degraded``, ``unhealthy_after_failures`` consecutive failures make it
``unhealthy``; a success makes it ``healthy``.  Services are checked on the
path their clients use (through the fault proxy where there is one).

Recovery rules (the contract's): redis 3 failures -> restart; rag_api 2 ->
restart, 5 -> clear the API cache; vikunja 3 -> restart, 5 -> reconnect its
database; chainlit_ui 2 -> restart.  A service that keeps failing is restarted
again once the restart cooldown (the contract's 180 s for rag_api; the
profile's ``restart_cooldown_s``, for every restart here) has passed since the
last; inside it a line in the log, no action.  Restarts go through the testbed
supervisor; every action is logged at ``/health/recovery`` with ``started``
and ``time`` (its end).
Alert callbacks: on every
status change to or from ``unhealthy`` each registered URL gets a POST with
``service``, ``status``, ``previous_status``, ``timestamp``,
``consecutive_failures`` and ``message``.

Routes: ``GET /health`` (the seed's aggregate: ``status``, ``services``,
``timestamp``), ``GET /health/detailed`` (the contract's report),
``GET /health/recovery``, ``PUT /health/callbacks`` ``{"urls": [...]}``
(testbed: how the suite registers its alert receiver), ``POST /health/hold`` ``{"hold": true}``
(testbed: checks go on, recovery actions are recorded as ``<action>_held`` instead of taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import urllib.request
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import psycopg
import redis
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from testbed.config import TestbedConfig

CRITICAL = ("rag_api", "redis")  # unhealthy here makes the aggregate unhealthy; elsewhere degraded
CACHE_PATTERNS = ("query:*", "xnai_cache*")
FALSE_POSITIVE_LIMIT_S = 0.1  # what the monitor-false-positive defect takes for "too slow"


@dataclass(frozen=True)
class Rule:
    service: str
    failures: int
    action: str
    cooldown_s: float = 0.0


@dataclass
class ServiceHealth:
    name: str
    kind: str
    status: str = "unknown"
    last_check: str | None = None
    response_time: float | None = None
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    failing_since: float | None = None  # monotonic time of the streak's first failure
    total_checks: int = 0
    details: dict = field(default_factory=dict)

    def report(self) -> dict:
        return {"status": self.status, "last_check": self.last_check, "response_time": self.response_time,
                "consecutive_failures": self.consecutive_failures,
                "consecutive_successes": self.consecutive_successes, "total_checks": self.total_checks,
                "details": self.details}


class Callbacks(BaseModel):
    urls: list[str]


class Hold(BaseModel):
    hold: bool


def _now() -> str:
    return datetime.now(UTC).isoformat()


def rules_for(cfg: TestbedConfig) -> list[Rule]:
    """A restart fires at its count and, while the service keeps failing, again each time its cooldown
    (the contract's 180 s) has passed; the other actions fire once per run of failures, at their count."""
    cooldown = cfg.timings.restart_cooldown_s
    return [Rule("redis", 3, "restart", cooldown), Rule("rag_api", 2, "restart", cooldown),
            Rule("rag_api", 5, "clear_cache"), Rule("vikunja", 3, "restart", cooldown),
            Rule("vikunja", 5, "reconnect_database"), Rule("chainlit_ui", 2, "restart", cooldown)]


def fires(rule: Rule, failures: int, once_per_streak: bool = False) -> bool:
    """Whether ``rule`` is due at this count of consecutive failures (the cooldown is judged apart)."""
    if rule.action == "restart" and not once_per_streak:
        return failures >= rule.failures
    return failures == rule.failures


# The monitor's service names that differ from the supervisor's.
SUPERVISOR_NAME = {"chainlit_ui": "ui"}


def create_app(cfg: TestbedConfig | None = None) -> FastAPI:
    if cfg is None:
        cfg = TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
    timings = cfg.timings
    interval = timings.monitor_interval_s
    # The defect: a failing streak counts as unhealthy only once it has lasted longer than the
    # detection bound the suite allows (every check still runs, and recovery actions keep their counts).
    slow_detection_s = (timings.monitor_interval_s * (timings.unhealthy_after_failures + 2) + timings.check_timeout_s
                        if cfg.has_defect("monitor-slow-detection") else 0.0)
    timeout = timings.check_timeout_s
    # The defects: a restart never waits for its cooldown, or a failing service is restarted only once.
    ignores_cooldown = cfg.has_defect("monitor-restart-ignores-cooldown")
    restarts_once = cfg.has_defect("monitor-restarts-once-per-streak")
    port = cfg.port
    checks = {
        "rag_api": ("http", f"http://127.0.0.1:{port('rag_api_proxy')}/xnai/api/v1/health"),
        "redis": ("redis", None),
        "postgres": ("database", None),
        "vikunja": ("http", f"http://127.0.0.1:{port('vikunja')}/health"),
        "embeddings": ("http", f"http://127.0.0.1:{port('embeddings')}/health"),
        "mkdocs": ("http", f"http://127.0.0.1:{port('mkdocs')}/"),
        "chainlit_ui": ("http", f"http://127.0.0.1:{port('ui')}/"),
    }
    services = {name: ServiceHealth(name, kind) for name, (kind, _url) in checks.items()}
    rules = rules_for(cfg)
    st: dict = {"actions": [], "callbacks": [], "alerts_sent": 0, "last_action": {}, "active": False,
                "hold": False}

    async def check_http(session: aiohttp.ClientSession, url: str) -> dict:
        async with session.get(url) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return {"url": url, "status_code": resp.status}

    async def check_redis(client) -> dict:
        if not await client.ping():
            raise RuntimeError("PING failed")
        info = await client.info("memory")
        used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
        return {"ping": True, "used_memory": used, "maxmemory": limit,
                "memory_percent": round(100.0 * used / limit, 2) if limit else None}

    async def check_database() -> dict:
        dsn = (f"host=127.0.0.1 port={port('postgres_proxy')} dbname=xnai user=xnai "
               f"password={cfg.postgres_password} connect_timeout={max(1, int(timeout))}")
        async with await psycopg.AsyncConnection.connect(dsn) as conn:
            cur = await conn.execute("SELECT 1, current_setting('server_version')")
            row = await cur.fetchone()
            if row is None:
                raise RuntimeError("SELECT 1 returned no row")
            one, version = row
            return {"query": "SELECT 1", "result": one, "server_version": version}

    async def check(name: str, session, client) -> None:
        svc = services[name]
        kind, url = checks[name]
        started = time.perf_counter()
        error = None
        try:
            async with asyncio.timeout(timeout):
                if kind == "http":
                    details = await check_http(session, str(url))
                elif kind == "redis":
                    details = await check_redis(client)
                else:
                    details = await check_database()
        except Exception as err:  # noqa: BLE001 - any failure is a failed check
            error = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            details = {"error": error}
        elapsed = time.perf_counter() - started
        if error is None and cfg.has_defect("monitor-false-positive") and elapsed > FALSE_POSITIVE_LIMIT_S:
            error = f"slow: {elapsed * 1000:.0f} ms"
            details = {"error": error}
        if error is None and cfg.has_defect("checkers-report-no-details"):
            details = {}  # "healthy", and nothing of what was checked
        if error is not None and cfg.has_defect("monitor-misses-stopped-service") and "Connect" in error:
            error, details = None, {"note": "connection refused (ignored)"}
        previous = svc.status
        svc.total_checks += 1
        svc.last_check = _now()
        svc.response_time = round(elapsed, 4)
        svc.details = details
        if error is None:
            if not cfg.has_defect("monitor-failures-not-reset"):
                svc.consecutive_failures = 0
            svc.consecutive_successes += 1
            svc.failing_since = None
            svc.status = "healthy"
        else:
            svc.consecutive_successes = 0
            svc.consecutive_failures += 1
            if svc.failing_since is None:
                svc.failing_since = time.monotonic()
            unhealthy = (svc.consecutive_failures >= timings.unhealthy_after_failures
                         and time.monotonic() - svc.failing_since >= slow_detection_s)
            if cfg.has_defect("monitor-unhealthy-lapses") \
                    and svc.consecutive_failures >= timings.unhealthy_after_failures + 3:
                unhealthy = False  # a status read from a short window: three checks unhealthy, then degraded
            svc.status = "unhealthy" if unhealthy else "degraded"
        if svc.status != previous:
            print(f"{_now()} {name}: {previous} -> {svc.status} ({svc.details.get('error', 'ok')}, "
                  f"{elapsed * 1000:.0f} ms)", flush=True)
        if (previous == "unhealthy") != (svc.status == "unhealthy") and previous != "unknown":
            asyncio.get_running_loop().create_task(alert(svc, previous, session))
        if error is not None:
            asyncio.get_running_loop().create_task(recover(svc, session, client))

    async def alert(svc: ServiceHealth, previous: str, session) -> None:
        if cfg.has_defect("alert-never-sent"):
            return
        payload = {"service": svc.name, "status": svc.status, "previous_status": previous, "timestamp": _now(),
                   "consecutive_failures": svc.consecutive_failures,
                   "message": f"{svc.name} is {svc.status}: {svc.details.get('error', 'ok')}"}
        if cfg.has_defect("alert-wrong-payload"):
            payload["service"] = "unknown"
        for url in list(st["callbacks"]):
            with contextlib.suppress(Exception):
                async with session.post(url, json=payload) as resp:
                    await resp.read()
                    st["alerts_sent"] += 1

    async def recover(svc: ServiceHealth, session, client) -> None:
        failures = svc.consecutive_failures  # the count that triggered: the action may take seconds
        for rule in rules:
            if rule.service != svc.name or not fires(rule, failures, restarts_once):
                continue
            if rule.action == "restart" and cfg.has_defect("monitor-no-restart"):
                continue
            if rule.action == "reconnect_database" and cfg.has_defect("monitor-no-reconnect"):
                continue
            if st["hold"]:
                record(rule, failures, ok=False, detail="held: the suite holds the monitor's recovery actions")
                continue
            last = st["last_action"].get((rule.service, rule.action))
            if last is not None and time.monotonic() - last < rule.cooldown_s and not ignores_cooldown:
                # Like the stack's recovery manager: a line in the log, no action.
                print(f"{_now()} {rule.service} {rule.action} at {failures} failures: in its cooldown "
                      f"({rule.cooldown_s:g} s, {time.monotonic() - last:.1f} s since the last)", flush=True)
                continue
            st["last_action"][(rule.service, rule.action)] = time.monotonic()
            started = time.time()
            try:
                detail = await act(rule, session, client)
                record(rule, failures, ok=True, detail=detail, started=started)
            except Exception as err:  # noqa: BLE001 - logged as a failed action
                record(rule, failures, ok=False, detail=f"{type(err).__name__}: {err}", started=started)

    def record(rule: Rule, failures: int, ok: bool, detail: str, started: float | None = None) -> None:
        """One entry of ``/health/recovery``: ``started`` when the action began, ``time`` when it ended."""
        action = next((f"{rule.action}_{word}" for word in ("skipped", "held") if detail.startswith(word)),
                      rule.action)
        now = time.time()
        st["actions"].append({"at": _now(), "started": started or now, "time": now, "service": rule.service,
                              "action": action, "failures": failures, "ok": ok, "detail": detail})
        del st["actions"][:-200]
        print(f"{_now()} action: {st['actions'][-1]}", flush=True)

    def still_failing(name: str) -> bool:
        """The service's check once more, synchronously (asked under the supervisor's lock)."""
        kind, url = checks[name]
        try:
            if kind == "http":
                with urllib.request.urlopen(str(url), timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
                    return resp.status != 200
            if kind == "redis":
                return not redis.Redis(host="127.0.0.1", port=port("redis_proxy"), password=cfg.redis_password,
                                       socket_timeout=timeout, socket_connect_timeout=timeout).ping()
            with psycopg.connect(f"host=127.0.0.1 port={port('postgres_proxy')} dbname=xnai user=xnai "
                                 f"password={cfg.postgres_password} connect_timeout={max(1, int(timeout))}") as conn:
                conn.execute("SELECT 1")
            return False
        except Exception:  # noqa: BLE001 - any failure means it still fails
            return True

    async def act(rule: Rule, session, client) -> str:
        if rule.action == "restart":
            from testbed import supervisor  # noqa: PLC0415 - the monitor acts through the supervisor

            return await asyncio.to_thread(supervisor.service_action, cfg, "restart",
                                           SUPERVISOR_NAME.get(rule.service, rule.service),
                                           only_if=lambda: still_failing(rule.service))
        if rule.action == "clear_cache":
            removed = 0
            for pattern in CACHE_PATTERNS:
                keys = [k async for k in client.scan_iter(match=pattern, count=500)]
                if keys:
                    removed += await client.delete(*keys)
            return f"removed {removed} keys"
        if rule.action == "reconnect_database":
            async with session.post(f"http://127.0.0.1:{port('vikunja')}/api/v1/_testbed/reconnect") as resp:
                body = await resp.text()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]}")
                return body[:200]
        raise RuntimeError(f"unknown action {rule.action}")

    async def loop_forever() -> None:
        client = aioredis.Redis(host="127.0.0.1", port=port("redis_proxy"), password=cfg.redis_password,
                                socket_timeout=timeout, socket_connect_timeout=timeout)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                        timeout=aiohttp.ClientTimeout(total=timeout))
        st["active"] = True
        try:
            while True:
                started = time.monotonic()
                await asyncio.gather(*(check(name, session, client) for name in services))
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        finally:
            st["active"] = False
            await session.close()
            await client.aclose()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        task = asyncio.get_running_loop().create_task(loop_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPI(title="XNAi health monitor (testbed)", lifespan=lifespan)

    def aggregate_status() -> str:
        if cfg.has_defect("aggregate-always-healthy"):
            return "healthy"
        statuses = {s.name: s.status for s in services.values()}
        if any(statuses[n] == "unhealthy" for n in CRITICAL):
            return "unhealthy"
        if all(v == "healthy" for v in statuses.values()):
            return "healthy"
        return "degraded"

    @app.get("/health")
    async def health():
        shown = {n: s.status for n, s in services.items()
                 if not (n == "vikunja" and cfg.has_defect("aggregate-omits-task-service"))}
        return {"status": aggregate_status(), "services": shown, "timestamp": _now()}

    @app.get("/health/detailed")
    async def detailed():
        summary = {"total": len(services)}
        for status in ("healthy", "degraded", "unhealthy", "unknown"):
            summary[status] = sum(1 for s in services.values() if s.status == status)
        if cfg.has_defect("monitor-summary-misses-unhealthy"):  # counted among the degraded
            summary["degraded"], summary["unhealthy"] = summary["degraded"] + summary["unhealthy"], 0
        return {"timestamp": _now(), "monitoring_active": st["active"], "interval_s": interval,
                "services": {n: s.report() for n, s in services.items()}, "summary": summary}

    @app.get("/health/recovery")
    async def recovery():
        return {"actions": st["actions"], "rules": [r.__dict__ for r in rules]}

    @app.post("/health/hold")
    async def set_hold(hold: Hold):
        """Holds (or releases) the recovery actions: checks go on, actions are recorded as held."""
        st["hold"] = hold.hold
        print(f"{_now()} recovery actions {'held' if hold.hold else 'released'}", flush=True)
        return {"hold": st["hold"]}

    @app.put("/health/callbacks")
    async def set_callbacks(callbacks: Callbacks):
        for url in callbacks.urls:
            host = urlsplit(url).hostname or ""
            if host not in ("127.0.0.1", "::1", "localhost"):
                return JSONResponse({"error": f"callback host {host!r} is not loopback"}, status_code=400)
        st["callbacks"] = callbacks.urls
        return {"urls": st["callbacks"]}

    return app
