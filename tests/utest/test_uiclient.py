"""The Chainlit client's own logic: answer assembly and a clear error when no UI answers."""

import asyncio
import socket

import pytest
from xnai_qa import uiclient


def test_streamed_text_joins_tokens_and_text_is_the_last_message():
    answer = uiclient.UIAnswer("q", tokens=["The", " gateway", "."], messages=["draft", "The gateway."])
    assert answer.streamed_text == "The gateway."
    assert answer.text == "The gateway."
    assert answer.as_dict()["token_count"] == 3


def test_no_ui_listening_is_a_clear_error_within_the_bound():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(uiclient.UIError, match=f"No Socket.IO connection to http://127.0.0.1:{port}"):
        asyncio.run(uiclient.ask(f"http://127.0.0.1:{port}", "hello", timeout_s=3))
