"""The testbed's Chainlit UI: a real Chainlit app that streams answers from the RAG API.

Started by ``chainlit run testbed/ui/app.py --headless`` (see ``testbed.services``).
The stack's UI sends the user's message to the RAG API's ``/stream`` and relays
each ``token`` frame to the browser as Chainlit ``stream_token`` events over its
Socket.IO WebSocket (``/ws/socket.io``).  It calls the API through the fault
proxy, as the monitor does, so API faults reach the UI as they would in the stack.

Defect switch ``ui-drops-stream``: the UI waits for the whole answer and sends it
as one message, never streaming a token (the KG-1 UI test must notice).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import chainlit as cl
import httpx

from testbed.config import TestbedConfig

_CONFIG = TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
_API = f"http://127.0.0.1:{_CONFIG.port('rag_api_proxy')}/xnai/api/v1"
_DROPS_STREAM = _CONFIG.has_defect("ui-drops-stream")


async def _frames(question: str):
    """Yield the JSON frames of the API's SSE answer to ``question``."""
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with (httpx.AsyncClient(timeout=timeout) as client,
                client.stream("POST", f"{_API}/stream", json={"query": question}) as response):
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:].strip())


@cl.on_message
async def on_message(message: cl.Message) -> None:
    reply = cl.Message(content="")
    try:
        async for frame in _frames(message.content):
            kind = frame.get("type")
            if kind == "token":
                if _DROPS_STREAM:
                    reply.content += frame["content"]
                else:
                    await reply.stream_token(frame["content"])
            elif kind == "error":
                await cl.ErrorMessage(content=f"The API failed mid-answer: {frame.get('error')}").send()
                return
    except httpx.HTTPError as exc:
        await cl.ErrorMessage(content=f"The API is unavailable: {type(exc).__name__}").send()
        return
    await reply.send()
