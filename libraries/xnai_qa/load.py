"""An honest load generator: open model (constant arrival rate, stages) and closed model, on aiohttp.

Open model: request k is sent at ``t0 + k/rate`` whatever the server does,
and its latency is measured from that *intended* send time, so a stall shows
in the percentiles instead of slowing the generator down (coordinated
omission).  The naive latency (from the actual send) is kept beside it.

The generator checks itself: its schedule lag (how late sends left) and its
own CPU.  When it, not the target, was the bottleneck the result is marked
invalid with the reason.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import psutil
from hdrh.histogram import HdrHistogram

from .rawhttp import SEQ_MARK, IncompleteResponse, RawClient, ResponseError

HIST_MAX_US = 120_000_000  # 120 s; longer latencies are clamped and counted
LATE_THRESHOLD_MS = 10.0  # a send that left this much after its slot is "late"
MAX_LAG_P99_MS = 20.0  # schedule lag p99 above this: the generator could not keep up
MAX_GENERATOR_CPU = 90.0  # percent of one core
MAX_REQUESTS = 2_000_000


@dataclass
class Stage:
    rate: float  # requests per second (open) or users (closed)
    duration_s: float


@dataclass
class RequestSpec:
    url: str
    method: str = "GET"
    json_body: object | None = None
    headers: dict = field(default_factory=dict)
    timeout_s: float = 10.0
    ok_statuses: tuple[int, ...] = (200,)
    engine: str = "raw"  # "raw" (plain http, fastest) or "aiohttp" (any URL)


class Recorder:
    """Latency histograms (corrected and naive), errors, schedule lag, per-second timeline."""

    def __init__(self):
        self.corrected = HdrHistogram(1, HIST_MAX_US, 3)
        self.naive = HdrHistogram(1, HIST_MAX_US, 3)
        self.lag = HdrHistogram(1, HIST_MAX_US, 3)
        self.clamped = 0
        self.ok = 0
        self.errors: Counter = Counter()
        self.late = 0
        self.dropped = 0
        self.unserved = 0
        self.sent = 0
        self.first_send = self.last_send = 0.0
        self.timeline: dict[int, dict] = defaultdict(lambda: {"ok": 0, "errors": 0, "latencies_ms": []})

    def _record(self, hist: HdrHistogram, seconds: float) -> None:
        micros = max(1, int(seconds * 1_000_000))
        if micros > HIST_MAX_US:
            self.clamped += 1
            micros = HIST_MAX_US
        hist.record_value(micros)

    def record_send(self, lag_s: float) -> None:
        now = time.perf_counter()
        if self.sent == 0:
            self.first_send = now
        self.last_send = now
        self.sent += 1
        self._record(self.lag, max(lag_s, 0.0))
        if lag_s * 1000 > LATE_THRESHOLD_MS:
            self.late += 1

    def record_result(self, second: int, corrected_s: float, naive_s: float, error: str | None) -> None:
        bucket = self.timeline[second]
        if error:
            self.errors[error] += 1
            bucket["errors"] += 1
            return
        self.ok += 1
        bucket["ok"] += 1
        bucket["latencies_ms"].append(corrected_s * 1000)
        self._record(self.corrected, corrected_s)
        self._record(self.naive, naive_s)


def _pcts(hist: HdrHistogram) -> dict:
    if hist.get_total_count() == 0:
        return {}
    out = {f"p{p}": hist.get_value_at_percentile(p) / 1000 for p in (50, 95, 99)}
    out["max"] = hist.get_max_value() / 1000
    out["mean"] = hist.get_mean_value() / 1000
    return {k: round(v, 3) for k, v in out.items()}


class _AiohttpSender:
    """Any URL (https too), through aiohttp."""

    def __init__(self, spec: RequestSpec, connections: int):
        self.spec = spec
        self.body = None if spec.json_body is None else json.dumps(spec.json_body)
        self.run_tag = uuid.uuid4().hex[:8]
        self.sequence = 0
        connector = aiohttp.TCPConnector(limit=connections, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(connector=connector,
                                             timeout=aiohttp.ClientTimeout(total=spec.timeout_s))

    async def send(self) -> str | None:
        spec = self.spec
        try:
            data = None
            if self.body is not None:
                self.sequence += 1
                data = self.body.replace(SEQ_MARK, f"{self.run_tag}-{self.sequence}")
            headers = {**spec.headers, **({"Content-Type": "application/json"} if data is not None else {})}
            # A redirect is an answer of its own (counted by its status), never followed: load goes only
            # to the URL that passed the address gate.
            async with self.session.request(spec.method, spec.url, data=data, headers=headers,
                                            allow_redirects=False) as resp:
                await resp.read()
                return None if resp.status in spec.ok_statuses else f"status {resp.status}"
        except TimeoutError:
            return "timeout"
        except (aiohttp.ClientError, OSError) as err:
            return type(err).__name__

    async def aclose(self) -> None:
        await self.session.close()


class _RawSender:
    """Plain http:// through the minimal keep-alive client: several times cheaper per request."""

    def __init__(self, spec: RequestSpec, connections: int):
        self.spec = spec
        self.client = RawClient(spec.url, spec.method, spec.json_body, spec.headers, limit=connections)

    async def send(self) -> str | None:
        try:
            async with asyncio.timeout(self.spec.timeout_s):
                status = await self.client.request()
        except TimeoutError:
            return "timeout"
        except IncompleteResponse:
            return "incomplete response"
        except ResponseError:
            return "bad response"
        except OSError as err:
            return type(err).__name__
        return None if status in self.spec.ok_statuses else f"status {status}"

    async def aclose(self) -> None:
        self.client.close()


