"""The raw load client against real servers: content-length, chunked, close, errors."""

import asyncio

import pytest

from xnai_qa.rawhttp import RawClient, ResponseError


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
        with pytest.raises(ConnectionResetError):
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
