"""An SSE stream client on a real socket (asyncio streams), with timing and early, abrupt exits.

It writes the HTTP request itself so it controls the connection: it can stop
after N events, after T seconds or before the first event, and close the
socket at once (like a browser tab being closed).  Time to first byte and to
each event are stamped when the bytes arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import struct
from dataclasses import dataclass
from urllib.parse import urlsplit

from .sse import Event, FramingError, SSEParser

MAX_ERROR_BODY = 64 * 1024


@dataclass
class StreamOptions:
    stop_after_events: int | None = None
    stop_after_s: float | None = None
    stop_before_first_event: bool = False
    timeout_s: float = 30.0
    abrupt: bool = True


class _Chunked:
    """Incremental decoder of a chunked transfer-encoded body."""

    def __init__(self):
        self.buf = b""
        self.remaining = 0
        self.state = "size"
        self.finished = False

    def feed(self, data: bytes) -> bytes:
        self.buf += data
        out = bytearray()
        while True:
            if self.state == "size":
                end = self.buf.find(b"\r\n")
                if end < 0:
                    return bytes(out)
                size = int(self.buf[:end].split(b";")[0] or b"0", 16)
                self.buf = self.buf[end + 2:]
                if size == 0:
                    self.state, self.finished = "done", True
                    return bytes(out)
                self.remaining, self.state = size, "data"
            if self.state == "data":
                take = self.buf[: self.remaining]
                out += take
                self.buf = self.buf[len(take):]
                self.remaining -= len(take)
                if self.remaining:
                    return bytes(out)
                self.state = "crlf"
            if self.state == "crlf":
                if len(self.buf) < 2:
                    return bytes(out)
                self.buf = self.buf[2:]
                self.state = "size"
            if self.state == "done":
                return bytes(out)


def _abort(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def open_stream(url: str, body: dict, opts: StreamOptions) -> dict:
    """POST ``body`` to ``url`` and read the event stream as ``opts`` says; returns the observations."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    payload = json.dumps(body).encode()
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    result: dict = {"url": url, "status": None, "headers": {}, "events": [], "ended_by": None, "framing_error": None,
                    "ttfb_ms": None, "first_event_ms": None}
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), opts.timeout_s)
    parser = SSEParser()
    events: list[Event] = []
    try:
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\nContent-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload)
        await writer.drain()
        deadline = t0 + opts.timeout_s
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = await asyncio.wait_for(reader.read(65536), max(deadline - loop.time(), 0.001))
            if not chunk:
                raise ConnectionError("connection closed before the response headers")
            if result["ttfb_ms"] is None:
                result["ttfb_ms"] = round((loop.time() - t0) * 1000, 3)
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        result["status"] = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        result["headers"] = headers
        if result["status"] != 200 or "text/event-stream" not in headers.get("content-type", ""):
            body_bytes = rest
            while len(body_bytes) < MAX_ERROR_BODY:
                more = await asyncio.wait_for(reader.read(65536), max(deadline - loop.time(), 0.001))
                if not more:
                    break
                body_bytes += more
            result["body"] = body_bytes.decode("utf-8", "replace")[:MAX_ERROR_BODY]
            result["ended_by"] = "server"
            return result
        if opts.stop_before_first_event:
            result["ended_by"] = "client before first event"
            return result
        chunked = _Chunked() if "chunked" in headers.get("transfer-encoding", "").lower() else None
        stop_at = t0 + opts.stop_after_s if opts.stop_after_s is not None else None
        pending = rest
        arrived = loop.time()
        while True:
            if pending:
                data = chunked.feed(pending) if chunked else pending
                pending = b""
                for event in parser.feed(data, arrived):
                    events.append(event)
                    if opts.stop_after_events is not None and len(events) >= opts.stop_after_events:
                        result["ended_by"] = f"client after {len(events)} events"
                        return result
                if chunked and chunked.finished:
                    break
            now = loop.time()
            limit = deadline if stop_at is None else min(deadline, stop_at)
            if now >= limit:
                if stop_at is not None and now >= stop_at:
                    result["ended_by"] = f"client after {opts.stop_after_s:g} s"
                    return result
                raise TimeoutError()
            try:
                pending = await asyncio.wait_for(reader.read(65536), limit - now)
            except TimeoutError:
                if stop_at is not None and loop.time() >= stop_at - 0.001:
                    result["ended_by"] = f"client after {opts.stop_after_s:g} s"
                    return result
                raise
            arrived = loop.time()
            if not pending:
                if chunked and not chunked.finished:
                    raise FramingError("connection closed before the final chunk of the stream")
                break
        parser.close()
        result["ended_by"] = "server"
        return result
    except FramingError as err:
        result["framing_error"] = str(err)
        result["ended_by"] = "framing error"
        return result
    finally:
        if opts.abrupt:
            _abort(writer)
        else:
            writer.close()
        result["duration_ms"] = round((loop.time() - t0) * 1000, 3)
        result["events"] = [{"index": e.index, "event": e.event, "id": e.id, "data": e.data,
                             "t_ms": round((e.arrived - t0) * 1000, 3)} for e in events]
        if events:
            result["first_event_ms"] = result["events"][0]["t_ms"]
            times = [e["t_ms"] for e in result["events"]]
            gaps = sorted(b - a for a, b in itertools.pairwise(times))
            result["gaps_ms"] = {"max": round(gaps[-1], 3), "p50": round(gaps[len(gaps) // 2], 3)} if gaps else {}
        result["event_count"] = len(events)
