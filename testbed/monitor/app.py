"""The testbed's health monitor: the stack's health package, as a service.

Every ``monitor_interval_s`` each service is checked (``checks.py``: HTTP, Redis, database); a failed
check makes it ``degraded``, ``unhealthy_after_failures`` consecutive failures make it ``unhealthy``;
a success makes it ``healthy``.  A failing service's recovery rules act and status changes to or from
``unhealthy`` are alerted (``recovery.py``).

Routes: ``GET /health`` (the seed's aggregate: ``status``, ``services``, ``timestamp``),
``GET /health/detailed`` (the contract's report), ``GET /health/recovery``, ``PUT /health/callbacks``
``{"urls": [...]}`` (testbed: how the suite registers its alert receiver), ``POST /health/hold``
``{"hold": true}`` (testbed: checks go on, recovery actions are recorded as ``<action>_held`` instead of
taken).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import redis.asyncio as aioredis
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from testbed.config import TestbedConfig

from .checks import FALSE_POSITIVE_LIMIT_S, Checkers, ServiceHealth, judge, now
from .recovery import Alerts, Recovery

CRITICAL = ("rag_api", "redis")  # unhealthy here makes the aggregate unhealthy; elsewhere degraded


class Callbacks(BaseModel):
    urls: list[str]


class Hold(BaseModel):
    hold: bool


class Monitor:
    """The check loop: every interval each service once, its health judged, recovery and alerts called."""

    def __init__(self, cfg: TestbedConfig):
        self.cfg = cfg
        timings = cfg.timings
        self.interval = timings.monitor_interval_s
        # The defect: a failing streak counts as unhealthy only once it has lasted longer than the
        # detection bound the suite allows (every check still runs, and recovery actions keep their counts).
        self.slow_detection_s = (
            timings.monitor_interval_s * (timings.unhealthy_after_failures + 2) + timings.check_timeout_s
            if cfg.has_defect("monitor-slow-detection") else 0.0)
        self.checkers = Checkers(cfg)
        self.services = {name: ServiceHealth(name, kind) for name, (kind, _url) in self.checkers.targets.items()}
        self.recovery = Recovery(cfg, self.checkers)
        self.alerts = Alerts(cfg)
        self.active = False

    async def check(self, name: str, session: aiohttp.ClientSession, client) -> None:
        cfg, svc = self.cfg, self.services[name]
        started = time.perf_counter()
        error = None
        try:
            details = await self.checkers.check(name, session, client)
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
        judge(cfg, svc, error, details, elapsed, self.slow_detection_s)
        if svc.status != previous:
            print(f"{now()} {name}: {previous} -> {svc.status} ({svc.details.get('error', 'ok')}, "
                  f"{elapsed * 1000:.0f} ms)", flush=True)
        if (previous == "unhealthy") != (svc.status == "unhealthy") and previous != "unknown":
            asyncio.get_running_loop().create_task(self.alerts.alert(svc, previous, session))
        if error is not None:
            asyncio.get_running_loop().create_task(self.recovery.recover(svc, session, client))

    async def loop_forever(self) -> None:
        cfg, timeout, interval = self.cfg, self.checkers.timeout, self.interval
        client = aioredis.Redis(host="127.0.0.1", port=cfg.port("redis_proxy"), password=cfg.redis_password,
                                socket_timeout=timeout, socket_connect_timeout=timeout)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                        timeout=aiohttp.ClientTimeout(total=timeout))
        self.active = True
        try:
            while True:
                started = time.monotonic()
                await asyncio.gather(*(self.check(name, session, client) for name in self.services))
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        finally:
            self.active = False
            await session.close()
            await client.aclose()

    def aggregate_status(self) -> str:
        if self.cfg.has_defect("aggregate-always-healthy"):
            return "healthy"
        statuses = {s.name: s.status for s in self.services.values()}
        if any(statuses[n] == "unhealthy" for n in CRITICAL):
            return "unhealthy"
        if all(v == "healthy" for v in statuses.values()):
            return "healthy"
        return "degraded"


def create_app(cfg: TestbedConfig | None = None) -> FastAPI:
    if cfg is None:
        cfg = TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
    monitor = Monitor(cfg)
    services, recovery = monitor.services, monitor.recovery

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        task = asyncio.get_running_loop().create_task(monitor.loop_forever())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app = FastAPI(title="XNAi health monitor (testbed)", lifespan=lifespan)

    @app.get("/health")
    async def health():
        shown = {n: s.status for n, s in services.items()
                 if not (n == "vikunja" and cfg.has_defect("aggregate-omits-task-service"))}
        return {"status": monitor.aggregate_status(), "services": shown, "timestamp": now()}

    @app.get("/health/detailed")
    async def detailed():
        summary = {"total": len(services)}
        for status in ("healthy", "degraded", "unhealthy", "unknown"):
            summary[status] = sum(1 for s in services.values() if s.status == status)
        if cfg.has_defect("monitor-summary-misses-unhealthy"):  # counted among the degraded
            summary["degraded"], summary["unhealthy"] = summary["degraded"] + summary["unhealthy"], 0
        return {"timestamp": now(), "monitoring_active": monitor.active, "interval_s": monitor.interval,
                "services": {n: s.report() for n, s in services.items()}, "summary": summary}

    @app.get("/health/recovery")
    async def recovery_log():
        return {"actions": recovery.actions, "rules": [r.__dict__ for r in recovery.rules]}

    @app.post("/health/hold")
    async def set_hold(hold: Hold):
        """Holds (or releases) the recovery actions: checks go on, actions are recorded as held."""
        recovery.hold = hold.hold
        print(f"{now()} recovery actions {'held' if hold.hold else 'released'}", flush=True)
        return {"hold": recovery.hold}

    @app.put("/health/callbacks")
    async def set_callbacks(callbacks: Callbacks):
        for url in callbacks.urls:
            host = urlsplit(url).hostname or ""
            if host not in ("127.0.0.1", "::1", "localhost"):
                return JSONResponse({"error": f"callback host {host!r} is not loopback"}, status_code=400)
        monitor.alerts.callbacks = callbacks.urls
        return {"urls": monitor.alerts.callbacks}

    return app
