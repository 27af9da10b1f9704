"""The testbed's circuit breaker against a real Redis: transitions and persisted state."""

import asyncio
import json

import pytest
import redis.asyncio as aioredis

from testbed.rag_api.breaker import CircuitOpenError, RedisCircuitBreaker
from xnai_contract import BreakerSpec


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def run(coro):
    return asyncio.run(coro)


async def _breaker(redis_server, clock, **spec):
    client = aioredis.Redis(port=redis_server["port"], password=redis_server["password"])
    spec = BreakerSpec("rag_api", spec.get("failure_threshold", 3), spec.get("recovery_timeout_s", 60.0))
    return client, RedisCircuitBreaker(spec, client, ttl_s=300, clock=clock)


async def _fail(breaker, times):
    for _ in range(times):
        await breaker.before_call()
        await breaker.record_failure()


def test_opens_after_threshold_and_persists_json_with_ttl(redis_server):
    async def scenario():
        client, breaker = await _breaker(redis_server, Clock())
        await _fail(breaker, 2)
        assert (await breaker.load()).state == "closed"
        await _fail(breaker, 1)
        raw = await client.get("circuit_breaker:rag_api")
        data = json.loads(raw)
        assert data["state"] == "open"
        assert data["failure_count"] == 3
        assert data["total_failures"] == 3
        assert 0 < await client.ttl("circuit_breaker:rag_api") <= 300
        with pytest.raises(CircuitOpenError):
            await breaker.before_call()
        await client.aclose()

    run(scenario())


def test_half_open_after_timeout_then_closes_after_two_successes(redis_server):
    async def scenario():
        clock = Clock()
        client, breaker = await _breaker(redis_server, clock)
        await _fail(breaker, 3)
        clock.now += 60.0
        await breaker.before_call()
        assert (await breaker.load()).state == "half_open"
        await breaker.record_success()
        assert (await breaker.load()).state == "half_open", "one success must not close it"
        await breaker.before_call()
        await breaker.record_success()
        assert (await breaker.load()).state == "closed"
        await client.aclose()

    run(scenario())


def test_half_open_failure_reopens_and_limits_trial_calls(redis_server):
    async def scenario():
        clock = Clock()
        client, breaker = await _breaker(redis_server, clock)
        await _fail(breaker, 3)
        clock.now += 60.0
        for _ in range(3):
            await breaker.before_call()
        with pytest.raises(CircuitOpenError):
            await breaker.before_call()
        await breaker.record_failure()
        assert (await breaker.load()).state == "open"
        await client.aclose()

    run(scenario())


def test_state_is_shared_through_redis_between_instances(redis_server):
    async def scenario():
        clock = Clock()
        client, first = await _breaker(redis_server, clock)
        await _fail(first, 3)
        _, second = await _breaker(redis_server, clock)
        with pytest.raises(CircuitOpenError):
            await second.before_call()
        await client.aclose()

    run(scenario())


def test_concurrent_outcomes_and_health_reads_lose_no_update(redis_server):
    """An outcome costs one Redis write (this process's view is current under the lock); a health read
    between a call's write and the next may not replace that view with an older copy."""
    async def scenario():
        clock = Clock()
        client, breaker = await _breaker(redis_server, clock)

        async def call():
            await breaker.before_call()
            await asyncio.sleep(0)
            await breaker.record_success()

        await asyncio.gather(*(call() for _ in range(50)), *(breaker.is_healthy() for _ in range(50)))
        data = json.loads(await client.get("circuit_breaker:rag_api"))
        assert data["total_calls"] == 50
        await client.aclose()

    run(scenario())


def test_a_reset_from_outside_is_seen_by_the_next_call(redis_server):
    async def scenario():
        clock = Clock()
        client, breaker = await _breaker(redis_server, clock)
        await _fail(breaker, 2)
        await client.delete("circuit_breaker:rag_api")  # the suite's Reset Circuit Breaker
        await breaker.before_call()
        await breaker.record_failure()
        data = json.loads(await client.get("circuit_breaker:rag_api"))
        assert (data["failure_count"], data["total_calls"]) == (1, 1)
        await client.aclose()

    run(scenario())