def _sender(spec: RequestSpec, connections: int):
    if spec.url.startswith("http://") and spec.engine == "raw":
        return _RawSender(spec, connections)
    return _AiohttpSender(spec, connections)


async def run_open(spec: RequestSpec, stages: list[Stage], max_in_flight: int = 512,
                   connections: int = 256, users: bool = False) -> Recorder:
    """Send at the stages' rates; a send that finds ``max_in_flight`` requests pending is dropped.

    With ``users=True`` the cap is the workload's number of users (a load profile's "50 users"): a send
    that finds every user waiting is demand the target left unserved, an error of the target's, and does
    not make the run invalid.  Otherwise the cap is the generator's own limit and a drop invalidates.
    """
    rec = Recorder()
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task] = set()

    async def one(intended: float, second: int) -> None:
        actual = loop.time()
        error = await sender.send()
        done = loop.time()
        rec.record_result(second, done - intended, done - actual, error)

    sender = _sender(spec, connections)
    try:
        t0 = loop.time() + 0.05
        stage_start = t0
        for stage in stages:
            count = round(stage.rate * stage.duration_s)
            for k in range(count):
                intended = stage_start + k / stage.rate
                delay = intended - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                rec.record_send(loop.time() - intended)
                if len(pending) >= max_in_flight:
                    if users:
                        rec.unserved += 1
                        rec.errors[f"unserved (all {max_in_flight} users waiting)"] += 1
                    else:
                        rec.dropped += 1
                        rec.errors["dropped (in-flight cap)"] += 1
                    continue
                task = loop.create_task(one(intended, int(intended - t0)))
                pending.add(task)
                task.add_done_callback(pending.discard)
            stage_start += count / stage.rate if stage.rate else stage.duration_s
        if pending:
            await asyncio.wait(pending, timeout=spec.timeout_s + 5)
    finally:
        await sender.aclose()
    return rec


async def run_closed(spec: RequestSpec, users: int, duration_s: float, max_requests: int = MAX_REQUESTS) -> Recorder:
    """``users`` workers, each sending its next request when the previous one is answered."""
    rec = Recorder()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    end = t0 + duration_s

    async def worker():
        while loop.time() < end and rec.sent < max_requests:
            start = loop.time()
            rec.record_send(0.0)
            error = await sender.send()
            done = loop.time()
            rec.record_result(int(start - t0), done - start, done - start, error)

    sender = _sender(spec, users)
    try:
        await asyncio.gather(*(worker() for _ in range(users)))
    finally:
        await sender.aclose()
    return rec


