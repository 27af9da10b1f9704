"""The fault proxy: its API and each toxic, over real loopback sockets."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from aiohttp import web

from testbed.faultproxy import ApiError, FaultProxyServer, Toxic


async def _echo_server():
    async def handle(reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class Rig:
    """An echo upstream, a fault proxy in front of it, and the proxy's HTTP API."""

    async def __aenter__(self):
        self.upstream, up_port = await _echo_server()
        self.faults = FaultProxyServer()
        self.runner = web.AppRunner(self.faults.app())
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.api = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        self.http = aiohttp.ClientSession()
        resp = await self.http.post(f"{self.api}/proxies",
                                    json={"name": "echo", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{up_port}"})
        assert resp.status == 201
        self.port = int((await resp.json())["listen"].rsplit(":", 1)[1])
        return self

    async def __aexit__(self, *exc):
        for proxy in self.faults.proxies.values():
            await proxy.stop()
        await self.http.close()
        await self.runner.cleanup()
        self.upstream.close()

    async def toxic(self, **data):
        resp = await self.http.post(f"{self.api}/proxies/echo/toxics", json=data)
        return resp.status, await resp.json()

    async def round_trip(self, payload: bytes = b"ping", timeout: float = 5.0) -> tuple[bytes, float]:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(payload)
            await writer.drain()
            got = b""
            while len(got) < len(payload):
                chunk = await asyncio.wait_for(reader.read(65536), timeout)
                if not chunk:
                    break
                got += chunk
            return got, time.perf_counter() - started
        finally:
            writer.close()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 30))


def test_clean_proxy_passes_bytes_through():
    async def scenario():
        async with Rig() as rig:
            got, _ = await rig.round_trip(b"hello")
            assert got == b"hello"

    run(scenario())


def test_latency_delays_each_direction():
    async def scenario():
        async with Rig() as rig:
            status, _ = await rig.toxic(type="latency", attributes={"latency": 150})
            assert status == 200
            got, elapsed = await rig.round_trip()
            assert got == b"ping"
            assert 0.14 <= elapsed < 0.5

    run(scenario())


def test_removing_a_toxic_restores_speed():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(name="slow", type="latency", attributes={"latency": 300})
            resp = await rig.http.delete(f"{rig.api}/proxies/echo/toxics/slow")
            assert resp.status == 204
            _, elapsed = await rig.round_trip()
            assert elapsed < 0.1

    run(scenario())


def test_bandwidth_limits_throughput():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="bandwidth", attributes={"rate": 100})  # 100 KB/s
            got, elapsed = await rig.round_trip(b"x" * 50 * 1024)
            assert len(got) == 50 * 1024
            assert elapsed >= 0.4  # 50 KB at 100 KB/s

    run(scenario())


def test_timeout_zero_blackholes_until_removed():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(name="hole", type="timeout", stream="upstream", attributes={"timeout": 0})
            with pytest.raises(asyncio.TimeoutError):
                await rig.round_trip(timeout=0.3)
            await rig.http.delete(f"{rig.api}/proxies/echo/toxics/hole")
            got, _ = await rig.round_trip()
            assert got == b"ping"

    run(scenario())


def test_timeout_closes_the_connection_after_the_delay():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="timeout", attributes={"timeout": 200})
            started = time.perf_counter()
            got, _ = await rig.round_trip(timeout=3)
            assert got == b""
            assert 0.15 <= time.perf_counter() - started < 2

    run(scenario())


def test_reset_peer_resets_the_connection():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="reset_peer", attributes={"timeout": 50})
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
            with pytest.raises(ConnectionResetError):
                for _ in range(50):
                    writer.write(b"x")
                    await writer.drain()
                    if not await asyncio.wait_for(reader.read(10), 2):
                        break
                    await asyncio.sleep(0.02)
            writer.close()

    run(scenario())


def test_limit_data_cuts_the_response_mid_way():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="limit_data", attributes={"bytes": 100})
            got, _ = await rig.round_trip(b"y" * 1000)
            assert got == b"y" * 100

    run(scenario())


def test_slicer_delivers_all_bytes_in_pieces():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="slicer", attributes={"average_size": 10, "size_variation": 3, "delay": 1000})
            got, elapsed = await rig.round_trip(b"z" * 200)
            assert got == b"z" * 200
            assert elapsed >= 0.01

    run(scenario())


def test_slow_close_delays_the_close():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="slow_close", attributes={"delay": 300})
            await rig.toxic(type="limit_data", attributes={"bytes": 4})
            started = time.perf_counter()
            await rig.round_trip(b"ping!")
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
            writer.write(b"pingpong")
            await writer.drain()
            assert await reader.read(100) == b"ping"
            assert await asyncio.wait_for(reader.read(100), 3) == b""
            assert time.perf_counter() - started >= 0.3
            writer.close()

    run(scenario())


