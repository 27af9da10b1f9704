"""Keywords that measure: response times, resource figures of services, leaks, and baselines."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from robot.libraries.BuiltIn import BuiltIn
from xnai_qa import (
    baselines,
    capabilities,
    charts,
    leaks,
    report,
    resources,
    safehttp,
    stats,
)
from xnai_qa.faults.backends import FaultError, make_backend, service_pid

from ..base import Context, LibraryComponent

MAX_SAMPLES = 10_000


class MetricKeywords(LibraryComponent):
    """Measures the target: response times, resource figures of its services, leaks, baselines.

    Each series is bounded in count (``samples``) and in time (``max_time``);
    a request that fails (connection refused, timeout, unexpected status)
    counts as an error and is named in the log.  Resource figures come from
    the service's process tree (testbed processes, or a container's main
    process seen from the Docker host).
    """

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._captures: dict[str, tuple[str, resources.Sampler]] = {}

    @keyword
    def measure_response_times(self, url: str, samples: int = 30, max_time: float = 60.0,
                               expected_status: int = 200, method: str = "GET",
                               content_type: str | None = None) -> dict:
        """Sends ``samples`` sequential requests to ``url`` and returns their latency summary.

        The summary is a dictionary with ``count``, ``errors``, ``min``,
        ``p50``, ``p95``, ``p99``, ``max`` and ``mean`` (milliseconds).  The
        series stops early when ``max_time`` seconds have passed.  The URL's
        host must be loopback or listed in ``${ALLOWED_HOSTS}``.  With ``content_type`` (e.g.
        ``application/json``) an answer of another type counts as failed: a fast answer from the
        wrong service is not a fast health check.

        Example:
        | ${times}= | Measure Response Times | ${GATEWAY_URL}/xnai/api/v1/health | samples=50 |
        | Response Time Should Be Below | ${times} | p99 | 500 |
        """
        if not 0 < samples <= MAX_SAMPLES:
            raise Failure(f"samples={samples}: use 1..{MAX_SAMPLES}.")
        if max_time <= 0:
            raise Failure(f"max_time={max_time}: use a positive number of seconds.")
        allowed = self._var("ALLOWED_HOSTS", [])
        safehttp.check(url, allowed)
        timeout = float(self._var("REQUEST_TIMEOUT_S", 10))
        latencies: list[float] = []
        failures: list[str] = []
        deadline = time.monotonic() + max_time
        with safehttp.session(allowed) as session:
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
                    if content_type and content_type not in resp.headers.get("Content-Type", ""):
                        failures.append(f"Content-Type {resp.headers.get('Content-Type')!r}, not {content_type}")
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
        report.figure(f"{statistic} {value:.1f} ms over {summary['count']} requests (limit {float(limit_ms):g} ms)")
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

    # -------------------------------------------------------- resources --
    def pid_of(self, service: str) -> int:
        """The pid of ``service``'s main process (for other libraries; not a keyword)."""
        get = self._var
        services = get("SERVICES", {}) or {}
        if service not in services:
            raise Failure(f"No service named '{service}' in ${{SERVICES}}. Known: {', '.join(services)}.")
        if services[service].get("process_match"):  # a stack run as plain processes on this machine
            try:
                return resources.find_by_match(services[service]["process_match"])
            except LookupError as err:
                raise Failure(f"Cannot find the process of '{service}': {err}.") from None
        try:
            backend = make_backend(get)
        except FaultError as err:
            raise capabilities.skip("process-figures", f"of '{service}': {err}") from None
        try:
            return service_pid(backend, service, services[service])
        except FaultError as err:
            raise Failure(f"Cannot find the process of '{service}': {err}") from None

    @keyword(tags=["requires:process-figures"])
    def get_resource_figures(self, service: str) -> dict:
        """One sample of ``service``: ``rss_mb``, ``uss_mb``, ``fds``, ``sockets``, ``threads``.

        Example:
        | ${figures}= | Get Resource Figures | rag_api |
        | Should Be True | ${figures}[fds] < 200 |
        """
        figures = resources.sample(self.pid_of(service))
        logger.info(f"{service}: {figures}")
        return figures

    @keyword(tags=["requires:process-figures"])
    def start_resource_capture(self, service: str, interval: timedelta = timedelta(milliseconds=250)) -> str:
        """Samples ``service`` in the background every ``interval`` until `Stop Resource Capture`; returns its id.

        Example:
        | ${capture}= | Start Resource Capture | rag_api |
        | Run Load | ${url} | rate=50/s | duration=5s |
        | ${resources}= | Stop Resource Capture | ${capture} |
        """
        if interval.total_seconds() < 0.05:
            raise Failure(f"interval={interval.total_seconds()} s: use 50ms or more.")
        pid = self.pid_of(service)
        sampler = resources.Sampler(lambda state: resources.sample(pid, state), interval.total_seconds())
        sampler.start()
        capture_id = f"{service}-{len(self._captures) + 1}"
        self._captures[capture_id] = (service, sampler)
        return capture_id

    @keyword
    def stop_resource_capture(self, capture_id: str) -> dict:
        """Stops a capture and returns its summary, charted in the log: ``service``, ``samples`` and, per
        figure (``rss_mb``, ``uss_mb``, ``fds``, ``sockets``, ``threads``, ``cpu_percent``), its ``start``,
        ``min``, ``max``, ``end`` and ``mean``.

        Example:
        | ${resources}= | Stop Resource Capture | ${capture} |
        | Should Be True | ${resources}[rss_mb][max] < 512 |
        """
        if capture_id not in self._captures:
            raise Failure(f"No resource capture '{capture_id}'. Running: {', '.join(self._captures) or 'none'}.")
        service, sampler = self._captures.pop(capture_id)
        samples = sampler.stop()
        summary = resources.summarize(samples)
        summary["service"] = service
        if sampler.errors:
            logger.warn(f"{len(sampler.errors)} samples of {service} failed; first: {sampler.errors[0]}")
        logger.info(f"{service}: {summary}")
        if samples:
            logger.info(
                charts.line_chart(
                    {
                        "rss MB": [(x["t"], x["rss_mb"]) for x in samples],
                        "uss MB": [(x["t"], x["uss_mb"]) for x in samples],
                    },
                    f"{service}: memory",
                    "seconds",
                    "MB",
                )
                + charts.line_chart(
                    {
                        "fds": [(x["t"], x["fds"]) for x in samples],
                        "sockets": [(x["t"], x["sockets"]) for x in samples],
                        "threads": [(x["t"], x["threads"]) for x in samples],
                    },
                    f"{service}: descriptors",
                    "seconds",
                    "count",
                ),
                html=True,
            )
        return summary

    @keyword(tags=["requires:process-figures"])
    def action_should_not_leak(self, service: str, action: str, *args, warmup: int = 2, rounds: int = 5,
                               settle: timedelta = timedelta(seconds=3), min_growth_kb: float = 64.0,
                               max_slope_kb: float = 512.0, check: str = "fds,sockets,memory") -> dict:
        """Runs keyword ``action`` (with ``args``) ``warmup`` times, then ``rounds`` times, and judges ``service``.

        File descriptors and sockets must return *exactly* to the baseline
        by the end (each round waits up to ``settle`` for them; one still open after an early round and
        gone by the end closed late, which the log notes, not a leak).  Above the baseline after the last
        round, as many rounds again run: still growing is a leak, holding is a pool that filled to its
        high-water mark (logged, not a leak).  Memory (USS) is a
        leak only if it grows in every round beyond ``min_growth_kb`` in total,
        or its slope exceeds ``max_slope_kb`` per round.  ``check`` names what
        is judged (``fds``, ``sockets``, ``memory``).  Returns the figures.

        Example:
        | Action Should Not Leak | rag_api | Stream One Answer | warmup=2 | rounds=5 |
        """
        if not 0 <= warmup <= 100 or not 2 <= rounds <= 100:  # validated before anything runs
            raise Failure(f"warmup={warmup}, rounds={rounds}: use warmup 0..100 and rounds 2..100.")
        wanted = {c.strip() for c in check.split(",") if c.strip()}
        unknown = wanted - {"fds", "sockets", "memory"}
        if unknown or not wanted:
            raise Failure(f"check={check!r}: name one or more of fds, sockets, memory.")
        keep = [k for k in ("fds", "sockets") if k in wanted] + (["uss_mb"] if "memory" in wanted else [])
        builtin = BuiltIn()
        for _ in range(warmup):
            builtin.run_keyword(action, *args)
        pid = self.pid_of(service)
        baseline = self._settled(pid, None, settle.total_seconds())
        baseline_fds = resources.fd_targets(pid)
        measured = []
        extra_fds: list[str] = []
        def run_rounds(count: int) -> None:
            for _ in range(count):
                builtin.run_keyword(action, *args)
                measured.append(self._settled(pid, baseline, settle.total_seconds()))

        def judged() -> list[str]:
            return leaks.judge({k: baseline[k] for k in keep}, [{k: r[k] for k in keep} for r in measured],
                               min_growth_kb=min_growth_kb, max_slope_kb=max_slope_kb)

        run_rounds(rounds)
        reasons = judged()
        counted = [k for k in ("fds", "sockets") if k in keep]
        if any(r.split(":")[0] in counted for r in reasons):
            # Above the baseline after the last round: a leak keeps growing with the work, a client pool
            # filling to its high-water mark (2 Redis connections per concurrent stream, say) stops.  As
            # many rounds again decide which it is.
            first = measured[-1]
            run_rounds(rounds)
            if all(measured[-1][k] <= first[k] for k in counted):
                logger.info(f"{service}: descriptors rose to {', '.join(f'{k} {first[k]}' for k in counted)} during "
                            f"the first {rounds} rounds and held there over {rounds} more: a pool filling, not a leak.")
                reasons = [r for r in judged() if r.split(":")[0] not in counted]
            else:
                reasons = judged()
        if measured[-1]["fds"] != baseline["fds"]:  # what is open now that was not, and the reverse
            now = resources.fd_targets(pid)
            extra_fds = [f"+{t}" for t in now if t not in baseline_fds] + [
                f"-{t}" for t in baseline_fds if t not in now
            ]
        for note in leaks.late_closes({k: baseline[k] for k in keep}, [{k: r[k] for k in keep} for r in measured]):
            logger.info(f"{service}: {note} (not a leak).")
        figures = {"baseline": baseline, "rounds": measured, "leak": reasons}
        logger.info(charts.line_chart(
            {"uss MB": [(i, r["uss_mb"]) for i, r in enumerate([baseline, *measured])]},
            f"{service}: memory after each round of {action}", "round", "MB")
            + charts.line_chart(
            {k: [(i, r[k]) for i, r in enumerate([baseline, *measured])] for k in ("fds", "sockets")},
            f"{service}: descriptors after each round", "round", "count"), html=True)
        if reasons:
            detail = f"\ndescriptors that changed: {extra_fds[:10]}" if extra_fds else ""
            raise Failure(f"'{action}' leaks in {service}:\n- " + "\n- ".join(reasons) + detail)
        return figures

    @staticmethod
    def _settled(pid: int, baseline: dict | None, settle_s: float) -> dict:
        """A sample once countable figures have settled: equal to ``baseline`` when there is one,
        else unchanged over three samples 150 ms apart (connections of the last action closing).
        After ``settle_s`` the last sample is taken as it is."""
        deadline = time.monotonic() + settle_s
        history: list[tuple] = []
        while True:
            figures = resources.sample(pid)
            key = (figures["fds"], figures["sockets"])
            if baseline is not None and key == (baseline["fds"], baseline["sockets"]):
                return figures
            history.append(key)
            if baseline is None and len(history) >= 3 and len(set(history[-3:])) == 1:
                return figures
            if time.monotonic() >= deadline:
                return figures
            time.sleep(0.15 if baseline is None else 0.05)

    # -------------------------------------------------------- baselines --
    def _baseline_dir(self) -> Path:
        folder = self._var("BASELINE_DIR", None)
        if not folder:
            folder = Path(self._var("OUTPUT DIR", "results")) / "baselines"
        return Path(folder)

    @keyword
    def baseline_figures_from_load(self, result: dict, memory_mb: float | None = None) -> dict:
        """The figures a baseline keeps from a load result: ``p50_ms``, ``p99_ms``, ``error_rate``,
        ``throughput`` (and ``memory_mb`` when given).

        Example:
        | ${figures}= | Baseline Figures From Load | ${result} | memory_mb=${resources}[rss_mb][max] |
        """
        return baselines.figures_from_load(result, memory_mb)

    @keyword
    def combine_baseline_runs(self, *runs: dict) -> dict:
        """The mean of each figure over several runs (the seed repeats a baseline 3 times and averages):
        the same keys as `Baseline Figures From Load`.

        Example:
        | ${baseline}= | Combine Baseline Runs | ${run1} | ${run2} | ${run3} |
        """
        if not runs:
            raise Failure("Give at least one run's figures.")
        return baselines.combine(list(runs))

    @keyword
    def save_baseline(self, name: str, figures: dict) -> str:
        """Saves ``figures`` as baseline ``name`` (JSON in ``${BASELINE_DIR}``, default results/baselines).

        Example:
        | Save Baseline | profile-1 | ${figures} |
        """
        path = baselines.save(name, dict(figures), self._baseline_dir())
        logger.info(f"Baseline '{name}' saved to {path}: {figures}")
        return str(path)

    @keyword
    def figures_should_match_baseline(self, name: str, figures: dict, p50_tolerance: float = 0.10,
                                      p99_tolerance: float = 0.20, memory_tolerance: float = 0.05,
                                      max_error_rate: float = 0.001, reference_dir: str | None = None) -> list:
        """Compares ``figures`` with baseline ``name``: p50 within 10 %, p99 within 20 %, memory within 5 %,
        errors below 0.1 % (the seed's tolerances); fails naming each figure that moved and by how much.
        The baseline is read from ``reference_dir`` when given, else from ``${BASELINE_DIR}``.

        Example:
        | Figures Should Match Baseline | profile-1 | ${figures} |
        """
        try:
            reference = baselines.load(name, reference_dir or self._baseline_dir())
        except FileNotFoundError as err:
            raise Failure(str(err)) from None
        rows = baselines.compare(dict(figures), reference,
                                 {"p50_ms": p50_tolerance, "p99_ms": p99_tolerance, "memory_mb": memory_tolerance},
                                 max_error_rate)
        table = "".join(
            f"<tr><td>{r['figure']}</td><td>{r['baseline']}</td><td>{r['current']}</td>"
            f"<td>{_change(r)}</td><td>{'<' if r['change'] is None else '±'}{r['allowed'] * 100:g} %</td>"
            f"<td>{'ok' if r['ok'] else '<b>MOVED</b>'}</td></tr>" for r in rows)
        logger.info("<table><tr><th>figure</th><th>baseline</th><th>now</th><th>change</th><th>allowed</th>"
                    f"<th></th></tr>{table}</table>", html=True)
        moved = [r for r in rows if not r["ok"]]
        if moved:
            raise Failure("Figures moved from baseline '" + name + "': " + "; ".join(
                f"{r['figure']} {r['baseline']} -> {r['current']}"
                + (f" ({r['change'] * 100:+.1f} %, allowed ±{r['allowed'] * 100:g} %)" if r["change"] is not None
                   else f" (allowed < {r['allowed'] * 100:g} %)") for r in moved))
        return rows


def _change(row: dict) -> str:
    return "" if row["change"] is None else f"{row['change'] * 100:+.1f} %"
