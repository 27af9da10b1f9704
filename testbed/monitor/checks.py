"""The monitor's checkers (the contract's): HTTP (status 200 within the check timeout), Redis (PING and
memory use) and database (connect + ``SELECT 1``), each on the path its clients use (through the fault
proxy where there is one); and the health each service has from its checks."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import psycopg
import redis

from testbed.config import TestbedConfig

FALSE_POSITIVE_LIMIT_S = 0.1  # what the monitor-false-positive defect takes for "too slow"


def now() -> str:
    return datetime.now(UTC).isoformat()


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


class Checkers:
    """Checks each service once: ``check`` (async, bounded by the check timeout) returns what was checked
    and raises on a failure; ``still_failing`` asks again synchronously (under the supervisor's lock)."""

    def __init__(self, cfg: TestbedConfig):
        self.cfg = cfg
        self.timeout = timeout = cfg.timings.check_timeout_s
        port = cfg.port
        self.targets = {
            "rag_api": ("http", f"http://127.0.0.1:{port('rag_api_proxy')}/xnai/api/v1/health"),
            "redis": ("redis", None),
            "postgres": ("database", None),
            "vikunja": ("http", f"http://127.0.0.1:{port('vikunja')}/health"),
            "embeddings": ("http", f"http://127.0.0.1:{port('embeddings')}/health"),
            "mkdocs": ("http", f"http://127.0.0.1:{port('mkdocs')}/"),
            "chainlit_ui": ("http", f"http://127.0.0.1:{port('ui')}/"),
        }
        self.dsn = (f"host=127.0.0.1 port={port('postgres_proxy')} dbname=xnai user=xnai "
                    f"password={cfg.postgres_password} connect_timeout={max(1, int(timeout))}")

    async def check(self, name: str, session: aiohttp.ClientSession, client) -> dict:
        kind, url = self.targets[name]
        async with asyncio.timeout(self.timeout):
            if kind == "http":
                return await self.check_http(session, str(url))
            if kind == "redis":
                return await self.check_redis(client)
            return await self.check_database()

    @staticmethod
    async def check_http(session: aiohttp.ClientSession, url: str) -> dict:
        async with session.get(url) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")
            return {"url": url, "status_code": resp.status}

    @staticmethod
    async def check_redis(client) -> dict:
        if not await client.ping():
            raise RuntimeError("PING failed")
        info = await client.info("memory")
        used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
        return {"ping": True, "used_memory": used, "maxmemory": limit,
                "memory_percent": round(100.0 * used / limit, 2) if limit else None}

    async def check_database(self) -> dict:
        async with await psycopg.AsyncConnection.connect(self.dsn) as conn:
            cur = await conn.execute("SELECT 1, current_setting('server_version')")
            row = await cur.fetchone()
            if row is None:
                raise RuntimeError("SELECT 1 returned no row")
            one, version = row
            return {"query": "SELECT 1", "result": one, "server_version": version}

    def still_failing(self, name: str) -> bool:
        """The service's check once more, synchronously (asked under the supervisor's lock)."""
        kind, url = self.targets[name]
        timeout = self.timeout
        try:
            if kind == "http":
                with urllib.request.urlopen(str(url), timeout=timeout) as resp:  # noqa: S310 - loopback URL we built
                    return resp.status != 200
            if kind == "redis":
                return not redis.Redis(host="127.0.0.1", port=self.cfg.port("redis_proxy"),
                                       password=self.cfg.redis_password, socket_timeout=timeout,
                                       socket_connect_timeout=timeout).ping()
            with psycopg.connect(self.dsn) as conn:
                conn.execute("SELECT 1")
            return False
        except Exception:  # noqa: BLE001 - any failure means it still fails
            return True


def judge(cfg: TestbedConfig, svc: ServiceHealth, error: str | None, details: dict, elapsed: float,
          slow_detection_s: float) -> None:
    """One check's outcome on the service's health: a success makes it healthy, a failure degraded, and
    ``unhealthy_after_failures`` failures in a row unhealthy."""
    timings = cfg.timings
    svc.total_checks += 1
    svc.last_check = now()
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