def run_burst(spec: RequestSpec, count: int) -> dict:
    """``count`` requests released together, one connection each; statuses, peak concurrency, latency."""

    async def burst():
        client = RawClient(spec.url, spec.method, spec.json_body, spec.headers, limit=count)
        gate = asyncio.Event()
        in_flight = {"now": 0, "max": 0}
        statuses: Counter = Counter()
        latencies: list[float] = []

        async def one():
            await gate.wait()
            start = time.perf_counter()
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
            try:
                async with asyncio.timeout(spec.timeout_s):
                    status = await client.request()
                statuses[status] += 1
                latencies.append((time.perf_counter() - start) * 1000)
            except TimeoutError:
                statuses["timeout"] += 1
            except (OSError, ResponseError) as err:
                statuses[type(err).__name__] += 1
            finally:
                in_flight["now"] -= 1

        tasks = [asyncio.ensure_future(one()) for _ in range(count)]
        await asyncio.sleep(0)  # every task is now waiting at the gate
        gate.set()
        try:
            await asyncio.gather(*tasks)
        finally:
            client.close()
        latencies.sort()
        pcts = {}
        if latencies:
            pcts = {f"p{p}": round(latencies[min(len(latencies) - 1, math.ceil(p / 100 * len(latencies)) - 1)], 3)
                    for p in (50, 95, 99)}
            pcts["max"] = round(latencies[-1], 3)
        return {
            "count": count,
            "statuses": {str(k): v for k, v in statuses.items()},
            "max_in_flight": in_flight["max"],
            "latency_ms": pcts,
        }

    if spec.url.startswith("http://"):
        return run_loop(burst())
    raise ValueError("Send Concurrent Requests speaks plain http:// only")


