"""Chainlit UI keywords: a question asked the way the browser asks it, over the UI's WebSocket.

The UI is reached at ``${UI_URL}`` (empty: through the gateway, ``${GATEWAY_URL}``,
whose catch-all routes to the UI with WebSocket upgrade), Socket.IO path
``${UI_SOCKETIO_PATH}`` (``/ws/socket.io`` in Chainlit 2).
"""

from __future__ import annotations

import asyncio

from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from robot.utils import timestr_to_secs
from xnai_qa import safehttp, uiclient

from ..base import LibraryComponent


class UiKeywords(LibraryComponent):
    """Asks the Chainlit UI questions over its Socket.IO WebSocket and checks the streamed answer."""

    @keyword("Ask Through The UI", tags=["requires:ui"])
    def ask_through_the_ui(self, question: str, timeout: str = "20s") -> dict:
        """Asks ``question`` over a WebSocket-only Socket.IO connection and returns the answer.

        The result has ``token_count``, ``tokens``, ``streamed_text`` (the tokens joined),
        ``text`` (the final message), ``errors`` (error messages the UI showed),
        ``first_token_s``, ``total_s`` and ``transport``.  Fails when no connection can be
        made or the turn does not end within ``timeout``.

        Example:
        | ${answer}= | Ask Through The UI | What is the Caddy gateway? |
        """
        base = self._var("UI_URL") or self._var("GATEWAY_URL")
        safehttp.check(base, self._var("ALLOWED_HOSTS", []))
        seconds = timestr_to_secs(timeout)
        try:
            answer = asyncio.run(uiclient.ask(base, question, socketio_path=self._var("UI_SOCKETIO_PATH",
                                                                                      "/ws/socket.io"),
                                              timeout_s=seconds))
        except uiclient.UIError as err:
            raise Failure(str(err)) from None
        result = answer.as_dict()
        logger.info(f"UI at {base} over {answer.transport}: {len(answer.tokens)} tokens, first after "
                    f"{answer.first_token_s} s, {answer.total_s:.3f} s in all; text: {answer.text[:200]!r}; "
                    f"errors: {answer.errors}")
        return result

    @keyword("UI Answer Should Be Streamed")
    def ui_answer_should_be_streamed(self, answer: dict, min_tokens: int = 5) -> None:
        """Fails unless the answer came over a WebSocket as at least ``min_tokens`` streamed tokens
        that add up to the final message, with no error message.

        Example:
        | UI Answer Should Be Streamed | ${answer} | min_tokens=5 |
        """
        problems = []
        if answer["transport"] != "websocket":
            problems.append(f"the transport was {answer['transport']!r}, not websocket")
        if answer["errors"]:
            problems.append(f"the UI showed errors: {answer['errors']}")
        if answer["token_count"] < int(min_tokens):
            problems.append(f"{answer['token_count']} streamed tokens, expected at least {min_tokens}")
        if not answer["text"]:
            problems.append("no final answer message")
        elif answer["token_count"] and answer["streamed_text"].strip() != answer["text"].strip():
            problems.append(f"the streamed tokens {answer['streamed_text'][:120]!r} do not add up to the final "
                            f"message {answer['text'][:120]!r}")
        if problems:
            raise Failure("The UI's answer was not streamed as expected: " + "; ".join(problems) + ".")
