"""KG-5 performance keywords: the seed's load profiles, their verdicts, baselines and the capacity knee.

A profile (``${LOAD_PROFILES}``) runs fresh questions (``{seq}`` makes each
unique, so every request takes the full query path, not the cache) against
``${GATEWAY_URL}${API_PREFIX}${QUERY_PATH}`` while the resources of
``${PERFORMANCE_SERVICES}`` and the machine's memory are sampled.  Every
result goes into ``${OUTPUT DIR}/performance/summary.json`` and into the
suite's metadata (the top of report.html).  Baselines are saved in
``${BASELINE_DIR}`` and compared against ``${BASELINE_REFERENCE_DIR}`` (empty:
this run's own baseline).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import psutil
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure, SkipExecution
from robot.libraries.BuiltIn import BuiltIn
from robot.utils import timestr_to_secs
from xnai_qa import baselines, load, performance, resources, targetconfig

from ..base import Context, LibraryComponent


class _MemorySampler(threading.Thread):
    """The machine's memory use (percent), sampled until stopped."""

    def __init__(self, interval_s: float = 0.25):
        super().__init__(daemon=True)
        self.interval_s, self.peak, self._stop_event = interval_s, 0.0, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            self.peak = max(self.peak, psutil.virtual_memory().percent)
            self._stop_event.wait(self.interval_s)

    def stop(self) -> float:
        self._stop_event.set()
        self.join(timeout=5)
        return self.peak


