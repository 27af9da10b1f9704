"""A minimal HTTP/1.1 keep-alive client on asyncio protocols, for load generation only.

aiohttp spends most of a small request's time in its own machinery; this
client writes prebuilt request bytes and hands the answers to llhttp (through
``httptools``, the C parser uvicorn uses), so one process offers several times
more load while every answer is read by a maintained HTTP/1.1 implementation:
a malformed or cut response is an error, never an OK.  Plain ``http://`` only;
functional calls use requests.
"""

from __future__ import annotations

import asyncio
import collections
import json
import uuid
from urllib.parse import urlsplit

import httptools

SEQ_MARK = "{seq}"  # in a JSON body: replaced per request by a value unique to that request


class ResponseError(Exception):
    """The server sent something that is not a valid HTTP/1.1 response."""


class IncompleteResponse(ResponseError):
    """The connection closed in the middle of a response (a cut body, a missing last chunk)."""


class _HeadersSuffice(Exception):
    """Raised in the parser's callback to end a HEAD answer at its headers (it has no body)."""


_INFORMATIONAL = range(100, 200)


class _Connection(asyncio.Protocol):
    """One keep-alive connection; responses parsed by llhttp (``httptools``, the parser under uvicorn),
    so framing, lengths, chunks, 1xx and ``Connection: close`` follow HTTP/1.1, and anything malformed
    is a ``ResponseError``. One request at a time (no pipelining)."""

    def __init__(self, head: bool = False):
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future | None = None
        self.lost = False
        self.head = head  # the requests are HEAD: an answer ends at its headers whatever they announce
        self.keep_alive = True
        self._new_parser()

    def _new_parser(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.on_message_begin()

    # -- llhttp callbacks (only those defined are called) --
    def on_message_begin(self) -> None:
        self.headers_done = False
        self.framed = False  # Content-Length or chunked: the end is known without a close

    def on_header(self, name: bytes, _value: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() in _INFORMATIONAL:
            return  # a 1xx: the final answer follows on this connection
        self.headers_done = True
        if self.head:
            raise _HeadersSuffice

    def on_message_complete(self) -> None:
        status = self.parser.get_status_code()
        if status in _INFORMATIONAL:
            return
        self._finish(status, self.parser.should_keep_alive())

    # -- asyncio --
    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:  # noqa: ARG002 - asyncio's protocol signature
        self.lost = True
        if self.waiter is None or self.waiter.done():
            return
        if self.headers_done and not self.framed and not self.head:  # a body that ends with the connection
            self._finish(self.parser.get_status_code(), False)
        elif self.headers_done:
            self.waiter.set_exception(IncompleteResponse("the connection closed before the response ended"))
        else:
            self.waiter.set_exception(ConnectionResetError("the connection closed before a response"))

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            # Bytes nobody asked for (a body after a HEAD answer, a second response): not to be trusted again.
            self.keep_alive = False
            if self.transport is not None:
                self.transport.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as err:
            if not isinstance(err.__context__, _HeadersSuffice):
                raise
            status, keep = self.parser.get_status_code(), self.parser.should_keep_alive()
            self._new_parser()  # this one stopped at the headers; the next answer starts afresh
            self._finish(status, keep)
        except httptools.HttpParserError as err:
            self.keep_alive = False
            if not self.waiter.done():
                self.waiter.set_exception(ResponseError(f"malformed response: {err}"))

    def _finish(self, status: int, keep_alive: bool) -> None:
        if self.waiter is None or self.waiter.done():
            self.keep_alive = False  # a second, unasked-for response
            return
        self.keep_alive = keep_alive
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
        self.head_requests = method.upper() == "HEAD"
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
                _transport, conn = await loop.create_connection(lambda: _Connection(self.head_requests),
                                                                self.host, self.port)
                self.open.add(conn)
            conn.waiter = asyncio.get_running_loop().create_future()
            transport = conn.transport
            if transport is None:  # connection_made sets it before create_connection returns
                raise ConnectionError(f"no transport to {self.host}:{self.port}")
            transport.write(payload)
            try:
                status = await conn.waiter
            except BaseException:
                transport.abort()
                self.open.discard(conn)
                raise
            if conn.keep_alive and not conn.lost:
                self.idle.append(conn)
            else:
                transport.close()
                self.open.discard(conn)
            return status

    def close(self) -> None:
        for conn in list(self.open):
            if conn.transport is not None:
                conn.transport.close()
        self.open.clear()
        self.idle.clear()
