"""Circuit-breaker keywords: read state from Redis, assert it, wait for it, record its timeline.

The key comes from ``${BREAKER_KEY_PATTERN}`` (``circuit_breaker:{name}`` in the stack's code,
``cb:{name}:state`` in the seed) and the value is parsed as ``${BREAKER_STATE_FORMAT}`` (``json`` or
``plain``).  Timeouts and thresholds come from ``${TIMINGS}``.  Transitions are measured from the
observed state, never from the clock alone.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure, SkipExecution
from xnai_qa import breakers, capabilities, charts, redisconn, report, safehttp

from ..base import Context, LibraryComponent


class BreakerKeywords(LibraryComponent):
    """Observes the target's circuit breakers through Redis."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._timelines: dict[str, tuple[str, threading.Thread, list, threading.Event]] = {}

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

    def _ttl(self) -> int:
        """The expiry a breaker's state key gets (``${TIMINGS}[breaker_ttl_s]``)."""
        return int((self._var("TIMINGS", {}) or {}).get("breaker_ttl_s", 300))

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
    def force_circuit_breaker_open(self, name: str) -> None:
        """Writes breaker ``name``'s state as open (just failed, threshold reached) into Redis, the
        way the stack's breaker stores it, so its next calls are rejected until the recovery timeout:
        the degraded mode without breaking its dependency.  Undo with `Reset Circuit Breaker`.

        Example:
        | Force Circuit Breaker Open | redis_cache |
        | [Teardown] | Reset Circuit Breaker | redis_cache |
        """
        import json as jsonlib  # noqa: PLC0415
        import time  # noqa: PLC0415

        fmt = self._var("BREAKER_STATE_FORMAT", "json")
        threshold = self.failure_threshold_of(name)
        now = time.time()
        value = "OPEN" if fmt == "plain" else jsonlib.dumps({
            "state": "open", "failure_count": threshold, "last_failure_time": now, "success_count": 0,
            "last_success_time": None, "total_calls": threshold, "total_failures": threshold,
            "total_successes": 0})
        self._client().set(self._key(name), value, ex=self._ttl())
        logger.info(f"{self._key(name)} set to open")

    @keyword
    def write_a_corrupt_circuit_breaker_state(self, name: str) -> str:
        """Writes into breaker ``name``'s Redis key what no breaker writes (text that is neither the JSON
        state nor a state name, as an older version's format or a hand edit leaves), with the breakers'
        expiry; returns it.  Undo with `Reset Circuit Breaker`.

        Example:
        | Write A Corrupt Circuit Breaker State | rag_api |
        """
        value = "{not a breaker state"
        self._client().set(self._key(name), value, ex=self._ttl())
        logger.info(f"{self._key(name)} set to {value!r}")
        return value

    @keyword
    def reset_every_circuit_breaker(self) -> None:
        """Deletes the state of every breaker named in ``${TIMINGS}`` from Redis (test set-up/clean-up).

        Example:
        | [Setup] | Reset Every Circuit Breaker |
        """
        names = list((self._var("TIMINGS", {}) or {}).get("breakers", {}))
        if names:
            self._client().delete(*(self._key(n) for n in names))

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
        """Stops a timeline and returns ``transitions`` (at, from, to) and ``time_in_state`` (seconds), charted in
        the log.

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
                  "time_in_state": breakers.time_in_states(observations, end), "observations": len(observations),
                  "states": breakers.state_sequence(observations)}
        level = {None: 0, "closed": 0, "half_open": 1, "open": 2, "unreadable": None}
        logger.info(f"{name}: {result['transitions']}; time in state: {result['time_in_state']}")
        logger.info(charts.line_chart({"state (0 closed, 1 half-open, 2 open)":
                                       [(t, level.get(s)) for t, s in observations]},
                                      f"circuit breaker {name}", "seconds", "state"), html=True)
        return result

    @keyword
    def breaker_should_have_stayed_closed(self, timeline: dict) -> None:
        """Fails unless the timeline saw the breaker closed and never open, half-open or unreadable.

        Example:
        | Breaker Should Have Stayed Closed | ${timeline} |
        """
        seen = set(timeline["states"]) - {None}
        if "closed" not in seen:
            raise Failure(f"Breaker '{timeline['breaker']}' was never seen closed in Redis (seen: "
                          f"{timeline['states']}): its state is not observable, so 'stayed closed' is unproven.")
        if seen != {"closed"}:
            raise Failure(f"Breaker '{timeline['breaker']}' left closed: {timeline['transitions']}")

    @keyword
    def breaker_should_have_passed_through(self, timeline: dict, *states: str) -> None:
        """Fails unless the timeline shows ``states`` in this order (other states may come between).

        Example:
        | Breaker Should Have Passed Through | ${timeline} | open | half_open | closed |
        """
        wanted = [self._state_name(s) for s in states]
        if not wanted:
            raise Failure("Name at least one state: closed, open or half_open.")
        if not breakers.passes_through(timeline["states"], wanted):
            raise Failure(f"Breaker '{timeline['breaker']}' did not pass through {' -> '.join(wanted)}; "
                          f"it went {' -> '.join(str(s) for s in timeline['states'])}.")

    @keyword("Half-Open Call Limit Of")
    def half_open_call_limit_of(self, name: str) -> int:
        """How many trial calls breaker ``name`` lets through while half-open (from ``${TIMINGS}``).

        Example:
        | ${limit}= | Half-Open Call Limit Of | rag_api |
        """
        return int(self._spec(name)["half_open_max_calls"])

    @keyword
    def breaker_should_have_counted_calls(self, before: dict, after: dict, calls: int) -> int:
        """Fails unless the breaker's ``total_calls`` grew by at least ``calls`` between two readings of
        `Get Circuit Breaker State`: fewer means updates were lost under concurrency.  Skipped (with the
        reason) for a breaker format that keeps no counters.

        Example:
        | Breaker Should Have Counted Calls | ${before} | ${after} | 120 |
        """
        if "total_calls" not in after:
            raise SkipExecution("This breaker format keeps no call counters (the seed's plain form); "
                                "lost updates cannot be detected here.")
        grew = int(after["total_calls"]) - int(before.get("total_calls") or 0)
        if grew < int(calls):
            raise Failure(f"The breaker counted {grew} calls for {calls} answered requests: "
                          f"{int(calls) - grew} updates were lost (read-modify-write without a lock?).")
        return grew

    @keyword
    def breaker_counters_should_have_grown(self, before: dict, after: dict, calls: int, successes: int,
                                           failures: int) -> None:
        """Fails unless the breaker's ``total_calls``, ``total_successes`` and ``total_failures`` grew by
        exactly these numbers between two readings of `Get Circuit Breaker State` (a reading of a reset
        breaker counts as zeros).  Skipped (with the reason) for a breaker format that keeps no counters.

        Example:
        | Breaker Counters Should Have Grown | ${before} | ${after} | calls=3 | successes=2 | failures=1 |
        """
        if "total_calls" not in after:
            raise SkipExecution("This breaker format keeps no call counters (the seed's plain form).")
        expected = {"total_calls": int(calls), "total_successes": int(successes), "total_failures": int(failures)}
        grew = {key: int(after.get(key) or 0) - int(before.get(key) or 0) for key in expected}
        wrong = [f"{key} grew by {grew[key]}, not {value}" for key, value in expected.items() if grew[key] != value]
        if wrong:
            raise Failure(f"The breaker's counters do not match {calls} calls ({successes} answered, {failures} "
                          f"failed): {'; '.join(wrong)}.")

    # --------------------------------------------------------- overhead --
    @keyword(tags=["requires:breaker-bypass"])
    def measure_breaker_overhead(self, name: str = "rag_api", samples: int = 320, rounds: int = 16,
                                 limit_ms: float | None = None, max_rounds: int = 48) -> dict:
        """Measures what breaker ``name`` adds to a query: the p50 with it minus the p50 without it.

        ``samples`` sequential one-token queries are timed on each side, in
        ``rounds`` pairs of blocks (with then without, or the other way round,
        alternating), so what else the machine does falls on both sides alike.
        ``overhead_ms`` is the median over rounds of (p50 with - p50 without);
        ``interval_ms`` is its 95 % confidence interval (distribution-free, so a
        round that met a burst of load elsewhere on the machine does not widen
        it) and ``resolution_ms`` its half-width, i.e. the smallest overhead
        this run can tell from zero.  The breaker is taken out of the path with `Take Circuit
        Breaker Out Of The Path` (a fault, always undone).  Skipped, with the
        reason, on a target that cannot bypass its breakers.

        With ``limit_ms`` the measurement goes on, two rounds at a time, until it decides against that
        limit (its 95 % interval lies wholly below or wholly above it, and resolves half of it) or it
        has ``max_rounds`` rounds: a noisy or busy machine widens the spread of the rounds, and more
        rounds narrow the interval again, so the verdict is about the breaker, not the machine.
        ``rounds`` in the result says how many it took.

        Example:
        | ${overhead}= | Measure Breaker Overhead | rag_api |
        | Breaker Overhead Should Be Below | ${overhead} | 2 |
        """
        capabilities.require("breaker-bypass", self._var)
        if not 20 <= int(samples) <= 5000 or not 3 <= int(rounds) <= 50 or not int(rounds) <= int(max_rounds) <= 100:
            raise Failure(f"samples={samples}, rounds={rounds}, max_rounds={max_rounds}: use samples 20..5000, "
                          "rounds 3..50 and max_rounds from rounds to 100.")
        url = f"{self._var('RAG_API_URL')}{self._var('API_PREFIX')}{self._var('QUERY_PATH', '/query')}"
        safehttp.check(url, self._var("ALLOWED_HOSTS", []))
        field = self._var("QUERY_FIELD", "query")
        tag = uuid.uuid4().hex[:8]
        per_block = max(int(samples) // int(rounds), 5)
        pairs: list[tuple[list[float], list[float]]] = []  # (with, without) per round
        counter = iter(range(10**9))
        with safehttp.session(self._var("ALLOWED_HOSTS", [])) as session:

            def timed_block() -> list[float]:
                out = []
                for i in range(per_block + 2):  # the first two warm the connection and are dropped
                    body: dict[str, Any] = {field: f"overhead probe {tag} {next(counter)}", "use_rag": False,
                                            "max_tokens": 1}
                    start = time.perf_counter()
                    resp = session.post(url, json=body, timeout=10)
                    elapsed = (time.perf_counter() - start) * 1000
                    if resp.status_code != 200:
                        raise Failure(f"A probe query answered {resp.status_code}: {resp.text[:200]}")
                    if i >= 2:
                        out.append(elapsed)
                return out

            def bypassed_block() -> list[float]:
                fault = self.ctx.faults.take_circuit_breaker_out_of_the_path(name)
                try:
                    return timed_block()
                finally:
                    self.ctx.faults.remove_fault(fault)

            def one_round(r: int) -> None:
                if r % 2 == 0:
                    with_block = timed_block()
                    pairs.append((with_block, bypassed_block()))
                else:
                    without_block = bypassed_block()
                    pairs.append((timed_block(), without_block))

            for r in range(int(rounds)):
                one_round(r)
            while (limit_ms is not None and len(pairs) + 2 <= int(max_rounds)
                   and not breakers.overhead_decided(breakers.overhead_summary(name, pairs), float(limit_ms))):
                one_round(len(pairs))
                one_round(len(pairs))
        result = breakers.overhead_summary(name, pairs)
        if limit_ms is not None and len(pairs) > int(rounds):  # extended only to decide against a limit
            logger.info(
                f"Extended from {rounds} to {len(pairs)} rounds to decide against {float(limit_ms):g} ms "
                f"(now {result['overhead_ms']} ms, "
                f"95 % interval {result['interval_ms'][0]}..{result['interval_ms'][1]} ms)."
            )
        result["timer_resolution_us"] = round(time.get_clock_info("perf_counter").resolution * 1e6, 3)
        logger.info(f"Breaker '{name}' overhead: {result}")
        with_ms = [v for w, _ in pairs for v in w]
        without_ms = [v for _, wo in pairs for v in wo]
        logger.info(charts.line_chart(
            {"with breaker": list(enumerate(with_ms)), "without breaker": list(enumerate(without_ms))},
            f"one-token queries with and without breaker {name}", "sample", "ms"), html=True)
        return result

    @keyword
    def breaker_overhead_should_be_below(self, overhead: dict, limit_ms: float) -> None:
        """Fails if the measured overhead reaches ``limit_ms`` (its 95 % interval wholly at or above it),
        and fails as INCONCLUSIVE if the measurement does not decide (its interval straddles the limit,
        or does not resolve half of it): an undecided result is not a pass.

        Example:
        | Breaker Overhead Should Be Below | ${overhead} | 2 |
        """
        limit = float(limit_ms)
        low, high = overhead["interval_ms"]
        report.figure(f"{overhead['overhead_ms']} ms per call (95 % interval {low:.3f}..{high:.3f} ms) after "
                      f"{overhead['rounds']} rounds (limit {limit:g} ms)")
        if low >= limit:
            raise Failure(f"Breaker '{overhead['breaker']}' adds {overhead['overhead_ms']} ms per call "
                          f"(p50 {overhead['p50_with_ms']} ms with, {overhead['p50_without_ms']} ms without; 95 % "
                          f"interval {low:.3f}..{high:.3f} ms), not below {limit:g} ms.")
        if not breakers.overhead_decided(overhead, limit):
            raise Failure(
                f"INCONCLUSIVE: after {overhead['rounds']} rounds the breaker's overhead is "
                f"{overhead['overhead_ms']} ms (95 % interval {low:.3f}..{high:.3f} ms): it neither clears "
                f"nor reaches {limit:g} ms with a resolution of half of it. The machine was too noisy to tell; "
                "rerun on a quieter one, or give more rounds."
            )
        logger.info(f"Breaker '{overhead['breaker']}' adds {overhead['overhead_ms']} ms per call, below "
                    f"{limit:g} ms (95 % interval {low:.3f}..{high:.3f} ms).")