def summarize(rec: Recorder, *, model: str, stages: list[Stage], wall_s: float, cpu_s: float,
              name: str = "load") -> dict:
    completed = rec.ok + sum(v for k, v in rec.errors.items() if not k.startswith(("dropped", "unserved")))
    total = rec.ok + sum(rec.errors.values())
    target_rate = (sum(s.rate * s.duration_s for s in stages) / max(sum(s.duration_s for s in stages), 1e-9)
                   if model == "open" else None)
    lag = _pcts(rec.lag)
    cpu_pct = 100.0 * cpu_s / wall_s if wall_s > 0 else 0.0
    reasons = []
    if model == "open" and lag and lag["p99"] > MAX_LAG_P99_MS:
        reasons.append(f"schedule lag p99 {lag['p99']:.1f} ms > {MAX_LAG_P99_MS:g} ms: sends left late")
    if rec.dropped:
        reasons.append(f"{rec.dropped} sends dropped at the in-flight cap")
    if cpu_pct > MAX_GENERATOR_CPU:
        reasons.append(f"generator CPU {cpu_pct:.0f} % of a core > {MAX_GENERATOR_CPU:g} %")
    timeline = []
    for second in sorted(rec.timeline):
        bucket = rec.timeline[second]
        lats = sorted(bucket["latencies_ms"])
        timeline.append({
            "second": second, "ok": bucket["ok"], "errors": bucket["errors"],
            "p50_ms": round(lats[len(lats) // 2], 3) if lats else None,
            "p99_ms": round(lats[min(len(lats) - 1, math.ceil(0.99 * len(lats)) - 1)], 3) if lats else None,
        })
    return {
        "name": name,
        "model": model,
        "stages": [{"rate": s.rate, "duration_s": s.duration_s} for s in stages],
        "target_rate": round(target_rate, 3) if target_rate is not None else None,
        "sent": rec.sent,
        "completed": completed,
        "ok": rec.ok,
        "errors": dict(rec.errors),
        "error_rate": round(sum(rec.errors.values()) / total, 6) if total else 0.0,
        "throughput": round(rec.ok / wall_s, 3) if wall_s > 0 else 0.0,
        # sends per second over the sending phase (first to last send): what the schedule really offered
        "achieved_rate": round((rec.sent - 1) / (rec.last_send - rec.first_send), 3)
        if rec.sent > 1 and rec.last_send > rec.first_send else 0.0,
        "latency_ms": _pcts(rec.corrected),
        "naive_latency_ms": _pcts(rec.naive),
        "schedule_lag_ms": lag,
        "late_sends": rec.late,
        "dropped": rec.dropped,
        "unserved": rec.unserved,
        "clamped": rec.clamped,
        "generator_cpu_percent": round(cpu_pct, 1),
        "wall_s": round(wall_s, 3),
        "valid": not reasons,
        "invalid_reason": "; ".join(reasons),
        "timeline": timeline,
    }


def run_loop(coro):
    """Run ``coro`` in a fresh event loop: uvloop's where installed (several times cheaper per request,
    so the generator keeps its schedule on a busy machine), else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return asyncio.run(coro)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coro)


def machine_busy(before, after) -> dict:
    """The machine's CPU between two ``psutil.cpu_times()`` readings: busy and stolen (by the hypervisor)
    percent of all cores."""
    total = sum(after) - sum(before)
    if total <= 0:
        return {"busy_percent": 0.0, "steal_percent": 0.0}
    idle = (after.idle - before.idle) + (getattr(after, "iowait", 0) - getattr(before, "iowait", 0))
    steal = getattr(after, "steal", 0) - getattr(before, "steal", 0)
    return {"busy_percent": round(100.0 * (total - idle) / total, 1), "steal_percent": round(100.0 * steal / total, 1)}


def wait_for_quiet_machine(busy_below: float = 60.0, bound_s: float = 15.0, window_s: float = 0.5) -> dict:
    """Polls the machine's CPU in ``window_s`` windows until it is below ``busy_below`` % busy, at most
    ``bound_s``; returns the last reading with ``waited_s`` and ``quiet`` (False when the bound passed)."""
    started = time.monotonic()
    reading = {"busy_percent": 100.0, "steal_percent": 0.0}
    while True:
        before = psutil.cpu_times()
        time.sleep(window_s)  # the measuring window of one reading (bounded by bound_s)
        reading = machine_busy(before, psutil.cpu_times())
        waited = time.monotonic() - started
        if reading["busy_percent"] < busy_below or waited >= bound_s:
            return {**reading, "waited_s": round(waited, 2), "quiet": reading["busy_percent"] < busy_below}


def execute(coro_factory, *, model: str, stages: list[Stage], name: str) -> dict:
    """Run a load coroutine in a fresh event loop, measuring wall time, this process's CPU and the machine's."""
    proc = psutil.Process()
    cpu0 = sum(proc.cpu_times()[:2])
    machine0 = psutil.cpu_times()
    wall0 = time.perf_counter()
    rec = run_loop(coro_factory())
    wall = time.perf_counter() - wall0
    cpu = sum(proc.cpu_times()[:2]) - cpu0
    result = summarize(rec, model=model, stages=stages, wall_s=wall, cpu_s=cpu, name=name)
    result["machine"] = {"cores": psutil.cpu_count() or 1, **machine_busy(machine0, psutil.cpu_times())}
    return result


def save(result: dict, folder: str | Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{result['name']}-{time.strftime('%Y%m%dT%H%M%S')}-{int(time.time() * 1000) % 1000:03d}.json"
    path.write_text(json.dumps(result, indent=2))
    return path


def parse_rate(value) -> float:
    """``50``, ``50/s``, ``"50 / s"``, ``3000/min`` -> requests per second."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        rate = float(value)
    else:
        text = str(value).replace(" ", "").lower()
        per = 1.0
        for suffix, factor in (("/s", 1.0), ("/sec", 1.0), ("/min", 60.0), ("/m", 60.0)):
            if text.endswith(suffix):
                text, per = text[: -len(suffix)], factor
                break
        try:
            rate = float(text) / per
        except ValueError:
            raise ValueError(f"rate={value!r}: write a number of requests per second such as 50 or 50/s") from None
    if rate <= 0 or math.isnan(rate):
        raise ValueError(f"rate={value!r}: use a positive rate")
    return rate
