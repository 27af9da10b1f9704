"""Circuit-breaker keywords: read state from Redis, assert it, wait for it, record its timeline.

The key comes from ``${BREAKER_KEY_PATTERN}`` (``circuit_breaker:{name}`` in the stack's code,
``cb:{name}:state`` in the seed) and the value is parsed as ``${BREAKER_STATE_FORMAT}`` (``json`` or
``plain``).  Timeouts and thresholds come from ``${TIMINGS}``.  Transitions are measured from the
observed state, never from the clock alone.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from robot.api import logger
from robot.api.deco import keyword, library
from robot.api.exceptions import Failure
from robot.libraries.BuiltIn import BuiltIn

from xnai_qa import breakers, charts, redisconn


@library(scope="GLOBAL", auto_keywords=False)
class XnaiBreakers:
    """Observes the target's circuit breakers through Redis."""

    def __init__(self):
        self._timelines: dict[str, tuple[str, threading.Thread, list, threading.Event]] = {}

    @staticmethod
    def _var(name: str, default=None):
        return BuiltIn().get_variable_value("${%s}" % name, default)

    def _client(self):
        try:
            return redisconn.connect(self._var)[0]
        except redisconn.RedisConfigError as err:
            raise Failure(str(err)) from None

    def _key(self, name: str) -> str:
        return breakers.key_for(self._var("BREAKER_KEY_PATTERN", "circuit_breaker:{name}"), name)

    def _read(self, client, name: str) -> dict:
        raw = client.get(self._key(name))
        try:
            return breakers.parse(raw, self._var("BREAKER_STATE_FORMAT", "json"))
        except ValueError as err:
            raise Failure(f"Circuit breaker '{name}' ({self._key(name)}): {err}") from None

    def _spec(self, name: str) -> dict:
        specs = (self._var("TIMINGS", {}) or {}).get("breakers", {})
        if name not in specs:
            raise Failure(f"No circuit breaker '{name}' in ${{TIMINGS}}. Known: {', '.join(specs)}.")
        return specs[name]

    @staticmethod
    def _state_name(state: str) -> str:
        value = str(state).lower().replace("-", "_").replace(" ", "_")
        if value not in breakers.STATES:
            raise Failure(f"state={state!r}: use closed, open or half_open.")
        return value

    # ---------------------------------------------------------- keywords --
    @keyword
    def get_circuit_breaker_state(self, name: str) -> dict:
        """The breaker's state as stored in Redis: ``state`` (None if the key is absent) and, in the JSON
        form, ``failure_count``, ``success_count``, ``total_calls`` ... .

        Example:
        | ${breaker}= | Get Circuit Breaker State | rag_api |
        """
        data = self._read(self._client(), name)
        logger.info(f"{self._key(name)}: {data}")
        return data

    @keyword
    def circuit_breaker_should_be(self, name: str, state: str) -> dict:
        """Fails unless breaker ``name`` is in ``state`` (closed, open, half_open) in Redis.

        Example:
        | Circuit Breaker Should Be | rag_api | open |
        """
        wanted = self._state_name(state)
        data = self.get_circuit_breaker_state(name)
        if data["state"] != wanted:
            seen = "absent from Redis" if data["state"] is None else data["state"]
            raise Failure(f"Circuit breaker '{name}' is {seen}, not {wanted} (key {self._key(name)}: {data}).")
        return data

    @keyword
    def wait_until_circuit_breaker_is(self, name: str, state: str, timeout: timedelta = timedelta(seconds=10)) -> float:
        """Polls Redis until breaker ``name`` is in ``state``; returns the seconds waited, fails after ``timeout``.

        Example:
        | Wait Until Circuit Breaker Is | rag_api | closed | timeout=60s |
        """
        wanted = self._state_name(state)
        client = self._client()
        started = time.monotonic()
        data = self._read(client, name)
        while data["state"] != wanted:
            if time.monotonic() - started >= timeout.total_seconds():
                raise Failure(f"Circuit breaker '{name}' not {wanted} within {timeout.total_seconds():g} s "
                              f"(last seen: {data['state']}).")
            time.sleep(0.05)
            data = self._read(client, name)
        waited = time.monotonic() - started
        logger.info(f"{name} {wanted} after {waited:.2f} s")
        return waited

    @keyword
    def wait_for_the_recovery_timeout_of(self, name: str) -> float:
        """Waits until breaker ``name`` has been open for its recovery timeout (from ``${TIMINGS}``),
        measured from the open time Redis records (or from now in the plain form); returns seconds waited.

        Example:
        | Wait For The Recovery Timeout Of | rag_api |
        """
        data = self.circuit_breaker_should_be(name, "open")
        timeout_s = float(self._spec(name)["recovery_timeout_s"])
        opened = data.get("opened_at") or data.get("last_failure_time") or time.time()
        deadline = float(opened) + timeout_s + 0.05
        limit = time.monotonic() + timeout_s + 5
        waited = 0.0
        while time.time() < deadline and time.monotonic() < limit:
            step = min(0.1, deadline - time.time())
            time.sleep(max(step, 0.0))
            waited += max(step, 0.0)
        return round(waited, 3)

    @keyword
    def circuit_breaker_key_should_expire_within(self, name: str, seconds: float) -> int:
        """Fails unless the breaker's Redis key has an expiry of at most ``seconds``; returns the TTL.

        Example:
        | Circuit Breaker Key Should Expire Within | rag_api | 3600 |
        """
        ttl = self._client().ttl(self._key(name))
        problem = redisconn.ttl_problem(ttl, self._key(name), seconds)
        if problem:
            raise Failure(f"Circuit breaker '{name}': {problem}")
        return ttl

    @keyword
    def failure_threshold_of(self, name: str) -> int:
        """The number of consecutive failures that opens breaker ``name`` (from ``${TIMINGS}``).

        Example:
        | ${threshold}= | Failure Threshold Of | rag_api |
        """
        return int(self._spec(name)["failure_threshold"])

    @keyword
    def reset_circuit_breaker(self, name: str) -> None:
        """Deletes the breaker's state from Redis, so the next call finds it closed (test set-up/clean-up).

        Example:
        | [Teardown] | Reset Circuit Breaker | rag_api |
        """
        self._client().delete(self._key(name))

    @keyword
    def start_breaker_timeline(self, name: str, interval: timedelta = timedelta(milliseconds=50)) -> str:
        """Records breaker ``name``'s state in the background until `Stop Breaker Timeline`; returns its id.

        Example:
        | ${timeline}= | Start Breaker Timeline | rag_api |
        """
        client = self._client()
        key_name = name
        observations: list = []
        stop = threading.Event()
        fmt = self._var("BREAKER_STATE_FORMAT", "json")
        key = self._key(name)

        def poll():
            t0 = time.monotonic()
            while not stop.is_set() and len(observations) < 100_000:
                try:
                    state = breakers.parse(client.get(key), fmt)["state"]
                except Exception:  # noqa: BLE001 - Redis may be the thing under fault
                    state = "unreadable"
                observations.append((time.monotonic() - t0, state))
                stop.wait(interval.total_seconds())

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        timeline_id = f"{key_name}-{len(self._timelines) + 1}"
        self._timelines[timeline_id] = (key_name, thread, observations, stop)
        return timeline_id

    @keyword
    def stop_breaker_timeline(self, timeline_id: str) -> dict:
        """Stops a timeline and returns ``transitions`` (at, from, to) and ``time_in_state`` (seconds), charted in the log.

        Example:
        | ${timeline}= | Stop Breaker Timeline | ${timeline} |
        | Should Not Be Empty | ${timeline}[transitions] |
        """
        if timeline_id not in self._timelines:
            raise Failure(f"No breaker timeline '{timeline_id}'.")
        name, thread, observations, stop = self._timelines.pop(timeline_id)
        stop.set()
        thread.join(5)
        end = observations[-1][0] if observations else 0.0
        result = {"breaker": name, "transitions": breakers.transitions(observations),
                  "time_in_state": breakers.time_in_states(observations, end), "observations": len(observations)}
        level = {None: 0, "closed": 0, "half_open": 1, "open": 2, "unreadable": None}
        logger.info(f"{name}: {result['transitions']}; time in state: {result['time_in_state']}")
        logger.info(charts.line_chart({"state (0 closed, 1 half-open, 2 open)":
                                       [(t, level.get(s)) for t, s in observations]},
                                      f"circuit breaker {name}", "seconds", "state"), html=True)
        return result
