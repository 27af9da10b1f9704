"""The RAG API's Redis: its clients (bounded, through the fault proxy), the answer cache behind the
``redis_cache`` breaker, the record of queries (stream ``xnai_queries``) and the health check's key."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from typing import TYPE_CHECKING

import aiohttp
import redis.asyncio as aioredis
from fastapi import Request
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from .breaker import CircuitOpenError, RedisCircuitBreaker
from .errors import now_iso

if TYPE_CHECKING:
    from .context import RagApi
    from .queries import QueryRequest

QUERY_STREAM = "xnai_queries"
HEALTH_KEY = "xnai_health_check"
REDIS_POOL_SIZE = 8


class GuardedRedis:
    """The API's Redis client with a short memory of failure: once a call fails, calls fail at once for
    ``cooloff_s`` instead of each waiting out its timeout, so a silent Redis costs one timeout per
    cooloff, not one per call (the stack's degraded mode: answer without cache)."""

    GUARDED = frozenset({"get", "set", "delete", "xadd", "execute_command", "expire", "ttl", "exists"})

    def __init__(self, client, cooloff_s: float, memory: dict | None = None):
        # ``memory`` is shared by every client of the same Redis: one failure makes them all fail fast.
        self._client, self._cooloff_s = client, cooloff_s
        self._memory = memory if memory is not None else {"down_until": 0.0}

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if name not in self.GUARDED:
            return attr

        async def call(*args, **kwargs):
            if time.monotonic() < self._memory["down_until"]:
                raise aioredis.ConnectionError("Redis did not answer a moment ago; not waiting again yet")
            try:
                return await attr(*args, **kwargs)
            except Exception:
                self._memory["down_until"] = time.monotonic() + self._cooloff_s
                raise

        return call


@contextlib.asynccontextmanager
async def clients(api: RagApi):
    """Opens the API's clients for as long as it serves: the Redis pool, one connection per breaker, the
    session to the embeddings service; closes them after."""
    cfg, timings = api.cfg, api.timings
    # A fixed pool, filled at start: the process's descriptors stay constant while it serves,
    # so a leak is a leak and not a pool growing.
    # Every Redis call is bounded; the redis-down-hangs defect removes the bounds.
    bound = None if cfg.has_defect("redis-down-hangs") else timings.check_timeout_s
    # One immediate retry: a connection that a Redis fault closed is reopened at once.  redis-py's default
    # (10 retries, pauses growing to 1 s) holds a call for seconds after a refusal, and the breaker's lock
    # with it, then writes a state the call held from before the fault ended.
    retry = Retry(NoBackoff(), 1)
    pool = aioredis.BlockingConnectionPool(
        host="127.0.0.1", port=cfg.port("redis_proxy"), password=cfg.redis_password,  # via the fault proxy
        socket_timeout=bound, socket_connect_timeout=bound,
        max_connections=REDIS_POOL_SIZE, timeout=bound, retry=retry,
    )
    redis_down = {"down_until": 0.0}  # one memory of a Redis failure for every client below
    cooloff_s = 2 * timings.check_timeout_s
    api.redis = GuardedRedis(aioredis.Redis(connection_pool=pool), cooloff_s=cooloff_s, memory=redis_down)
    with contextlib.suppress(Exception):
        await asyncio.gather(*(api.redis.execute_command("CLIENT", "SETNAME", f"rag_api_{i}")
                               for i in range(REDIS_POOL_SIZE)))
    # Each breaker's state goes over a connection of its own (through the fault proxy, so a Redis fault
    # reaches it like every other call): the breaker's lock already lets one state read or write out at
    # a time, and a pool's hand-out per command cost more than the round trip itself on a small machine.
    breaker_clients = [
        aioredis.Redis(host="127.0.0.1", port=cfg.port("redis_proxy"), password=cfg.redis_password,
                       socket_timeout=bound, socket_connect_timeout=bound, single_connection_client=True,
                       retry=retry)
        for _spec in timings.breakers
    ]
    with contextlib.suppress(Exception):  # opened now: the process's descriptors stay constant while it serves
        await asyncio.gather(*(c.execute_command("CLIENT", "SETNAME", f"rag_api_breaker_{i}")
                               for i, c in enumerate(breaker_clients)))
    api.breakers = {
        spec.name: RedisCircuitBreaker(spec, GuardedRedis(client, cooloff_s=cooloff_s, memory=redis_down),
                                       timings.breaker_ttl_s, has_defect=cfg.has_defect)
        for spec, client in zip(timings.breakers, breaker_clients, strict=True)
    }
    # The downstream embeddings service; one connection per call (no idle pool to skew descriptor counts).
    api.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True),
                                     timeout=aiohttp.ClientTimeout(total=timings.check_timeout_s))
    if cfg.has_defect("breaker-state-lost-on-restart"):
        with contextlib.suppress(Exception):
            for name in api.breakers:
                await api.redis.delete(f"circuit_breaker:{name}")
    try:
        yield
    finally:
        await api.http.close()
        await api.redis.aclose()
        for client in breaker_clients:
            await client.aclose()


async def redis_alive(api: RagApi) -> bool:
    if api.has_defect("health-ignores-redis"):
        return True
    try:
        await api.redis.set(HEALTH_KEY, now_iso(), ex=10)
        return True
    except Exception:  # noqa: BLE001
        return False


def cache_key(req: QueryRequest) -> str:
    raw = json.dumps([req.query, req.use_rag, req.max_tokens], separators=(",", ":"))
    return "query:" + hashlib.sha256(raw.encode()).hexdigest()[:32]


async def record_query(api: RagApi, request: Request, req: QueryRequest, endpoint: str) -> None:
    if api.has_defect("queries-not-recorded"):
        return
    try:
        await api.redis.xadd(
            QUERY_STREAM,
            {"txn_id": request.state.request_id, "endpoint": endpoint,
             "query_hash": cache_key(req).split(":", 1)[1], "ts": str(time.time())},
            maxlen=10000, approximate=True,
        )
    except Exception:  # noqa: BLE001, S110 - the record is best effort, as in the stack
        pass


async def cache_get(api: RagApi, key: str):
    if api.has_defect("cache-never-hit"):
        return None
    breaker = api.breakers["redis_cache"]
    try:
        await breaker.before_call()
    except CircuitOpenError:
        if not (api.has_defect("cache-breaker-ignored") or api.has_defect("cache-read-past-open-breaker")):
            return None
    try:
        raw = await api.redis.get(key)
    except Exception:  # noqa: BLE001
        await breaker.record_failure()
        return None
    await breaker.record_success()
    return json.loads(raw) if raw else None


async def cache_put(api: RagApi, key: str, value: dict) -> None:
    if api.has_defect("cache-never-written"):
        return
    breaker = api.breakers["redis_cache"]
    try:
        try:
            await breaker.before_call()
        except CircuitOpenError:
            if not api.has_defect("cache-breaker-ignored"):
                raise
        await api.redis.set(key, json.dumps(value), ex=3600)
    except CircuitOpenError:
        return
    except Exception:  # noqa: BLE001
        await breaker.record_failure()
        return
    await breaker.record_success()
