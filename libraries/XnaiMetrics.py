"""Keywords that measure: response-time series and their percentiles."""

from __future__ import annotations

import time

import requests
from robot.api import logger
from robot.api.deco import keyword, library
from robot.api.exceptions import Failure
from robot.libraries.BuiltIn import BuiltIn

from xnai_qa import stats, targetconfig

MAX_SAMPLES = 10_000


@library(scope="GLOBAL", auto_keywords=False)
class XnaiMetrics:
    """Measures response times of the target with a bounded series of requests.

    Each series is bounded in count (``samples``) and in time (``max_time``);
    a request that fails (connection refused, timeout, unexpected status)
    counts as an error and is named in the log.
    """

    @keyword
    def measure_response_times(self, url: str, samples: int = 30, max_time: float = 60.0,
                               expected_status: int = 200, method: str = "GET") -> dict:
        """Sends ``samples`` sequential requests to ``url`` and returns their latency summary.

        The summary is a dictionary with ``count``, ``errors``, ``min``,
        ``p50``, ``p95``, ``p99``, ``max`` and ``mean`` (milliseconds).  The
        series stops early when ``max_time`` seconds have passed.  The URL's
        host must be loopback or listed in ``${ALLOWED_HOSTS}``.

        Example:
        | ${times}= | Measure Response Times | ${GATEWAY_URL}/xnai/api/v1/health | samples=50 |
        | Response Time Should Be Below | ${times} | p99 | 500 |
        """
        if not 0 < samples <= MAX_SAMPLES:
            raise Failure(f"samples={samples}: use 1..{MAX_SAMPLES}.")
        if max_time <= 0:
            raise Failure(f"max_time={max_time}: use a positive number of seconds.")
        host = requests.utils.urlparse(url).hostname or ""
        allowed = BuiltIn().get_variable_value("${ALLOWED_HOSTS}", [])
        try:
            targetconfig.check_host_allowed(host, allowed)
        except targetconfig.TargetConfigError as err:
            raise Failure(str(err)) from None
        timeout = float(BuiltIn().get_variable_value("${REQUEST_TIMEOUT_S}", 10))
        latencies: list[float] = []
        failures: list[str] = []
        deadline = time.monotonic() + max_time
        with requests.Session() as session:
            for _ in range(samples):
                if time.monotonic() >= deadline:
                    break
                started = time.perf_counter()
                try:
                    resp = session.request(method, url, timeout=timeout)
                    elapsed = (time.perf_counter() - started) * 1000
                    if resp.status_code != expected_status:
                        failures.append(f"status {resp.status_code}")
                        continue
                    latencies.append(elapsed)
                except requests.RequestException as err:
                    failures.append(type(err).__name__ + ": " + str(err)[:120])
        summary = stats.summarize(latencies, errors=len(failures))
        summary["url"] = url
        logger.info(f"{url}: {summary}")
        if failures:
            logger.warn(f"{len(failures)} of {len(failures) + len(latencies)} requests to {url} failed; "
                        f"first: {failures[0]}")
        return summary

    @keyword
    def response_time_should_be_below(self, summary: dict, statistic: str, limit_ms: float) -> None:
        """Fails if ``summary[statistic]`` (e.g. ``p99``) is at or above ``limit_ms``, or if any request failed.

        Example:
        | Response Time Should Be Below | ${times} | p99 | ${RESPONSE_TIME_BOUND_MS} |
        """
        if statistic not in ("min", "p50", "p95", "p99", "max", "mean"):
            raise Failure(f"Unknown statistic '{statistic}': use p50, p95, p99, max, min or mean.")
        if summary.get("errors"):
            raise Failure(f"{summary['errors']} request(s) failed to {summary.get('url', 'the target')}; "
                          "a response time cannot hide failures.")
        if not summary.get("count"):
            raise Failure("No successful request was measured.")
        value = summary[statistic]
        if value >= float(limit_ms):
            raise Failure(f"{statistic} response time {value:.1f} ms is not below {float(limit_ms):g} ms "
                          f"({summary['count']} requests to {summary.get('url', '?')}).")
        logger.info(f"{statistic} {value:.1f} ms < {float(limit_ms):g} ms over {summary['count']} requests")

    @keyword
    def response_time_should_be_between(self, summary: dict, statistic: str, low_ms: float, high_ms: float) -> None:
        """Fails unless ``low_ms`` <= ``summary[statistic]`` < ``high_ms`` (and no request failed).

        Example:
        | Response Time Should Be Between | ${times} | p50 | 200 | 350 |
        """
        self.response_time_should_be_below(summary, statistic, high_ms)
        value = summary[statistic]
        if value < float(low_ms):
            raise Failure(f"{statistic} response time {value:.1f} ms is below {float(low_ms):g} ms "
                          f"({summary['count']} requests to {summary.get('url', '?')}).")
