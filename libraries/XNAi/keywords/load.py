"""Load keywords: open-model (constant arrival rate) and closed-model load with honest percentiles.

Latency is measured from the *intended* send time (coordinated omission
corrected) and recorded in an HDR histogram.  Each result is a dictionary
(``latency_ms`` p50/p95/p99/max, ``throughput``, ``error_rate``, ``errors`` by
status and exception, ``late_sends``, ``dropped``, ``valid``...), saved as
JSON under ``<output dir>/load/`` and drawn as charts in log.html.
"""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import psutil
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import charts, load, report, safehttp

from ..base import Context, LibraryComponent

MAX_DURATION_S = 3600
STATS = ("p50", "p95", "p99", "max", "mean")
QUIET_BUSY_PERCENT = 60.0  # before repeating an inconclusive run: the machine below this busy (all cores)
QUIET_WAIT_S = 15.0  # ... waited for at most this long


def inconclusive_message(result: dict) -> str:
    """Why a run's figures are not the target's (the generator missed its schedule), the figures all the
    same, and what to do."""
    lat = result.get("latency_ms") or {}
    machine = result.get("machine") or {}
    unserved = result.get("unserved", 0)
    return (f"INCONCLUSIVE: load run '{result['name']}' could not keep its send schedule "
            f"({result['invalid_reason']}; generator CPU {result['generator_cpu_percent']} % of a core, machine "
            f"{machine.get('busy_percent', '?')} % busy, {machine.get('steal_percent', '?')} % stolen"
            f"{', after ' + str(result['attempts']) + ' attempts' if result.get('attempts') else ''}), so the "
            f"target's figures are not trustworthy: p50 {lat.get('p50')} ms, p99 {lat.get('p99')} ms, "
            f"{result['throughput']}/s answered, error rate {result['error_rate'] * 100:.2f} %"
            f"{f', {unserved} sends unserved' if unserved else ''} ({result['errors'] or 'no errors'}). Rerun on a "
            f"quiet machine; if it recurs there, {result['target_rate']}/s is beyond what this machine can "
            "generate beside the target (spread the load, or lower the profile's rate in the variables file).")


def _secs(value: timedelta, name: str) -> float:
    secs = value.total_seconds()
    if secs <= 0 or secs > MAX_DURATION_S:
        raise Failure(f"{name}={secs:g} s: use a duration between 0 and {MAX_DURATION_S} s.")
    return secs


