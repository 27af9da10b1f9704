"""A TCP fault proxy with a Toxiproxy-compatible HTTP API, in asyncio.

Toxiproxy itself cannot be installed here, so the project carries this one.
The API follows Toxiproxy's (``/proxies``, ``/proxies/{name}/toxics``,
``/reset``, ``/version``), so the suite's keywords drive a real Toxiproxy the
same way.  Toxics: ``latency`` (latency, jitter ms), ``bandwidth`` (rate
KB/s), ``slow_close`` (delay ms), ``timeout`` (timeout ms; 0 = hold forever),
``reset_peer`` (timeout ms), ``slicer`` (average_size, size_variation bytes,
delay us), ``limit_data`` (bytes); and two HTTP extensions: ``http_status``
(status, count: answer new connections' requests with ``status``; ``count`` > 0
limits it to the next N) and ``first_byte_delay`` (delay ms before the first
byte of the response).  ``toxicity`` is the probability that a toxic applies
to a connection, rolled once per connection and toxic.

Run: ``python -m testbed.faultproxy --api 127.0.0.1:8474 [--config proxies.json]``.
Listen and upstream addresses must be loopback unless given with ``--allow-host``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import random
import socket
import struct
import sys
from dataclasses import dataclass, field
from typing import cast

from aiohttp import web

VERSION = "2.9.0-xnai"

# type -> default attributes; every attribute is a non-negative number
TOXIC_TYPES: dict[str, dict[str, float]] = {
    "latency": {"latency": 0, "jitter": 0},
    "bandwidth": {"rate": 0},
    "slow_close": {"delay": 0},
    "timeout": {"timeout": 0},
    "reset_peer": {"timeout": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
    "limit_data": {"bytes": 0},
    "http_status": {"status": 503, "count": 0},
    "first_byte_delay": {"delay": 0},
}
STREAMS = ("upstream", "downstream")


class ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def _check_host(host: str, allowed: set[str]) -> None:
    if host in allowed or host == "localhost":
        return
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return
    except ValueError:
        pass
    raise ApiError(400, f"host '{host}' is not loopback; start the proxy with --allow-host {host} to allow it")


def split_addr(addr: str, allow_zero: bool = False) -> tuple[str, int]:
    """``host:port`` -> (host, port); port 0 (any free port) only where ``allow_zero``."""
    host, sep, port = str(addr).rpartition(":")
    if not sep or not port.isdigit() or not (0 if allow_zero else 1) <= int(port) < 65536:
        raise ApiError(400, f"address '{addr}' must be host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


@dataclass
class Toxic:
    name: str
    type: str
    stream: str = "downstream"
    toxicity: float = 1.0
    attributes: dict = field(default_factory=dict)
    used: int = 0  # http_status: how many connections it answered

    @classmethod
    def from_json(cls, data: dict, name: str | None = None) -> Toxic:
        if not isinstance(data, dict):
            raise ApiError(400, "toxic must be a JSON object")
        ttype = data.get("type")
        if ttype not in TOXIC_TYPES:
            raise ApiError(400, f"unknown toxic type {ttype!r}; known: {', '.join(TOXIC_TYPES)}")
        stream = data.get("stream", "downstream")
        if stream not in STREAMS:
            raise ApiError(400, f"stream must be upstream or downstream, got {stream!r}")
        toxicity = data.get("toxicity", 1.0)
        if isinstance(toxicity, bool) or not isinstance(toxicity, (int, float)) or not 0 <= toxicity <= 1:
            raise ApiError(400, f"toxicity must be a number in 0..1, got {toxicity!r}")
        attrs = dict(TOXIC_TYPES[ttype])
        given = data.get("attributes") or {}
        if not isinstance(given, dict):
            raise ApiError(400, "attributes must be a JSON object")
        for key, value in given.items():
            if key not in attrs:
                raise ApiError(400, f"toxic {ttype} has no attribute {key!r}; known: {', '.join(attrs)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ApiError(400, f"attribute {key} must be a non-negative number, got {value!r}")
            attrs[key] = value
        tname = name or data.get("name") or f"{ttype}_{stream}"
        return cls(str(tname), ttype, stream, float(toxicity), attrs)

    def to_json(self) -> dict:
        return {"name": self.name, "type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                "attributes": self.attributes}


class Connection:
    """One client connection through a proxy, with its toxicity rolls."""

    def __init__(self, proxy: Proxy, client_writer: asyncio.StreamWriter):
        self.proxy = proxy
        self.client_writer = client_writer
        self.upstream_writer: asyncio.StreamWriter | None = None
        self.rolls: dict[str, bool] = {}
        self.sent = {"upstream": 0, "downstream": 0}
        self.closed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []
        self.timers: set[str] = set()

    def active(self, stream: str | None = None) -> list[Toxic]:
        out = []
        for toxic in list(self.proxy.toxics.values()):
            if stream and toxic.stream != stream:
                continue
            if toxic.name not in self.rolls:
                self.rolls[toxic.name] = random.random() < toxic.toxicity  # noqa: S311 - not crypto
            if self.rolls[toxic.name]:
                out.append(toxic)
        return out

    def first(self, ttype: str, stream: str | None = None) -> Toxic | None:
        return next((t for t in self.active(stream) if t.type == ttype), None)

    async def close(self, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        slow = self.first("slow_close")
        if slow and not reset:
            await asyncio.sleep(slow.attributes["delay"] / 1000)
        self.closed.set()
        for writer in (self.client_writer, self.upstream_writer):
            if writer is None:
                continue
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            with contextlib.suppress(Exception):
                writer.close()
        current = asyncio.current_task()
        for task in self.tasks:
            if task is not current:
                task.cancel()

    def schedule(self, key: str, delay_ms: float, reset: bool) -> None:
        if key in self.timers:
            return
        self.timers.add(key)

        async def later():
            await asyncio.sleep(delay_ms / 1000)
            await self.close(reset=reset)

        self.tasks.append(asyncio.get_running_loop().create_task(later()))

    def arm_timers(self) -> None:
        for toxic in self.active():
            if toxic.type == "reset_peer":
                self.schedule(f"reset:{toxic.name}", toxic.attributes["timeout"], reset=True)
            elif toxic.type == "timeout" and toxic.attributes["timeout"] > 0:
                self.schedule(f"timeout:{toxic.name}", toxic.attributes["timeout"], reset=False)


class _Side(asyncio.StreamReaderProtocol):
    """One socket of a proxied connection.  While nothing can change what passes (no toxic on the
    proxy, nothing queued or in hand in the pipe of this direction, the peer not backed up), a chunk is
    written to the peer straight from the socket's callback: no stream, no task hand-over, which keeps
    a hop through the proxy cheap (measured here: a Redis round trip 0.5 ms through the stream path,
    0.34 ms relayed, 0.24 ms direct).  Otherwise it goes into the stream reader, to the pipe task and
    its toxics."""

    HIGH_WATER = 64 * 1024

    def __init__(self, proxy: Proxy, client_connected_cb=None):
        self.reader = asyncio.StreamReader(limit=2**20)  # held here: the base class keeps only a weak reference
        super().__init__(self.reader, client_connected_cb)
        self.proxy = proxy
        self.peer: asyncio.Transport | None = None  # where this socket's data goes
        self.pipe: dict | None = None  # the pipe task's state for this direction, once it runs
        self.conn: Connection | None = None
        self.stream = ""

    def data_received(self, data: bytes) -> None:
        pipe, peer, conn = self.pipe, self.peer, self.conn
        reader = self.reader
        if (pipe is not None and peer is not None and conn is not None and not self.proxy.toxics
                and pipe["queue"].empty() and not pipe["busy"] and not conn.closed.is_set()
                and reader is not None and not reader._buffer  # type: ignore[attr-defined]  # noqa: SLF001
                and not peer.is_closing()
                and peer.get_write_buffer_size() < self.HIGH_WATER):
            pipe["first"] = False
            conn.sent[self.stream] += len(data)
            peer.write(data)
            return
        super().data_received(data)


class Proxy:
    def __init__(self, name: str, listen: str, upstream: str, enabled: bool, allowed: set[str]):
        self.name = name
        self.allowed = allowed
        self.listen = listen
        self.upstream = upstream
        self.enabled = enabled
        self.toxics: dict[str, Toxic] = {}
        self.server: asyncio.AbstractServer | None = None
        self.connections: set[Connection] = set()
        self._validate()

    def _validate(self) -> None:
        lhost, _ = split_addr(self.listen, allow_zero=True)
        uhost, _ = split_addr(self.upstream)
        _check_host(lhost, self.allowed)
        _check_host(uhost, self.allowed)

    def to_json(self) -> dict:
        return {"name": self.name, "listen": self.listen, "upstream": self.upstream, "enabled": self.enabled,
                "toxics": [t.to_json() for t in self.toxics.values()]}

    async def start(self) -> None:
        if self.server is not None:
            return
        host, port = split_addr(self.listen, allow_zero=True)
        try:
            loop = asyncio.get_running_loop()
            self.server = await loop.create_server(lambda: _Side(self, self._handle), host, port, reuse_address=True)
        except OSError as err:
            raise ApiError(409, f"proxy {self.name}: cannot listen on {self.listen}: {err}") from None
        if port == 0:
            self.listen = f"{host}:{self.server.sockets[0].getsockname()[1]}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for conn in list(self.connections):
            await conn.close()

    async def set_enabled(self, enabled: bool) -> None:
        self.enabled = enabled
        await (self.start() if enabled else self.stop())

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(self, writer)
        self.connections.add(conn)
        try:
            status = conn.first("http_status")
            if status and (not status.attributes["count"] or status.used < status.attributes["count"]):
                status.used += 1
                await self._answer_http(reader, writer, int(status.attributes["status"]))
                return
            host, port = split_addr(self.upstream)
            loop = asyncio.get_running_loop()
            try:
                up_transport, up_side = await loop.create_connection(lambda: _Side(self), host, port)
            except OSError:
                await conn.close(reset=True)
                return
            up_reader = up_side.reader
            up_writer = asyncio.StreamWriter(up_transport, up_side, up_reader, loop)
            client_side = cast("_Side", writer.transport.get_protocol())
            for side, peer, stream in (
                (client_side, up_transport, "upstream"),
                (up_side, writer.transport, "downstream"),
            ):
                side.peer, side.conn, side.stream = peer, conn, stream  # type: ignore[assignment]  # a full transport
            conn.upstream_writer = up_writer
            conn.arm_timers()
            conn.tasks += [
                loop.create_task(self._pipe(conn, reader, up_writer, "upstream", client_side)),
                loop.create_task(self._pipe(conn, up_reader, writer, "downstream", up_side)),
            ]
            await conn.closed.wait()
        finally:
            await conn.close()
            self.connections.discard(conn)

    @staticmethod
    async def _answer_http(reader, writer, status: int) -> None:
        with contextlib.suppress(asyncio.TimeoutError, OSError, asyncio.IncompleteReadError):
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        body = json.dumps({"error": f"injected HTTP {status} (fault proxy)"}).encode()
        head = (f"HTTP/1.1 {status} Injected\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        with contextlib.suppress(OSError):
            writer.write(head + body)
            await writer.drain()
            writer.close()

    async def _pipe(self, conn: Connection, reader, writer, stream: str, side: _Side | None = None) -> None:
        half_closed = False
        # Chunks are stamped when they arrive, by a reader task of their own, so a delay applied
        # to one chunk does not also delay the chunks that arrived meanwhile (as in Toxiproxy).
        chunks: asyncio.Queue = asyncio.Queue(maxsize=64)
        # "busy": the pipe holds a chunk it has not written yet; "first": no byte has gone this way yet.
        # The socket's protocol (``_Side``) relays straight to the peer only while the queue is empty and
        # nothing is in hand, so the order of the bytes never changes.
        state = {"queue": chunks, "busy": False, "first": True}
        if side is not None:
            side.pipe = state

        async def read_into_queue():
            try:
                while True:
                    data = await reader.read(65536)
                    await chunks.put((asyncio.get_running_loop().time(), data))
                    if not data:
                        return
            except (OSError, asyncio.IncompleteReadError):
                await chunks.put((asyncio.get_running_loop().time(), b""))

        feeder = asyncio.get_running_loop().create_task(read_into_queue())
        conn.tasks.append(feeder)
        try:
            while not conn.closed.is_set():
                state["busy"] = False
                arrived, data = await chunks.get()
                state["busy"] = True
                if not data:
                    if stream == "upstream" and writer.can_write_eof():
                        writer.write_eof()  # the client half-closed: pass it on, keep the response flowing
                        half_closed = True
                    break
                conn.arm_timers()
                if conn.first("timeout", stream):
                    continue  # blackhole: data is dropped while the toxic is in place
                if state["first"] and stream == "downstream":
                    fbd = conn.first("first_byte_delay")
                    if fbd:
                        await asyncio.sleep(fbd.attributes["delay"] / 1000)
                state["first"] = False
                for toxic in conn.active(stream):
                    if toxic.type == "latency":
                        jitter = toxic.attributes["jitter"]
                        delay = toxic.attributes["latency"] + random.uniform(-jitter, jitter)  # noqa: S311
                        # Like Toxiproxy: each chunk leaves `delay` after it arrived (delays do not add up).
                        wait = arrived + max(delay, 0) / 1000 - asyncio.get_running_loop().time()
                        if wait > 0:
                            await asyncio.sleep(wait)
                limit = conn.first("limit_data", stream)
                if limit:
                    room = int(limit.attributes["bytes"]) - conn.sent[stream]
                    if room <= 0:
                        break
                    data = data[:room]
                bandwidth = conn.first("bandwidth", stream)
                if bandwidth and bandwidth.attributes["rate"] > 0:
                    # Pace in pieces of ~50 ms worth of bytes, each waiting its share before it goes.
                    rate = bandwidth.attributes["rate"] * 1024
                    step = max(1, int(rate / 20))
                    for pos in range(0, len(data), step):
                        piece = data[pos:pos + step]
                        await asyncio.sleep(len(piece) / rate)
                        await self._write(conn, writer, piece, stream)
                else:
                    await self._write(conn, writer, data, stream)
                conn.sent[stream] += len(data)
                if limit and conn.sent[stream] >= limit.attributes["bytes"]:
                    break
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            feeder.cancel()
            if not half_closed and not conn.closed.is_set():
                await conn.close()

    @staticmethod
    async def _write(conn: Connection, writer, data: bytes, stream: str) -> None:
        slicer = conn.first("slicer", stream)
        if slicer and slicer.attributes["average_size"] > 0:
            avg = int(slicer.attributes["average_size"])
            var = int(slicer.attributes["size_variation"])
            pos = 0
            while pos < len(data):
                size = max(1, avg + random.randint(-var, var))  # noqa: S311
                writer.write(data[pos:pos + size])
                await writer.drain()
                pos += size
                await asyncio.sleep(slicer.attributes["delay"] / 1_000_000)
            return
        writer.write(data)
        await writer.drain()


class FaultProxyServer:
    """The proxies and the Toxiproxy-compatible HTTP API over them."""

    def __init__(self, allowed: set[str] | None = None):
        self.allowed = allowed or set()
        self.proxies: dict[str, Proxy] = {}

    async def create(self, data: dict) -> Proxy:
        if not isinstance(data, dict) or not data.get("name") or "listen" not in data or "upstream" not in data:
            raise ApiError(400, "a proxy needs name, listen and upstream")
        if data["name"] in self.proxies:
            raise ApiError(409, f"proxy {data['name']} already exists")
        proxy = Proxy(str(data["name"]), str(data["listen"]), str(data["upstream"]),
                      bool(data.get("enabled", True)), self.allowed)
        if proxy.enabled:
            await proxy.start()
        self.proxies[proxy.name] = proxy
        return proxy

    def get(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise ApiError(404, f"proxy {name} not found")
        return self.proxies[name]

    def toxic(self, request: web.Request) -> tuple[Proxy, Toxic]:
        """The proxy and toxic a ``/proxies/{name}/toxics/{toxic}`` request names, or a 404."""
        proxy = self.get(request.match_info["name"])
        toxic = proxy.toxics.get(request.match_info["toxic"])
        if toxic is None:
            raise ApiError(404, f"toxic {request.match_info['toxic']} not found")
        return proxy, toxic

    async def reset(self) -> None:
        for proxy in self.proxies.values():
            proxy.toxics.clear()
            if not proxy.enabled:
                await proxy.set_enabled(True)

    def app(self) -> web.Application:
        routes = web.RouteTableDef()

        def handler(fn):
            async def wrapped(request: web.Request):
                try:
                    return await fn(request)
                except ApiError as err:
                    return web.json_response({"error": str(err), "status": err.status}, status=err.status)
            return wrapped

        async def body(request: web.Request):
            try:
                return await request.json()
            except ValueError:
                raise ApiError(400, "request body must be JSON") from None

        @routes.get("/version")
        @handler
        async def version(_request):
            return web.Response(text=VERSION)

        @routes.get("/proxies")
        @handler
        async def list_proxies(_request):
            return web.json_response({n: p.to_json() for n, p in self.proxies.items()})

        @routes.post("/proxies")
        @handler
        async def create_proxy(request):
            return web.json_response((await self.create(await body(request))).to_json(), status=201)

        @routes.post("/populate")
        @handler
        async def populate(request):
            items = await body(request)
            if not isinstance(items, list):
                raise ApiError(400, "populate takes a list of proxies")
            out = []
            for item in items:
                if item.get("name") in self.proxies:
                    await self.proxies.pop(item["name"]).stop()
                out.append((await self.create(item)).to_json())
            return web.json_response({"proxies": out}, status=201)

        @routes.get("/proxies/{name}")
        @handler
        async def get_proxy(request):
            return web.json_response(self.get(request.match_info["name"]).to_json())

        @routes.post("/proxies/{name}")
        @handler
        async def update_proxy(request):
            proxy = self.get(request.match_info["name"])
            data = await body(request)
            if "enabled" in data:
                await proxy.set_enabled(bool(data["enabled"]))
            return web.json_response(proxy.to_json())

        @routes.delete("/proxies/{name}")
        @handler
        async def delete_proxy(request):
            proxy = self.get(request.match_info["name"])
            await proxy.stop()
            del self.proxies[proxy.name]
            return web.Response(status=204)

        @routes.get("/proxies/{name}/toxics")
        @handler
        async def list_toxics(request):
            return web.json_response([t.to_json() for t in self.get(request.match_info["name"]).toxics.values()])

        @routes.post("/proxies/{name}/toxics")
        @handler
        async def add_toxic(request):
            proxy = self.get(request.match_info["name"])
            toxic = Toxic.from_json(await body(request))
            if toxic.name in proxy.toxics:
                raise ApiError(409, f"toxic {toxic.name} already exists on {proxy.name}")
            proxy.toxics[toxic.name] = toxic
            return web.json_response(toxic.to_json())

        @routes.get("/proxies/{name}/toxics/{toxic}")
        @handler
        async def get_toxic(request):
            return web.json_response(self.toxic(request)[1].to_json())

        @routes.post("/proxies/{name}/toxics/{toxic}")
        @handler
        async def update_toxic(request):
            proxy, old = self.toxic(request)
            merged = {**old.to_json(), **(await body(request))}
            merged["attributes"] = {**old.attributes, **(merged.get("attributes") or {})}
            proxy.toxics[old.name] = Toxic.from_json(merged, name=old.name)
            return web.json_response(proxy.toxics[old.name].to_json())

        @routes.delete("/proxies/{name}/toxics/{toxic}")
        @handler
        async def delete_toxic(request):
            proxy = self.get(request.match_info["name"])
            if proxy.toxics.pop(request.match_info["toxic"], None) is None:
                raise ApiError(404, f"toxic {request.match_info['toxic']} not found")
            return web.Response(status=204)

        @routes.post("/reset")
        @handler
        async def reset(_request):
            await self.reset()
            return web.Response(status=204)

        app = web.Application()
        app.add_routes(routes)
        return app


async def serve(api: str, proxies: list[dict], allowed: set[str]) -> None:
    server = FaultProxyServer(allowed)
    for item in proxies:
        await server.create(item)
    host, port = split_addr(api)
    _check_host(host, allowed)
    runner = web.AppRunner(server.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    print(f"fault proxy API on http://{api} with {len(proxies)} proxies", flush=True)
    await asyncio.Event().wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.faultproxy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api", default="127.0.0.1:8474", help="address of the HTTP API")
    parser.add_argument("--config", help="JSON file with a list of proxies {name, listen, upstream}")
    parser.add_argument("--allow-host", action="append", default=[], help="a non-loopback host to allow")
    args = parser.parse_args(argv)
    proxies = []
    if args.config:
        with open(args.config) as handle:
            proxies = json.load(handle)
    try:
        try:
            import uvloop  # noqa: PLC0415 - several times cheaper per forwarded byte than asyncio's loop
        except ImportError:
            asyncio.run(serve(args.api, proxies, set(args.allow_host)))
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(serve(args.api, proxies, set(args.allow_host)))
    except ApiError as err:
        print(f"faultproxy: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