class PerformanceKeywords(LibraryComponent):
    """Runs the seed's load profiles and judges them; keeps the run's performance summary."""

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._summary: performance.Summary | None = None

    # ---------------------------------------------------------- helpers --
    def _summary_file(self) -> performance.Summary:
        if self._summary is None:
            out = Path(self._var("OUTPUT DIR", "results")) / "performance" / "summary.json"
            self._summary = performance.Summary(out)
        return self._summary

    def _profile(self, name: str, **overrides) -> dict:
        try:
            return performance.profile(self._var("LOAD_PROFILES", {}) or {}, name, **overrides)
        except performance.ProfileError as err:
            raise Failure(str(err)) from None

    def _query_url(self) -> str:
        return f"{self._var('GATEWAY_URL')}{self._var('API_PREFIX')}{self._var('QUERY_PATH')}"

    def _query_body(self, name: str) -> dict:
        return {self._var("QUERY_FIELD"): f"Profile {name} question {{seq}}: what does the gateway forward?"}

    # --------------------------------------------------------- keywords --
    @keyword
    def run_load_profile(self, profile: str, duration: str | None = None, record: bool = True,
                         fail_if_invalid: bool = True) -> dict:
        """Runs load profile ``profile`` against the query path and returns its figures.

        The result has ``latency_ms`` (p50, p95, p99, max), ``throughput``,
        ``error_rate``, ``services`` (peak RSS MB and mean CPU % of each service
        in ``${PERFORMANCE_SERVICES}``) and ``system_memory_percent`` (peak).
        ``duration`` overrides the profile's (e.g. short rounds of a leak check);
        ``record=False`` keeps the run out of the summary; ``fail_if_invalid=False`` accepts a run whose
        send schedule slipped (for checks that judge no latency).  The profile's users are the in-flight
        cap: a send that finds all of them waiting counts as an error ("unserved"), the stack's failure
        to keep up, not the generator's.  Charts go to the log.

        Example:
        | ${normal}= | Run Load Profile | normal |
        | Profile Should Meet Targets | ${normal} |
        """
        spec = self._profile(profile, duration=duration)
        metrics = self.ctx.metrics
        captures = {}
        for svc in self._var("PERFORMANCE_SERVICES", []):
            try:
                captures[svc] = metrics.start_resource_capture(svc)
            except SkipExecution as missing:  # latency and errors are still judged; RSS and CPU go unrecorded
                logger.info(f"{missing} Profile {profile} records no RSS or CPU of {svc}.")
        memory = _MemorySampler()
        memory.start()
        try:
            stages = [load.Stage(spec["rate"], spec["duration_s"])]
            result = self.ctx.load.run_open_load(
                self._query_url(), stages, method="POST", json_body=self._query_body(profile),
                timeout=timedelta(seconds=float(self._var("REQUEST_TIMEOUT_S", 10))), max_in_flight=spec["users"],
                name=f"profile-{profile}", fail_if_invalid=fail_if_invalid, users=True)
        finally:
            peak_memory = memory.stop()
            figures = {svc: metrics.stop_resource_capture(cap) for svc, cap in captures.items()}
        services = {svc: {"rss_mb": f.get("rss_mb", {}).get("max"), "cpu_percent": f.get("cpu_percent", {}).get("mean")}
                    for svc, f in figures.items()}
        out = {"profile": profile, "users": spec["users"], "rate": spec["rate"], "duration_s": spec["duration_s"],
               "latency_ms": result["latency_ms"], "throughput": result["throughput"],
               "error_rate": result["error_rate"], "errors": result["errors"], "sent": result["sent"],
               "services": services, "system_memory_percent": peak_memory,
               "memory_mb": services.get("rag_api", {}).get("rss_mb")}
        rows = "".join(f"<tr><td>{svc}</td><td>{v['rss_mb']}</td><td>{v['cpu_percent']}</td></tr>"
                       for svc, v in services.items())
        logger.info(
            f"<b>Profile {profile}</b>: {spec['users']} users, {spec['rate']:g}/s for {spec['duration_s']:g} s; "
            f"latency {result['latency_ms']}; throughput {result['throughput']}/s; error rate "
            f"{result['error_rate'] * 100:.3f} %; machine memory peak {peak_memory:.1f} %"
            f"<table><tr><th>service</th><th>peak RSS MB</th><th>mean CPU %</th></tr>{rows}</table>",
            html=True,
        )
        if record:
            self._summary_file().add("profiles", profile, out)
            lat = result["latency_ms"]
            BuiltIn().set_suite_metadata(
                f"Profile {profile}",
                f"p50 {lat.get('p50')} / p95 {lat.get('p95')} / p99 {lat.get('p99')} ms, "
                f"{result['throughput']}/s, errors {result['error_rate'] * 100:.2f} %, memory {peak_memory:.0f} %",
                top=True,
            )
        return out

    @keyword
    def profile_should_meet_targets(self, result: dict, p99_ms: float | None = None,
                                    max_error_rate: float = 0.001, max_memory_percent: float = 94) -> None:
        """Fails naming every target the profile missed: query p99 (default ``${QUERY_P99_MS}``), error
        rate (the seed's 0.1 %) and machine memory (the seed's 94 %).

        Example:
        | Profile Should Meet Targets | ${peak} | max_memory_percent=94 |
        """
        limit = float(p99_ms if p99_ms is not None else self._var("QUERY_P99_MS", 500))
        missed = performance.verdicts(result, p99_ms=limit, max_error_rate=float(max_error_rate),
                                      max_memory_percent=float(max_memory_percent))
        if missed:
            raise Failure(f"Profile {result['profile']} missed its targets: " + "; ".join(missed) + ".")
        logger.info(f"Profile {result['profile']} met its targets (p99 < {limit:g} ms, errors < "
                    f"{float(max_error_rate) * 100:g} %, memory < {float(max_memory_percent):g} %).")

    @keyword
    def wait_until_target_is_idle(self, service: str = "rag_api", cpu_below: float = 20,
                                  timeout: timedelta = timedelta(seconds=10)) -> float:
        """Polls ``service`` until its CPU over half a second is below ``cpu_below`` % (the seed's
        "wait for cooldown"), at most ``timeout``; returns the seconds waited.  Fails if it never settles.
        On a target without process figures the machine's CPU stands in (with a warning, not a failure,
        if it stays busy: the load run that follows judges whether it could measure).

        Example:
        | Wait Until Target Is Idle | rag_api | cpu_below=20 | timeout=${PROFILE_COOLDOWN} |
        """
        try:
            pid = self.ctx.metrics.pid_of(service)
        except SkipExecution as missing:
            # No process figures on this target: the machine's CPU stands in (the stack runs here).
            logger.info(f"{missing} So the machine's CPU stands in for {service}'s.")
            # Other work on the machine is not the target's: it is reported, and the run's own
            # load measurement judges whether the machine let it measure (inconclusive otherwise).
            reading = load.wait_for_quiet_machine(busy_below=float(cpu_below), bound_s=timeout.total_seconds())
            if reading["quiet"]:
                logger.info(f"machine idle ({reading['busy_percent']:.1f} % CPU) after {reading['waited_s']} s")
            else:
                logger.warn(f"The machine did not settle below {float(cpu_below):g} % CPU within "
                            f"{timeout.total_seconds():g} s (last {reading['busy_percent']} %); going on.")
            return reading["waited_s"]
        started = time.monotonic()
        deadline = started + timeout.total_seconds()
        state: dict = {}
        resources.sample(pid, state)
        last = None
        while time.monotonic() < deadline:
            time.sleep(0.5)  # the measuring window of one CPU reading (bounded by the deadline)
            last = resources.sample(pid, state)["cpu_percent"]
            if last is not None and last < float(cpu_below):
                waited = round(time.monotonic() - started, 2)
                logger.info(f"{service} idle ({last:.1f} % CPU) after {waited} s")
                return waited
        raise Failure(f"{service} did not settle below {float(cpu_below):g} % CPU within "
                      f"{timeout.total_seconds():g} s (last {last} %).")

    @keyword
    def establish_baseline(self, profile: str = "baseline", runs: int = 3,
                           cooldown: timedelta = timedelta(seconds=10)) -> dict:
        """The seed's procedure 1: runs ``profile`` ``runs`` times (waiting for the API to be idle
        before each), combines the figures (mean), checks that every run agrees with the mean within
        the comparison tolerances, and saves the baseline under the profile's name.

        Example:
        | ${baseline}= | Establish Baseline | baseline | runs=3 | cooldown=${PROFILE_COOLDOWN} |
        """
        if not 1 <= int(runs) <= 10:
            raise Failure(f"runs={runs}: use 1..10 (the seed repeats 3 times).")
        figures = []
        for index in range(int(runs)):
            self.wait_until_target_is_idle("rag_api", timeout=cooldown)
            result = self.run_load_profile(profile, record=False)
            figures.append(baselines.figures_from_load(
                {"latency_ms": result["latency_ms"], "error_rate": result["error_rate"],
                 "throughput": result["throughput"]}, result["memory_mb"]))
            logger.info(f"Baseline run {index + 1}: {figures[-1]}")
        combined = baselines.combine(figures)
        unstable = performance.unstable_runs(figures, combined)
        if unstable:
            raise Failure(f"The {runs} baseline runs of '{profile}' disagree beyond the tolerances, so no "
                          "baseline was saved: " + "; ".join(unstable))
        self.ctx.metrics.save_baseline(profile, combined)
        self._summary_file().add("baselines", profile, {"runs": figures, "baseline": combined})
        BuiltIn().set_suite_metadata(f"Baseline {profile}", f"p50 {combined.get('p50_ms')} / p99 "
                                     f"{combined.get('p99_ms')} ms over {runs} runs", top=True)
        return combined

    @keyword
    def profile_should_match_baseline(self, result: dict, confirm: int = 1) -> list:
        """The seed's procedure 2: compares a profile result with the saved baseline of the same
        profile (from ``${BASELINE_REFERENCE_DIR}``, else this run's ``${BASELINE_DIR}``): p50 within
        10 %, p99 within 20 %, memory within 5 %, errors below 0.1 %; fails naming each figure that moved.

        A move must repeat to count: when figures moved, the profile runs again (after the target is
        idle, at most ``confirm`` times, 0..3) and the keyword fails only if every run moved.  A move
        that one fresh run does not repeat was a stall of a shared machine, not a regression of the
        stack (a short profile's p99 is its slowest few requests); the log and the summary keep it.

        Example:
        | ${now}= | Run Load Profile | baseline |
        | Profile Should Match Baseline | ${now} |
        """
        if not 0 <= int(confirm) <= 3:
            raise Failure(f"confirm={confirm}: use 0..3 (the fresh runs that must repeat a move).")
        reference = self._var("BASELINE_REFERENCE_DIR", "") or None
        moves: list[str] = []
        for attempt in range(int(confirm) + 1):
            if attempt:
                logger.info(f"Run {attempt} of '{result['profile']}' moved; run {attempt + 1} confirms or clears it.")
                self.wait_until_target_is_idle(
                    "rag_api", timeout=timedelta(seconds=timestr_to_secs(self._var("PROFILE_COOLDOWN", "10s"))))
                result = self.run_load_profile(result["profile"], duration=f"{result['duration_s']:g}s", record=False)
            figures = baselines.figures_from_load(
                {"latency_ms": result["latency_ms"], "error_rate": result["error_rate"],
                 "throughput": result["throughput"]}, result["memory_mb"])
            try:
                rows = self.ctx.metrics.figures_should_match_baseline(result["profile"], figures,
                                                                      reference_dir=reference)
            except Failure as failure:
                moves.append(str(failure))
                self._summary_file().add("comparisons", result["profile"], {"figures": figures, "moved": moves})
                continue
            self._summary_file().add("comparisons", result["profile"],
                                     {"figures": figures, "rows": rows, "moved_before": moves})
            if moves:
                logger.warn(f"'{result['profile']}' moved in {len(moves)} run(s) and not in the next: "
                            f"not a regression. The move: {moves[0]}")
            BuiltIn().set_suite_metadata(f"Compared {result['profile']}", "within tolerances of "
                                         + (reference or "this run's baseline")
                                         + (f" (after {len(moves)} unrepeated move)" if moves else ""), top=True)
            return rows
        BuiltIn().set_suite_metadata(f"Compared {result['profile']}", f"*MOVED* in {len(moves)} runs: {moves[-1]}",
                                     top=True)
        raise Failure(moves[-1] if len(moves) == 1 else f"{moves[-1]} (moved in all {len(moves)} runs; the first: "
                      f"{moves[0].split(': ', 1)[-1]})")

    @keyword
    def find_the_capacity_knee(self) -> dict:
        """The seed's procedure 3: from the normal rate, raises the query rate by ``${CAPACITY}[step]``
        every ``${CAPACITY}[step_duration]`` until errors exceed 1 %, p99 exceeds 1000 ms or the machine's
        memory exceeds 95 %; returns the knee and the last good rate (also in the summary).

        Example:
        | ${capacity}= | Find The Capacity Knee |
        """
        cap = self._var("CAPACITY", {}) or {}
        normal = self._profile("normal")
        capacity = self.ctx.load.find_capacity(
            self._query_url(), start=f"{normal['rate']:g}/s", step=cap.get("step", "10%"),
            step_duration=timedelta(seconds=float(cap.get("step_duration_s", 300))),
            max_rate=cap.get("max_rate", "2000/s"), p99_ms=float(cap.get("p99_ms", 1000)),
            max_error_rate=float(cap.get("max_error_rate", 0.01)), method="POST",
            max_steps=targetconfig.CAPACITY_MAX_STEPS,
            json=self._query_body("capacity"), max_memory_percent=float(cap.get("max_memory_percent", 95)))
        self._summary_file().add("capacity", None, capacity)
        good = f"{capacity['last_good_rate']}/s" if capacity["last_good_rate"] is not None else "none"
        knee = (f"knee {capacity['knee_rate']}/s" if capacity["knee_rate"] is not None
                else "no knee up to the search's highest rate")
        BuiltIn().set_suite_metadata("Capacity", f"last good {good}, {knee}: {capacity['reason']}", top=True)
        return capacity

    @keyword
    def capacity_should_be_at_least(self, capacity: dict, profile: str = "peak") -> None:
        """Fails unless the last good rate of the capacity search reaches ``profile``'s rate (the
        stack must carry its expected maximum).

        Example:
        | Capacity Should Be At Least | ${capacity} | peak |
        """
        need = self._profile(profile)["rate"]
        good = capacity["last_good_rate"]
        if good is None or good < need:
            raise Failure(f"Capacity {good}/s is below the {profile} profile's {need:g}/s: {capacity['reason']}.")
        logger.info(f"Capacity {good}/s >= {profile} {need:g}/s")
