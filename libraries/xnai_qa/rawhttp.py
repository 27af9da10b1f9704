"""A minimal HTTP/1.1 keep-alive client on asyncio protocols, for load generation only.

aiohttp spends most of a small request's time in its own machinery; this
client writes prebuilt request bytes and parses just what it must (status,
Content-Length or chunked body, Connection), so one process offers several
times more load.  Plain ``http://`` only; functional calls use requests.
"""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from urllib.parse import urlsplit

SEQ_MARK = "{seq}"  # in a JSON body: replaced per request by a value unique to that request


class ResponseError(Exception):
    """The server sent something this client cannot parse."""


class _Connection(asyncio.Protocol):
    def __init__(self):
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.lost = False
        self._reset()

    def _reset(self) -> None:
        self.state = "head"
        self.status = 0
        self.remaining = 0
        self.chunked = False
        self.keep_alive = True
        self.until_close = False

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            if self.until_close and self.state == "body":
                self.waiter.set_result(self.status)
            else:
                self.waiter.set_exception(ConnectionResetError("connection closed before the response ended"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        try:
            self._parse()
        except ResponseError as err:
            if self.waiter is not None and not self.waiter.done():
                self.waiter.set_exception(err)

    def _parse(self) -> None:
        while True:
            if self.state == "head":
                end = self.buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buf[:end]).split(b"\r\n")
                del self.buf[: end + 4]
                parts = head[0].split(b" ", 2)
                if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
                    raise ResponseError(f"bad status line {head[0][:60]!r}")
                self.status = int(parts[1])
                length = None
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value.strip())
                    elif name == b"transfer-encoding" and b"chunked" in value.lower():
                        self.chunked = True
                    elif name == b"connection" and value.strip().lower() == b"close":
                        self.keep_alive = False
                if parts[0] == b"HTTP/1.0":
                    self.keep_alive = False
                if self.chunked:
                    self.state = "chunk-size"
                elif length is not None:
                    self.remaining = length
                    self.state = "body"
                elif self.status in (204, 304) or 100 <= self.status < 200:
                    self.remaining = 0
                    self.state = "body"
                else:
                    self.until_close, self.keep_alive, self.state = True, False, "body"
            if self.state == "body":
                if self.until_close:
                    self.buf.clear()
                    return
                take = min(self.remaining, len(self.buf))
                del self.buf[:take]
                self.remaining -= take
                if self.remaining:
                    return
                self._done()
                return
            if self.state == "chunk-size":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(self.buf[:end]).split(b";")[0] or b"0", 16)
                del self.buf[: end + 2]
                self.remaining = size
                self.state = "chunk-data" if size else "trailer"
            if self.state == "chunk-data":
                take = min(self.remaining + 2, len(self.buf))
                del self.buf[:take]
                self.remaining -= take
                if self.remaining > -2:
                    return
                self.state = "chunk-size"
                continue
            if self.state == "trailer":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return
                line = bytes(self.buf[:end])
                del self.buf[: end + 2]
                if not line:
                    self._done()
                    return

    def _done(self) -> None:
        status = self.status
        keep = self.keep_alive
        self._reset()
        self.keep_alive = keep
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(status)


class RawClient:
    """Sends one prebuilt request to one origin over a pool of keep-alive connections."""

    def __init__(self, url: str, method: str = "GET", json_body=None, headers: dict | None = None,
                 limit: int = 256):
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError("RawClient speaks plain http:// only")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.body = b"" if json_body is None else json.dumps(json_body).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "User-Agent: xnai-load",
                 "Accept: */*"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if json_body is not None:
            lines += ["Content-Type: application/json"]
        self.head = "\r\n".join(lines).encode()
        # A body with SEQ_MARK gets a fresh value per request (unique cache keys); others are prebuilt once.
        self.templated = SEQ_MARK.encode() in self.body
        self.run_tag = uuid.uuid4().hex[:8]
        self.sequence = 0
        self.request_bytes = self._build(self.body) if json_body is not None else self.head + b"\r\n\r\n"
        self.idle: collections.deque[_Connection] = collections.deque()
        self.slots = asyncio.Semaphore(limit)
        self.open: set[_Connection] = set()

    def _build(self, body: bytes) -> bytes:
        return self.head + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    def next_request(self) -> bytes:
        if not self.templated:
            return self.request_bytes
        self.sequence += 1
        return self._build(self.body.replace(SEQ_MARK.encode(), f"{self.run_tag}-{self.sequence}".encode()))

    async def request(self) -> int:
        """Send the request and return the response status (raises OSError / ResponseError)."""
        payload = self.next_request()
        async with self.slots:
            conn = None
            while self.idle:
                candidate = self.idle.pop()
                if not candidate.lost:
                    conn = candidate
                    break
            if conn is None:
                loop = asyncio.get_running_loop()
                _transport, conn = await loop.create_connection(_Connection, self.host, self.port)
                self.open.add(conn)
            conn.waiter = asyncio.get_running_loop().create_future()
            conn.transport.write(payload)
            try:
                status = await conn.waiter
            except BaseException:
                conn.transport.abort()
                self.open.discard(conn)
                raise
            if conn.keep_alive and not conn.lost:
                self.idle.append(conn)
            else:
                conn.transport.close()
                self.open.discard(conn)
            return status

    def close(self) -> None:
        for conn in list(self.open):
            if conn.transport is not None:
                conn.transport.close()
        self.open.clear()
        self.idle.clear()
