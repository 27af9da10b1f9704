"""A circuit breaker whose state lives in Redis, as the stack's does.

Key ``circuit_breaker:{name}`` holds a JSON string with ``state``
(``closed``/``open``/``half_open``), counters and timestamps, written with an
expiry.  Semantics: consecutive failures open it; after the recovery timeout
the next call finds it half-open (lazily, like pybreaker) and at most
``half_open_max_calls`` calls are let through; ``success_threshold``
successes close it, one failure re-opens it.  ``total_calls`` counts the
calls that ran through (rejections are not calls).  When Redis is unreachable
the breaker keeps working from memory.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from testbed.defects import is_on
from xnai_contract import BreakerSpec

KEY_PATTERN = "circuit_breaker:{name}"
CLEAN = partial(is_on, carried=())  # a breaker of a testbed that carries no switch


class CircuitOpenError(Exception):
    """Raised instead of calling through an open breaker."""

    def __init__(self, name: str):
        super().__init__(f"circuit '{name}' is open")
        self.name = name


@dataclass
class BreakerState:
    state: str = "closed"
    failure_count: int = 0
    last_failure_time: float | None = None
    success_count: int = 0
    last_success_time: float | None = None
    total_calls: int = 0
    total_failures: int = 0
    total_successes: int = 0
    opened_at: float | None = None
    half_open_calls: int = 0
    transitions: list = field(default_factory=list)


class _NoLock:
    """What the breaker-loses-concurrent-updates defect uses instead of a lock."""

    async def __aenter__(self):
        return self

    async def __aexit__(self, *_exc):
        return False


CROWDED_CALLS = 5  # the breaker-counts-crowding-as-failure defect: more calls than this in flight


class RedisCircuitBreaker:
    def __init__(self, spec: BreakerSpec, redis, ttl_s: int, clock=time.time,
                 has_defect: Callable[[str], bool] = CLEAN):
        self.has_defect = has_defect  # the testbed's switches (TestbedConfig.has_defect), asked like everywhere
        if self.has_defect("breaker-threshold-off-by-one"):
            spec = BreakerSpec(spec.name, spec.failure_threshold + 1, spec.recovery_timeout_s, spec.success_threshold,
                               spec.half_open_max_calls, spec.call_timeout_s)
        if self.has_defect("breaker-closes-after-one-success"):
            spec = BreakerSpec(spec.name, spec.failure_threshold, spec.recovery_timeout_s, 1,
                               spec.half_open_max_calls, spec.call_timeout_s)
        self.spec = spec
        self.redis = redis
        self.ttl_s = ttl_s
        self.clock = clock
        self.local = BreakerState()
        # One read-modify-write of the shared state at a time: concurrent calls would otherwise
        # all read the same counters (lost updates, and half-open admitting every caller).
        self.lock = asyncio.Lock() if not self.has_defect("breaker-loses-concurrent-updates") else _NoLock()
        self.bypass = False  # the testbed's "without the breaker path" switch (overhead measurement)
        self.in_flight = 0  # calls admitted and not yet recorded (counted for the crowding defect only)

    @property
    def key(self) -> str:
        return KEY_PATTERN.format(name=self.spec.name)

    async def load(self) -> BreakerState:
        try:
            raw = await self.redis.get(self.key)
        except Exception:  # Redis down: the in-memory fallback
            if self.has_defect("breaker-fails-without-redis"):
                raise
            return self.local
        if raw is None:  # no state stored (new, expired or reset): a fresh, closed breaker
            self.local = BreakerState()
        else:
            try:
                data = json.loads(raw)
                known = BreakerState.__dataclass_fields__
                self.local = BreakerState(**{k: v for k, v in data.items() if k in known})
            except (ValueError, TypeError, AttributeError):  # not a state (AttributeError: JSON, not an object)
                if self.has_defect("breaker-corrupt-state-fails-calls"):
                    raise
        return self.local

    async def save(self, st: BreakerState) -> None:
        self.local = st
        st.transitions = st.transitions[-20:]
        if self.has_defect("breaker-state-not-in-redis"):
            return
        ttl = None if self.has_defect("breaker-ttl-missing") else self.ttl_s
        try:
            # A shallow copy, not dataclasses.asdict: its deep copy of the transitions cost 0.3 ms a write.
            await self.redis.set(self.key, json.dumps(dict(vars(st))), ex=ttl)
        except Exception:  # Redis down: keep the in-memory state
            if self.has_defect("breaker-fails-without-redis"):
                raise

    def _move(self, st: BreakerState, new: str) -> None:
        if st.state != new:
            st.transitions.append({"from": st.state, "to": new, "at": self.clock()})
            st.state = new

    async def before_call(self) -> BreakerState | None:
        """Admit a call or raise CircuitOpenError.  Writes to Redis only when the state changes."""
        if self.bypass:
            return None
        if self.has_defect("breaker-adds-20ms"):
            await asyncio.sleep(0.02)
        async with self.lock:
            st = await self.load()
            now = self.clock()
            changed = False
            if (st.state == "open" and st.opened_at is not None and now - st.opened_at >= self.spec.recovery_timeout_s
                    and not self.has_defect("breaker-never-half-opens")):
                self._move(st, "half_open")
                st.half_open_calls = 0
                st.success_count = 0
                changed = True
            if st.state == "open":
                if changed:
                    await self.save(st)
                raise CircuitOpenError(self.spec.name)
            if st.state == "half_open":
                if (st.half_open_calls >= self.spec.half_open_max_calls
                        and not self.has_defect("breaker-half-open-unlimited")):
                    raise CircuitOpenError(self.spec.name)
                if isinstance(self.lock, _NoLock):
                    # Unserialised, the admission is decided on a count other callers are changing: this
                    # window (a slow Redis would give it) lets a burst's calls all read the same count,
                    # however the machine spreads their arrival.
                    await asyncio.sleep(0.2)
                st.half_open_calls += 1
                changed = True
            if changed:
                await self.save(st)
            if self.has_defect("breaker-counts-crowding-as-failure"):
                self.in_flight += 1
            return st

    async def _current(self) -> BreakerState:
        """The state a call's outcome is recorded on.  Under the lock this process's own view is current:
        every change it makes goes through it, and ``before_call`` re-reads Redis for changes from
        outside (a reset, another instance), so the outcome costs one Redis write, not a read and a write.
        Without the lock (the breaker-loses-concurrent-updates defect) it reads Redis and writes back
        later, unserialised: concurrent calls overwrite each other's counts."""
        if isinstance(self.lock, _NoLock):
            return await self.load()
        return self.local

    async def record_success(self) -> None:
        if self.bypass:
            return
        async with self.lock:
            if self.has_defect("breaker-counts-crowding-as-failure"):
                # A bulkhead's "too busy" mistaken for a failure: a call that ends among five others counts
                # against the breaker, so load alone, with every call answered, opens it.
                crowded = self.in_flight > CROWDED_CALLS
                self.in_flight = max(0, self.in_flight - 1)
                if crowded:
                    await self._record_failure()
                    return
            await self._record_success()

    async def _record_success(self) -> None:
        st = await self._current()
        st.total_calls += 1
        st.total_successes += 1
        st.last_success_time = self.clock()
        if not self.has_defect("breaker-success-keeps-failures"):
            st.failure_count = 0
        if st.state == "half_open":
            st.success_count += 1
            if st.success_count >= self.spec.success_threshold:
                self._move(st, "closed")
                st.success_count = 0
                st.half_open_calls = 0
        await self.save(st)

    async def record_failure(self) -> None:
        if self.bypass:
            return
        async with self.lock:
            if self.has_defect("breaker-counts-crowding-as-failure"):
                self.in_flight = max(0, self.in_flight - 1)
            await self._record_failure()

    async def _record_failure(self) -> None:
        st = await self._current()
        if not self.has_defect("breaker-failures-not-totalled"):
            st.total_calls += 1
            st.total_failures += 1
        st.failure_count += 1
        st.last_failure_time = self.clock()
        if self.has_defect("breaker-never-opens"):
            await self.save(st)
            return
        if st.state == "half_open" or st.failure_count >= self.spec.failure_threshold:
            self._move(st, "open")
            st.opened_at = self.clock()
            st.success_count = 0
        await self.save(st)

    async def is_healthy(self) -> bool:
        """Closed, as Redis says (a read only: the call path's own view is not replaced outside the lock)."""
        async with self.lock:
            return (await self.load()).state == "closed"
