"""The load engine against a real local aiohttp server: schedule, correction, self-check."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from aiohttp import web
from xnai_qa import load

from ..conftest import free_port


class StallableServer:
    """A real HTTP server on loopback whose handler can stall for a while."""

    def __init__(self):
        self.port = free_port()
        self.stall_until = 0.0
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.ready = threading.Event()
        self.bodies: list = []

    async def handle(self, _request):
        wait = self.stall_until - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        return web.Response(text="ok")

    async def fail(self, _request):
        return web.Response(status=503)

    async def echo(self, request):
        self.bodies.append(await request.json())
        await asyncio.sleep(0.2)  # long enough for a burst to overlap
        return web.Response(text="ok")

    def _run(self):
        asyncio.set_event_loop(self.loop)
        app = web.Application()
        app.router.add_get("/", self.handle)
        app.router.add_get("/fail", self.fail)
        app.router.add_post("/echo", self.echo)
        runner = web.AppRunner(app, access_log=None)
        self.loop.run_until_complete(runner.setup())
        self.loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def _run_open(url, rate, seconds, **kw):
    stages = [load.Stage(rate, seconds)]
    spec = load.RequestSpec(url)
    return load.execute(lambda: load.run_open(spec, stages, **kw), model="open", stages=stages, name="t")


def test_open_model_keeps_its_rate():
    with StallableServer() as server:
        result = _run_open(f"http://127.0.0.1:{server.port}/", 200, 2)
    assert result["sent"] == 400
    assert result["ok"] == 400
    assert result["valid"], result["invalid_reason"]
    assert abs(result["achieved_rate"] - 200) / 200 < 0.01


def test_stall_shows_in_corrected_latency():
    with StallableServer() as server:
        server.stall_until = time.monotonic() + 0.6
        result = _run_open(f"http://127.0.0.1:{server.port}/", 100, 2)
    assert result["latency_ms"]["p99"] >= 400, result["latency_ms"]
    assert result["latency_ms"]["max"] >= 500


def test_closed_loop_hides_the_same_stall():
    with StallableServer() as server:
        server.stall_until = time.monotonic() + 0.6
        stages = [load.Stage(2, 2)]
        spec = load.RequestSpec(f"http://127.0.0.1:{server.port}/")
        result = load.execute(lambda: load.run_closed(spec, 2, 2), model="closed", stages=stages, name="c")
    assert result["latency_ms"]["p99"] < 50, "only two requests of thousands waited out the stall"


def test_errors_are_counted_by_status_and_exception():
    port = free_port()  # nothing listens here
    result = _run_open(f"http://127.0.0.1:{port}/", 20, 0.5)
    assert result["ok"] == 0
    assert result["error_rate"] == 1.0
    assert "ConnectionRefusedError" in result["errors"]
    with StallableServer() as server:
        failing = _run_open(f"http://127.0.0.1:{server.port}/fail", 20, 0.5)
    assert failing["errors"] == {"status 503": 10}


def test_in_flight_cap_drops_and_invalidates():
    with StallableServer() as server:
        server.stall_until = time.monotonic() + 2
        result = _run_open(f"http://127.0.0.1:{server.port}/", 200, 0.5, max_in_flight=10)
    assert result["dropped"] == 90
    assert not result["valid"]
    assert "dropped at the in-flight cap" in result["invalid_reason"]


def test_a_users_cap_counts_unserved_demand_as_errors_of_a_valid_run():
    """A profile's users are part of the workload: when all of them wait, the target is too slow."""
    with StallableServer() as server:
        server.stall_until = time.monotonic() + 2
        result = _run_open(f"http://127.0.0.1:{server.port}/", 200, 0.5, max_in_flight=10, users=True)
    assert result["unserved"] == 90 and result["dropped"] == 0
    assert result["valid"], result["invalid_reason"]
    assert result["errors"] == {"unserved (all 10 users waiting)": 90}
    assert result["error_rate"] == 0.9 and result["completed"] == 10


def test_summary_flags_a_lagging_schedule():
    rec = load.Recorder()
    for _ in range(100):
        rec.record_send(0.05)  # every send left 50 ms late
        rec.record_result(0, 0.06, 0.01, None)
    result = load.summarize(rec, model="open", stages=[load.Stage(100, 1)], wall_s=1.0, cpu_s=0.2)
    assert not result["valid"]
    assert "schedule lag" in result["invalid_reason"]
    assert result["late_sends"] == 100


def test_summary_flags_a_busy_generator():
    rec = load.Recorder()
    rec.record_send(0.0)
    rec.record_result(0, 0.001, 0.001, None)
    result = load.summarize(rec, model="closed", stages=[load.Stage(1, 1)], wall_s=1.0, cpu_s=0.95)
    assert "generator CPU" in result["invalid_reason"]


def test_latencies_past_the_histogram_are_clamped_and_counted():
    rec = load.Recorder()
    rec.record_result(0, 500.0, 500.0, None)
    assert rec.clamped == 2


@pytest.mark.parametrize("text, rate", [(50, 50.0), ("50/s", 50.0), ("50 / s", 50.0), ("3000/min", 50.0),
                                        ("2.5", 2.5)])
def test_rates_parse(text, rate):
    assert load.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-5/s", "0", "10/hour"])
def test_bad_rates_are_refused(text):
    with pytest.raises(ValueError, match="rate="):
        load.parse_rate(text)


def test_the_aiohttp_engine_gives_the_same_answers():
    with StallableServer() as server:
        stages = [load.Stage(100, 1)]
        spec = load.RequestSpec(f"http://127.0.0.1:{server.port}/", engine="aiohttp")
        result = load.execute(lambda: load.run_open(spec, stages), model="open", stages=stages, name="a")
    assert result["ok"] == 100 and result["valid"]


@pytest.mark.parametrize("engine", ["raw", "aiohttp"])
def test_seq_makes_every_body_unique(engine):
    with StallableServer() as server:
        stages = [load.Stage(50, 1)]
        spec = load.RequestSpec(f"http://127.0.0.1:{server.port}/echo", "POST", {"query": "q {seq}", "n": 1},
                                engine=engine)
        result = load.execute(lambda: load.run_open(spec, stages), model="open", stages=stages, name="seq")
    queries = [b["query"] for b in server.bodies]
    assert result["ok"] == 50
    assert len(set(queries)) == 50 and all(q.startswith("q ") and "{seq}" not in q for q in queries)


def test_a_burst_is_in_flight_together_and_counted_by_status():
    with StallableServer() as server:
        spec = load.RequestSpec(f"http://127.0.0.1:{server.port}/echo", "POST", {"query": "b {seq}"})
        started = time.monotonic()
        result = load.run_burst(spec, 60)
        elapsed = time.monotonic() - started
    assert result["statuses"] == {"200": 60}
    assert elapsed < 2.0, f"60 requests of 0.2 s took {elapsed:.1f} s: not concurrent"
    assert len({b["query"] for b in server.bodies}) == 60
