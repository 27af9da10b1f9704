"""The raw load client against real servers: content-length, chunked, close, errors, and a corpus of
malformed answers that both load engines must classify (never counted as OK)."""

import asyncio

import pytest
from xnai_qa import load
from xnai_qa.rawhttp import IncompleteResponse, RawClient, ResponseError


async def _server(responses: list[bytes]):
    """Answers each request on a connection with the next canned response."""
    queue = list(responses)

    async def handle(reader, writer):
        try:
            while queue:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(queue.pop(0))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x"


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_keep_alive_with_content_length_and_chunked():
    async def scenario():
        server, url = await _server([
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
        ])
        client = RawClient(url, limit=1)
        assert [await client.request() for _ in range(3)] == [200, 201, 204]
        assert len(client.open) == 1, "one keep-alive connection served all three"
        client.close()
        server.close()

    run(scenario())


def test_body_until_close():
    async def scenario():
        server, url = await _server([b"HTTP/1.0 200 OK\r\n\r\nbody until close"])
        client = RawClient(url)
        assert await client.request() == 200
        client.close()
        server.close()

    run(scenario())


def test_a_cut_response_raises():
    async def scenario():
        server, url = await _server([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"])
        client = RawClient(url)
        with pytest.raises(IncompleteResponse):
            await client.request()
        client.close()
        server.close()

    run(scenario())


def test_garbage_is_a_response_error():
    async def scenario():
        server, url = await _server([b"SMTP ready\r\n\r\n"])
        client = RawClient(url)
        with pytest.raises(ResponseError):
            await client.request()
        client.close()
        server.close()

    run(scenario())


def test_only_plain_http():
    with pytest.raises(ValueError, match="plain http"):
        RawClient("https://127.0.0.1/")


OK_200 = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# (case, the answers to successive requests on one server, how the raw engine classifies each request)
CORPUS = [
    ("HEAD answered with a Content-Length and no body", "HEAD",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"],
     [None, None]),
    ("a negative Content-Length", "GET", [b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello"], ["bad response"]),
    ("a Content-Length that is not a number", "GET", [b"HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello"],
     ["bad response"]),
    ("two different Content-Lengths", "GET",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc"], ["bad response"]),
    ("100 Continue, then the real 500, then the next answer", "GET",
     [b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n", OK_200],
     ["status 500", None]),
    ("a status that is not a number", "GET", [b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n"], ["bad response"]),
    ("a status line without a version", "GET", [b"200 OK\r\nContent-Length: 0\r\n\r\n"], ["bad response"]),
    ("a chunk size that is not hex", "GET",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"], ["bad response"]),
    ("a chunk longer than its size", "GET",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcdef\r\n0\r\n\r\n"], ["bad response"]),
    ("a body cut short by the close", "GET", [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"],
     ["incomplete response"]),
    ("a chunked body without its last chunk", "GET",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"], ["incomplete response"]),
    ("Connection: close, then the next request on a new connection", "GET",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", OK_200], [None, None]),
    ("204 and 304 without a body, then the next answer on the same connection", "GET",
     [b"HTTP/1.1 204 No Content\r\n\r\n", b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n", OK_200],
     ["status 204", "status 304", None]),
    ("HTTP/1.0 with the body until the close", "GET", [b"HTTP/1.0 200 OK\r\n\r\nbody until close"], [None]),
    ("not HTTP at all", "GET", [b"SMTP ready\r\n\r\n"], ["bad response"]),
]


@pytest.mark.parametrize(("case", "method", "answers", "expected"), CORPUS, ids=[c[0] for c in CORPUS])
@pytest.mark.parametrize("engine", ["raw", "aiohttp"])
def test_a_malformed_answer_is_never_counted_as_ok(engine, case, method, answers, expected):
    async def scenario():
        server, url = await _server(answers)
        spec = load.RequestSpec(url, method, timeout_s=2.0, engine=engine)
        sender = load._sender(spec, 1)
        try:
            return [await sender.send() for _ in answers]
        finally:
            await sender.aclose()
            server.close()

    got = run(scenario())
    if engine == "raw":
        assert got == expected, case
    else:  # aiohttp names its errors its own way: what must hold is which answers are OK
        assert [g is None for g in got] == [e is None for e in expected], (case, got)
        assert "timeout" not in got, (case, got)