class LoadKeywords(LibraryComponent):
    """Generates load against the target and judges the result.

    Rates are requests per second (``50``, ``50/s``, ``3000/min``); durations
    are Robot time strings.  Load goes only to loopback hosts or hosts listed
    in ``${ALLOWED_HOSTS}``.  Every run is bounded in time and in count.

    = Load result =

    What `Run Load`, `Run Stepped Load`, `Run Closed Load` and `Wait For Background Load` return:

    | ``latency_ms`` | ``p50``, ``p95``, ``p99``, ``max``, ``mean`` in ms, from each request's intended send time |
    | ``naive_latency_ms`` | the same from the actual send time (what a closed-loop tool reports) |
    | ``sent``, ``completed``, ``ok`` | requests sent, answered (well or not), answered with an OK status |
    | ``errors``, ``error_rate`` | errors by status or exception name (``unserved``: no free user), their share |
    | ``throughput``, ``achieved_rate``, ``target_rate`` | OK answers per second; sends per second; the plan |
    | ``schedule_lag_ms``, ``late_sends``, ``dropped`` | how late sends left, how many, sends dropped at the cap |
    | ``generator_cpu_percent``, ``machine`` | the generator's CPU; the machine's ``busy_percent``, ``steal_percent`` |
    | ``valid``, ``invalid_reason`` | False (and why) when the generator, not the target, missed the schedule |
    | ``timeline`` | per second: ``ok``, ``errors``, ``p50_ms``, ``p99_ms`` |
    | ``name``, ``model``, ``stages``, ``wall_s`` | the run's name, open or closed, its stages, its duration |
    """

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._background: dict[str, tuple] = {}

    def end_background_load(self) -> None:
        """A background load the test never waited for (it failed first) must not run into the next
        test: wait here for it to end (it is bounded by its duration) and drop its result."""
        for handle in list(self._background):
            thread, _box, bound = self._background.pop(handle)
            thread.join(bound)
            logger.warn(f"Background load '{handle}' was not waited for by its test; it ended at the test's end.")

    # ---------------------------------------------------------- helpers --
    def _spec(self, url: str, method: str, json_body, timeout: timedelta, ok_statuses) -> load.RequestSpec:
        safehttp.check(url, self._var("ALLOWED_HOSTS", []))
        if isinstance(ok_statuses, (int, str)):
            ok_statuses = [ok_statuses]
        statuses = tuple(int(s) for s in ok_statuses)
        return load.RequestSpec(url, method.upper(), json_body, {}, timeout.total_seconds(), statuses)

    @staticmethod
    def _rate(value) -> float:
        try:
            return load.parse_rate(value)
        except ValueError as err:
            raise Failure(str(err)) from None

    def _finish(self, result: dict, fail_if_invalid: bool) -> dict:
        out_dir = self._var("OUTPUT DIR", "results")
        path = load.save(result, Path(out_dir) / "load")
        result["saved_to"] = str(path)
        self._log(result)
        if fail_if_invalid and not result["valid"]:
            raise Failure(inconclusive_message(result))
        return result

    @staticmethod
    def _log(result: dict) -> None:
        lat, naive = result["latency_ms"], result["naive_latency_ms"]
        rows = [
            ("model", result["model"]), ("target rate", result["target_rate"]),
            ("sent / ok", f"{result['sent']} / {result['ok']}"), ("throughput", f"{result['throughput']} /s"),
            ("error rate", f"{result['error_rate'] * 100:.3f} %"), ("errors", result["errors"] or "none"),
            ("latency (from intended send)", lat), ("latency (naive)", naive),
            ("schedule lag", result["schedule_lag_ms"]), ("late / dropped / unserved",
             f"{result['late_sends']} / {result['dropped']} / {result.get('unserved', 0)}"),
            ("generator CPU", f"{result['generator_cpu_percent']} % of a core"),
            ("machine CPU", "{busy_percent} % busy, {steal_percent} % stolen ({cores} cores)".format(
                **{"busy_percent": "?", "steal_percent": "?", "cores": "?", **(result.get("machine") or {})})),
            ("valid", result["valid"] or result["invalid_reason"]), ("saved to", result.get("saved_to")),
        ]
        table = "".join(f"<tr><th style='text-align:left'>{k}</th><td>{v}</td></tr>" for k, v in rows)
        logger.info(f"<table>{table}</table>", html=True)
        tl = result["timeline"]
        if tl:
            latency = charts.line_chart(
                {"p50": [(t["second"], t["p50_ms"]) for t in tl], "p99": [(t["second"], t["p99_ms"]) for t in tl]},
                f"{result['name']}: latency per second (from intended send)", "second", "ms")
            rate = charts.line_chart(
                {"ok/s": [(t["second"], t["ok"]) for t in tl], "errors/s": [(t["second"], t["errors"]) for t in tl]},
                f"{result['name']}: throughput and errors", "second", "requests")
            logger.info(latency + rate, html=True)

    # --------------------------------------------------------- keywords --
    @keyword
    def run_load(self, url: str, rate="10/s", duration: timedelta = timedelta(seconds=5), method: str = "GET",
                 json=None, timeout: timedelta = timedelta(seconds=10), ok_statuses=200,
                 max_in_flight: int = 512, name: str = "load", fail_if_invalid: bool = True) -> dict:
        """Sends requests to ``url`` at a constant ``rate`` for ``duration`` (open model) and returns its `load result`.

        Latency is measured from each request's intended send time.  Fails if
        the generator itself could not keep up (``fail_if_invalid=False`` to
        inspect such a result instead).

        Example:
        | ${result}= | Run Load | ${GATEWAY_URL}/xnai/api/v1/health | rate=50/s | duration=10s |
        | Latency Should Be Below | ${result} | p99 | 100 |
        """
        secs = _secs(duration, "duration")
        stages = [load.Stage(self._rate(rate), secs)]
        return self.run_open_load(url, stages, method=method, json_body=json, timeout=timeout, ok_statuses=ok_statuses,
                                  max_in_flight=max_in_flight, name=name, fail_if_invalid=fail_if_invalid)

    @keyword
    def run_stepped_load(self, url: str, *stages: str, method: str = "GET", json=None,
                         timeout: timedelta = timedelta(seconds=10), ok_statuses=200, max_in_flight: int = 512,
                         name: str = "stepped", fail_if_invalid: bool = True) -> dict:
        """Open-model load in stages written ``rate:duration``, e.g. ``10/s:5s    50/s:5s    100/s:5s``.

        Example:
        | ${result}= | Run Stepped Load | ${url} | 10/s:2s | 50/s:2s | 100/s:2s |
        """
        if not stages:
            raise Failure("Give at least one stage, written rate:duration such as 50/s:10s.")
        parsed = []
        for text in stages:
            rate, sep, dur = str(text).partition(":")
            if not sep:
                raise Failure(f"Stage {text!r}: write rate:duration such as 50/s:10s.")
            parsed.append(load.Stage(self._rate(rate), _secs(_timestr(dur), "stage duration")))
        return self.run_open_load(url, parsed, method=method, json_body=json, timeout=timeout, ok_statuses=ok_statuses,
                                  max_in_flight=max_in_flight, name=name, fail_if_invalid=fail_if_invalid)

    @keyword
    def run_ramped_load(self, url: str, start="1/s", end="10/s", duration: timedelta = timedelta(seconds=10),
                        steps: int = 10, method: str = "GET", json=None,
                        timeout: timedelta = timedelta(seconds=10), ok_statuses=200, name: str = "ramp",
                        fail_if_invalid: bool = True) -> dict:
        """Open-model load rising linearly from ``start`` to ``end`` over ``duration`` in ``steps`` steps.

        Example:
        | ${result}= | Run Ramped Load | ${url} | start=10/s | end=100/s | duration=20s |
        """
        if not 1 <= steps <= 1000:
            raise Failure(f"steps={steps}: use 1..1000.")
        first, last, secs = self._rate(start), self._rate(end), _secs(duration, "duration")
        stages = [load.Stage(first + (last - first) * i / max(steps - 1, 1), secs / steps) for i in range(steps)]
        return self.run_open_load(url, stages, method=method, json_body=json, timeout=timeout, ok_statuses=ok_statuses,
                                  name=name, fail_if_invalid=fail_if_invalid)

    def run_open_load(self, url: str, stages: list[load.Stage], *, method: str = "GET", json_body=None,
                      timeout: timedelta = timedelta(seconds=10), ok_statuses=200, max_in_flight: int = 512,
                      name: str = "load", fail_if_invalid: bool = True, users: bool = False) -> dict:
        """Open-model load in ``stages`` (the engine under every load keyword; for other libraries, not a
        keyword).  ``users=True``: ``max_in_flight`` is the workload's number of users, and a send that
        finds all of them waiting counts as unserved demand (an error), not as an invalid run."""
        if sum(s.rate * s.duration_s for s in stages) > load.MAX_REQUESTS:
            raise Failure(f"That is more than {load.MAX_REQUESTS} requests; shorten the run or lower the rate.")
        if max_in_flight < 1:
            raise Failure(f"max_in_flight={max_in_flight}: use a positive number.")
        spec = self._spec(url, method, json_body, timeout, ok_statuses)

        def attempt() -> dict:
            return load.execute(lambda: load.run_open(spec, stages, max_in_flight, users=users), model="open",
                                stages=stages, name=name)

        result = attempt()
        if not result["valid"] and fail_if_invalid:
            # The generator could not keep its schedule (a busy machine): its figures are not the target's.
            # Once, after the machine has quietened (bounded), the run is repeated; both attempts are logged.
            self._finish(result, fail_if_invalid=False)
            quiet = load.wait_for_quiet_machine(busy_below=QUIET_BUSY_PERCENT, bound_s=QUIET_WAIT_S)
            logger.warn(f"Load run '{name}' was inconclusive ({result['invalid_reason']}); repeated once after "
                        f"waiting {quiet['waited_s']} s for the machine to quieten (now {quiet['busy_percent']} % busy"
                        f"{'' if quiet['quiet'] else ', still busy'}).")
            result = attempt()
            result["attempts"] = 2
        return self._finish(result, fail_if_invalid)

    @keyword
    def start_load_in_background(self, url: str, rate="10/s", duration: timedelta = timedelta(seconds=5),
                                 method: str = "GET", json=None, timeout: timedelta = timedelta(seconds=10),
                                 ok_statuses=200, max_in_flight: int = 512, name: str = "background") -> str:
        """Starts open-model load like `Run Load` and returns at once with a handle for `Wait For Background Load`.

        Meanwhile the test can inject a fault, wait for a breaker, remove the
        fault: what the load saw is in the result of `Wait For Background Load`.

        Example:
        | ${load}= | Start Load In Background | ${url} | rate=50/s | duration=6s | method=POST | json=${body} |
        | Make The LLM Fail |
        | ${result}= | Wait For Background Load | ${load} |
        """
        secs = _secs(duration, "duration")
        stages = [load.Stage(self._rate(rate), secs)]
        if stages[0].rate * secs > load.MAX_REQUESTS:
            raise Failure(f"That is more than {load.MAX_REQUESTS} requests; shorten the run or lower the rate.")
        spec = self._spec(url, method, json, timeout, ok_statuses)
        handle = f"{name}-{len(self._background) + 1}"
        box: dict = {}

        def work():
            try:
                box["result"] = load.execute(lambda: load.run_open(spec, stages, max_in_flight), model="open",
                                             stages=stages, name=name)
            except Exception as err:  # noqa: BLE001 - handed to the waiting keyword
                box["error"] = err

        thread = threading.Thread(target=work, name=f"xnai-load-{handle}", daemon=True)
        self._background[handle] = (thread, box, secs + timeout.total_seconds() + 30)
        thread.start()
        return handle

    @keyword
    def wait_for_background_load(self, handle: str, fail_if_invalid: bool = True) -> dict:
        """Waits (bounded by the run's duration + request timeout + 30 s) for a load started in the
        background and returns its `load result`, logged and charted like `Run Load`'s.

        Example:
        | ${result}= | Wait For Background Load | ${load} |
        """
        if handle not in self._background:
            raise Failure(f"No background load '{handle}'. Running: {', '.join(self._background) or 'none'}.")
        thread, box, bound = self._background.pop(handle)
        thread.join(bound)
        if thread.is_alive():
            raise Failure(f"Background load '{handle}' did not finish within {bound:.0f} s.")
        if "error" in box:
            raise Failure(f"Background load '{handle}' failed: {box['error']}")
        return self._finish(box["result"], fail_if_invalid)

    @keyword
    def send_concurrent_requests(self, url: str, count: int = 100, method: str = "GET", json=None,
                                 timeout: timedelta = timedelta(seconds=30)) -> dict:
        """Sends ``count`` requests at the same moment, each on its own connection, and waits for all.

        Returns ``statuses`` (status -> count, exceptions by name), ``max_in_flight``
        (how many were pending together) and ``latency_ms``.  A ``{seq}`` in the
        body makes each request's body unique.

        Example:
        | ${burst}= | Send Concurrent Requests | ${url} | count=120 | method=POST | json=${body} |
        | Should Be Equal As Integers | ${burst}[statuses][200] | 120 |
        """
        if not 1 <= int(count) <= 2000:
            raise Failure(f"count={count}: use 1..2000.")
        spec = self._spec(url, method, json, timeout, (200,))
        result = load.run_burst(spec, int(count))
        logger.info(f"{count} concurrent requests: statuses {result['statuses']}, "
                    f"{result['max_in_flight']} in flight together, latency {result['latency_ms']}")
        return result

    @keyword
    def run_closed_load(self, url: str, users: int = 10, duration: timedelta = timedelta(seconds=5),
                        method: str = "GET", json=None, timeout: timedelta = timedelta(seconds=10),
                        ok_statuses=200, name: str = "closed", fail_if_invalid: bool = True) -> dict:
        """``users`` concurrent users, each sending its next request when answered (closed model).

        A closed model slows down with the server and hides stalls: use it
        for "N concurrent users" questions, not for latency SLOs.

        Example:
        | ${result}= | Run Closed Load | ${url} | users=100 | duration=5s |
        """
        if not 1 <= users <= 5000:
            raise Failure(f"users={users}: use 1..5000.")
        secs = _secs(duration, "duration")
        spec = self._spec(url, method, json, timeout, ok_statuses)
        stages = [load.Stage(users, secs)]
        result = load.execute(lambda: load.run_closed(spec, users, secs), model="closed", stages=stages, name=name)
        return self._finish(result, fail_if_invalid)

    @keyword
    def find_capacity(self, url: str, start="10/s", step: str = "10%", step_duration: timedelta = timedelta(seconds=5),
                      max_rate="10000/s", p99_ms: float = 1000, max_error_rate: float = 0.01, method: str = "GET",
                      json=None, timeout: timedelta = timedelta(seconds=10), ok_statuses=200,
                      max_steps: int = 50, max_memory_percent: float = 100) -> dict:
        """Raises the rate step by step until an SLO breaks; returns the knee and the last good rate.

        ``step`` is a percentage (``10%``) or a fixed increment (``20/s``).
        The search stops when the error rate exceeds ``max_error_rate``, p99
        exceeds ``p99_ms``, the machine's memory use exceeds ``max_memory_percent``,
        the generator can no longer keep up (the result is then inconclusive, not
        a server limit), or ``max_rate`` is reached.

        Example:
        | ${capacity}= | Find Capacity | ${url} | start=50/s | step=10% | p99_ms=1000 |
        | Should Be True | ${capacity}[last_good_rate] >= 100 |
        """
        rate, ceiling = self._rate(start), self._rate(max_rate)
        secs = _secs(step_duration, "step_duration")
        step = str(step).strip()
        spec = self._spec(url, method, json, timeout, ok_statuses)
        steps, last_good, knee, reason = [], None, None, f"reached max_rate {ceiling:g}/s"
        for _ in range(max_steps):
            stages = [load.Stage(rate, secs)]
            result = load.execute(lambda st=stages: load.run_open(spec, st), model="open", stages=stages,
                                  name=f"capacity-{rate:.0f}")
            if not result["valid"]:  # a busy moment of the machine: this step once more, once it is quieter
                quiet = load.wait_for_quiet_machine(busy_below=QUIET_BUSY_PERCENT, bound_s=QUIET_WAIT_S)
                logger.info(f"Capacity step {rate:.0f}/s was inconclusive ({result['invalid_reason']}); repeated "
                            f"after waiting {quiet['waited_s']} s (machine {quiet['busy_percent']} % busy).")
                result = load.execute(lambda st=stages: load.run_open(spec, st), model="open", stages=stages,
                                      name=f"capacity-{rate:.0f}")
            p99 = result["latency_ms"].get("p99", float("inf"))
            memory = psutil.virtual_memory().percent
            steps.append({"rate": round(rate, 3), "p99_ms": p99, "error_rate": result["error_rate"],
                          "throughput": result["throughput"], "memory_percent": memory, "valid": result["valid"]})
            if not result["valid"]:
                reason = f"generator limit at {rate:.0f}/s ({result['invalid_reason']}): inconclusive above"
                break
            if result["error_rate"] > max_error_rate or p99 > p99_ms or memory > max_memory_percent:
                knee = rate
                reason = (f"at {rate:.0f}/s: error rate {result['error_rate'] * 100:.2f} % "
                          f"(limit {max_error_rate * 100:g} %), p99 {p99:.1f} ms (limit {p99_ms:g} ms), "
                          f"memory {memory:.1f} % (limit {max_memory_percent:g} %)")
                break
            last_good = rate
            if rate >= ceiling:
                break
            rate = min(ceiling, rate * (1 + float(step[:-1]) / 100) if step.endswith("%") else rate + self._rate(step))
        else:
            reason = f"stopped after {max_steps} steps"
        capacity = {"knee_rate": knee, "last_good_rate": last_good, "reason": reason, "steps": steps}
        logger.info(f"Capacity: last good {f'{last_good}/s' if last_good is not None else 'none'}, "
                    f"{f'knee {knee}/s' if knee is not None else 'no knee found'}: {reason}")
        logger.info(charts.line_chart(
            {"p99 ms": [(s["rate"], s["p99_ms"]) for s in steps],
             "error %": [(s["rate"], s["error_rate"] * 100) for s in steps]},
            "capacity search", "offered rate (req/s)", "p99 ms / error %"), html=True)
        out_dir = Path(self._var("OUTPUT DIR", "results")) / "load"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "capacity.json").write_text(json_dumps(capacity))
        return capacity

    # ------------------------------------------------------- assertions --
    @keyword
    def load_result_should_be_valid(self, result: dict) -> None:
        """Fails if the generator, not the target, limited the run (late or dropped sends, generator CPU).

        Example:
        | Load Result Should Be Valid | ${result} |
        """
        if not result.get("valid"):
            raise Failure(f"Load run '{result.get('name')}' is invalid: {result.get('invalid_reason')}")

    @keyword
    def latency_should_be_below(self, result: dict, statistic: str, limit_ms: float) -> None:
        """Fails unless the corrected latency ``statistic`` (p50, p95, p99, max, mean) is below ``limit_ms``.

        Example:
        | Latency Should Be Below | ${result} | p99 | 500 |
        """
        if statistic not in STATS:
            raise Failure(f"statistic={statistic!r}: use one of {', '.join(STATS)}.")
        self.load_result_should_be_valid(result)
        if not result["latency_ms"]:
            raise Failure(f"Load run '{result['name']}' had no successful request to measure.")
        value = result["latency_ms"][statistic]
        report.figure(f"{statistic} {value:.1f} ms at {result['target_rate'] or result['throughput']}/s "
                      f"(limit {float(limit_ms):g} ms)")
        if value >= float(limit_ms):
            raise Failure(f"{statistic} latency {value:.1f} ms is not below {float(limit_ms):g} ms "
                          f"({result['ok']} requests at {result['target_rate'] or result['throughput']}/s, "
                          f"measured from intended send time).")

    @keyword
    def error_rate_should_be_below(self, result: dict, limit: float) -> None:
        """Fails unless the error rate (a fraction: 0.001 = 0.1 %) is below ``limit``; names the errors.

        Example:
        | Error Rate Should Be Below | ${result} | 0.001 |
        """
        if result["error_rate"] >= float(limit):
            raise Failure(f"Error rate {result['error_rate'] * 100:.3f} % is not below {float(limit) * 100:g} %: "
                          f"{result['errors']}")

    @keyword
    def load_should_end_without_errors(self, result: dict, seconds: int = 1) -> None:
        """Fails unless the last ``seconds`` full seconds of the run answered requests and had no errors:
        the target served normally again by the end (after a fault was removed).

        Example:
        | Load Should End Without Errors | ${result} | seconds=1 |
        """
        timeline = result.get("timeline") or []
        full = timeline[:-1] if len(timeline) > 1 else timeline  # the last second may be partial
        tail = full[-int(seconds):]
        if not tail or any(t["errors"] for t in tail) or not all(t["ok"] for t in tail):
            raise Failure(f"The last {seconds} s of '{result['name']}' were not clean: {tail} "
                          f"(errors over the run: {result['errors']}).")

    @keyword
    def throughput_should_be_at_least(self, result: dict, rate) -> None:
        """Fails unless successful requests per second reached ``rate``.

        Example:
        | Throughput Should Be At Least | ${result} | 45/s |
        """
        wanted = self._rate(rate)
        if result["throughput"] < wanted:
            raise Failure(f"Throughput {result['throughput']:.1f}/s is below {wanted:g}/s.")


def _timestr(text: str) -> timedelta:
    from robot.utils import timestr_to_secs  # noqa: PLC0415

    try:
        return timedelta(seconds=timestr_to_secs(text.strip()))
    except ValueError:
        raise Failure(f"Duration {text!r} is not a time such as 5s or 1 minute.") from None


def json_dumps(data) -> str:
    return json.dumps(data, indent=2)