def test_http_status_answers_the_next_n_requests():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="http_status", attributes={"status": 503, "count": 2})
            statuses = []
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
                writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                await writer.drain()
                line = await asyncio.wait_for(reader.readline(), 3)
                statuses.append(line.split()[1] if line.startswith(b"HTTP/") else b"echo")
                writer.close()
            assert statuses == [b"503", b"503", b"echo"]

    run(scenario())


def test_first_byte_delay_delays_only_the_first_response_bytes():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="first_byte_delay", attributes={"delay": 200})
            _, elapsed = await rig.round_trip()
            assert elapsed >= 0.19

    run(scenario())


def test_toxicity_zero_never_applies():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="latency", toxicity=0.0, attributes={"latency": 500})
            _, elapsed = await rig.round_trip()
            assert elapsed < 0.2

    run(scenario())


def test_disabling_a_proxy_refuses_connections_and_reset_restores():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="latency", attributes={"latency": 100})
            resp = await rig.http.post(f"{rig.api}/proxies/echo", json={"enabled": False})
            assert (await resp.json())["enabled"] is False
            with pytest.raises(ConnectionRefusedError):
                await rig.round_trip()
            assert (await rig.http.post(f"{rig.api}/reset")).status == 204
            listing = await (await rig.http.get(f"{rig.api}/proxies")).json()
            assert listing["echo"]["enabled"] is True
            assert listing["echo"]["toxics"] == []
            got, _ = await rig.round_trip()
            assert got == b"ping"

    run(scenario())


def test_api_refuses_bad_toxics_with_a_clear_error():
    async def scenario():
        async with Rig() as rig:
            status, body = await rig.toxic(type="latency", attributes={"latency": -5})
            assert status == 400 and "non-negative" in body["error"]
            status, body = await rig.toxic(type="earthquake")
            assert status == 400 and "unknown toxic type" in body["error"]
            status, body = await rig.toxic(type="latency", stream="sideways")
            assert status == 400
            await rig.toxic(name="once", type="latency")
            status, body = await rig.toxic(name="once", type="latency")
            assert status == 409
            resp = await rig.http.get(f"{rig.api}/proxies/nope")
            assert resp.status == 404

    run(scenario())


def test_non_loopback_upstream_is_refused():
    async def scenario():
        server = FaultProxyServer()
        with pytest.raises(ApiError, match="not loopback"):
            await server.create({"name": "x", "listen": "127.0.0.1:0", "upstream": "192.0.2.1:80"})

    run(scenario())


def test_toxic_defaults_follow_toxiproxy():
    toxic = Toxic.from_json({"type": "latency"})
    assert toxic.name == "latency_downstream"
    assert toxic.stream == "downstream"
    assert toxic.toxicity == 1.0
    assert toxic.attributes == {"latency": 0, "jitter": 0}


def test_latency_does_not_add_up_over_chunks_of_one_response():
    async def scenario():
        async with Rig() as rig:
            await rig.toxic(type="latency", attributes={"latency": 200})
            reader, writer = await asyncio.open_connection("127.0.0.1", rig.port)
            started = time.perf_counter()
            for _ in range(3):  # three chunks sent back to back
                writer.write(b"abc")
                await writer.drain()
                await asyncio.sleep(0.005)
            got = b""
            while len(got) < 9:
                got += await asyncio.wait_for(reader.read(100), 3)
            elapsed = time.perf_counter() - started
            writer.close()
            assert got == b"abc" * 3
            assert elapsed < 0.6, f"three chunks took {elapsed:.2f} s: latencies added up"

    run(scenario())


def test_latency_applies_once_to_a_response_written_in_two_pieces():
    """An HTTP server writes headers and body separately: the response is late by one latency, not two."""

    async def scenario():
        async def two_piece(reader, writer):
            await reader.read(100)
            writer.write(b"HEAD")
            await writer.drain()
            await asyncio.sleep(0.01)
            writer.write(b"BODY")
            await writer.drain()
            writer.close()

        upstream = await asyncio.start_server(two_piece, "127.0.0.1", 0)
        server = FaultProxyServer()
        proxy = await server.create({"name": "p", "listen": "127.0.0.1:0",
                                     "upstream": f"127.0.0.1:{upstream.sockets[0].getsockname()[1]}"})
        proxy.toxics["lat"] = Toxic.from_json({"type": "latency", "attributes": {"latency": 200}})
        port = int(proxy.listen.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.perf_counter()
        writer.write(b"GET")
        await writer.drain()
        got = b""
        while len(got) < 8:
            chunk = await asyncio.wait_for(reader.read(100), 3)
            if not chunk:
                break
            got += chunk
        elapsed = time.perf_counter() - started
        writer.close()
        await proxy.stop()
        upstream.close()
        assert got == b"HEADBODY"
        assert 0.19 <= elapsed < 0.35, f"{elapsed:.3f} s"

    run(scenario())
