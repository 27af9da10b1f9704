"""A Chainlit client: asks a question over the UI's Socket.IO WebSocket and records the answer.

Chainlit's browser client connects to ``/ws/socket.io`` with an ``auth`` object
(``sessionId``, ``clientType``...), emits ``connection_successful`` (the server
answers ``task_end`` once the chat has started), then ``client_message``.
The answer arrives as ``stream_start`` (carrying the first token), one
``stream_token`` per further token, and the
final message (``new_message`` / ``update_message``); ``task_end`` closes the turn.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from dataclasses import dataclass, field

import socketio


class UIError(Exception):
    """The UI could not be reached or did not finish its answer in time."""


@dataclass
class UIAnswer:
    question: str
    transport: str = ""
    tokens: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)   # the assistant messages' final texts
    errors: list[str] = field(default_factory=list)     # error messages the UI showed
    first_token_s: float | None = None
    total_s: float = 0.0
    events: list[str] = field(default_factory=list)

    @property
    def streamed_text(self) -> str:
        return "".join(self.tokens)

    @property
    def text(self) -> str:
        return self.messages[-1] if self.messages else ""

    def as_dict(self) -> dict:
        return {"question": self.question, "transport": self.transport, "token_count": len(self.tokens),
                "tokens": list(self.tokens), "streamed_text": self.streamed_text, "text": self.text,
                "messages": list(self.messages), "errors": list(self.errors),
                "first_token_s": self.first_token_s, "total_s": round(self.total_s, 3),
                "events": list(self.events)}


def _user_message(question: str) -> dict:
    return {"message": {"id": str(uuid.uuid4()), "threadId": "", "name": "User", "type": "user_message",
                        "output": question, "createdAt": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")},
            "fileReferences": []}


async def ask(base_url: str, question: str, *, socketio_path: str = "/ws/socket.io",
              timeout_s: float = 20.0) -> UIAnswer:
    """Ask ``question`` over a WebSocket-only Socket.IO connection; bounded by ``timeout_s`` in all."""
    answer = UIAnswer(question)
    client = socketio.AsyncClient(reconnection=False)
    turn_over = asyncio.Event()
    asked: list[float] = []

    @client.on("*")
    async def _any(event, data=None):
        if not asked:
            if event == "task_end":
                turn_over.set()
            return
        answer.events.append(event)
        if event in ("stream_start", "stream_token"):
            # Chainlit's stream_start carries the first token as the message's output so far.
            token = data.get("output", "") if event == "stream_start" else data.get("token", "")
            if token:
                if answer.first_token_s is None:
                    answer.first_token_s = round(time.monotonic() - asked[0], 3)
                answer.tokens.append(token)
        elif event in ("new_message", "update_message") and data.get("type") == "assistant_message":
            if data.get("isError"):
                answer.errors.append(data.get("output", ""))
            else:
                answer.messages.append(data.get("output", ""))
        elif event == "task_end":
            turn_over.set()

    deadline = time.monotonic() + timeout_s

    def left() -> float:
        return max(0.1, deadline - time.monotonic())

    try:
        await client.connect(base_url, socketio_path=socketio_path.strip("/"), transports=["websocket"],
                             auth={"clientType": "webapp", "sessionId": str(uuid.uuid4()), "threadId": None,
                                   "userEnv": "{}", "chatProfile": None},
                             wait_timeout=max(1, int(left())))
    except socketio.exceptions.ConnectionError as err:
        raise UIError(f"No Socket.IO connection to {base_url} (path {socketio_path}): {err}") from None
    try:
        answer.transport = client.transport()
        await client.emit("connection_successful")
        try:
            await asyncio.wait_for(turn_over.wait(), left())
        except TimeoutError:
            raise UIError("The UI never started the chat (no task_end after connection_successful).") from None
        turn_over.clear()
        asked.append(time.monotonic())
        await client.emit("client_message", _user_message(question))
        try:
            await asyncio.wait_for(turn_over.wait(), left())
        except TimeoutError:
            raise UIError(f"The UI did not finish its answer within {timeout_s:g} s "
                          f"({len(answer.tokens)} tokens so far; events {answer.events[-5:]}).") from None
        answer.total_s = time.monotonic() - asked[0]
    finally:
        await client.disconnect()
    return answer
