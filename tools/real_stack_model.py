"""The stack's RAG API under uvicorn, with a deterministic stand-in for its language model.

    python -m real_stack_model XNAi_rag_app.api.entrypoint:app --host 127.0.0.1 --port 32112 --control-port 32113

Run by ``tools/real_stack.py`` with the stack's own virtual environment and code on ``PYTHONPATH``.  It
imports the stack's app module, replaces the model the way the stack's unit tests do (``entrypoint.llm``,
and the orchestrator's cache, so the app never tries to load a model file), and serves the app exactly as
its compose command does.  Nothing else of the stack is touched.
"""

from __future__ import annotations

import importlib
import re
import sys
import time
from typing import Any


class StandInModel:
    """Answers from the prompt, word by word, the same every time: an ``invoke`` and a ``stream`` like the
    LangChain model the stack loads, and like it blocking the caller while it generates.

    Its behaviour can be set the way the testbed's model is (``{"mode": "ok"|"fail"|"slow"|"crash",
    "token_delay_s", "fail_after_tokens"}``), through a control server of its own on another loopback port
    (``--control-port``): the stack's code is not touched, only what stands in for its model."""

    WORDS_PER_ANSWER = 24
    TOKEN_DELAY_S = 0.002  # a small, fixed generation time: streams take a measurable while

    def __init__(self) -> None:
        self.control: dict[str, Any] = {"mode": "ok", "token_delay_s": None, "fail_after_tokens": 0}

    def _words(self, prompt: str, max_tokens: int) -> list[str]:
        question = re.findall(r"[\w'-]+", prompt)[-40:] or ["nothing"]
        words = ["Stand-in", "answer:"] + [question[i % len(question)] for i in range(self.WORDS_PER_ANSWER)]
        return words[: max(1, int(max_tokens))]

    def _delay(self) -> float:
        return self.control.get("token_delay_s") or self.TOKEN_DELAY_S

    def invoke(self, prompt: str, max_tokens: int = 256, **_: object) -> str:
        if self.control["mode"] in ("fail", "crash"):  # to the stack's code, both are the model raising
            raise RuntimeError("stand-in model: failing on purpose (set through its control port)")
        words = self._words(prompt, max_tokens)
        for _word in words:  # token by token, reading the control each time: a restored model is fast at once
            time.sleep(self._delay())  # the model's own generation time, not a synchronisation
        return " ".join(words)

    def stream(self, prompt: str, max_tokens: int = 256, **_: object):
        for index, word in enumerate(self._words(prompt, max_tokens)):
            if self.control["mode"] in ("fail", "crash") and index >= self.control["fail_after_tokens"]:
                raise RuntimeError("stand-in model: failing on purpose (set through its control port)")
            time.sleep(self._delay())  # the model's own generation time, not a synchronisation
            yield word + " "


def serve_control(model: StandInModel, port: int) -> None:
    """``POST /llm`` with the testbed's body sets the stand-in's behaviour; answers the behaviour now."""
    import json  # noqa: PLC0415
    import threading  # noqa: PLC0415
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                mode = body.get("mode", "ok")
                if self.path != "/llm" or mode not in ("ok", "fail", "slow", "crash"):
                    raise ValueError(f"POST /llm with mode ok, fail, slow or crash (got {self.path} {mode!r})")
                delay = body.get("token_delay_s")
                model.control = {"mode": mode, "token_delay_s": None if delay is None else float(delay),
                                 "fail_after_tokens": int(body.get("fail_after_tokens") or 0)}
                answer, status = json.dumps(model.control).encode(), 200
            except (ValueError, TypeError) as err:
                answer, status = json.dumps({"error": str(err)}).encode(), 400
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="stand-in-model-control").start()


def main(argv: list[str]) -> None:
    import uvicorn  # noqa: PLC0415 - the stack's own uvicorn, from its virtual environment

    target, options = argv[0], argv[1:]
    module_name, _, attr = target.partition(":")
    module = importlib.import_module(module_name)
    model = StandInModel()
    module.llm = model  # type: ignore[attr-defined]  # the stack's module, where its tests replace the model
    orchestrator = getattr(module, "orchestrator", None)
    if orchestrator is not None and hasattr(orchestrator, "_llm_cache"):
        orchestrator._llm_cache = model  # noqa: SLF001 - as the stack's unit tests patch it
    option = lambda name, default: options[options.index(name) + 1] if name in options else default  # noqa: E731
    if option("--control-port", ""):
        serve_control(model, int(option("--control-port", "")))
    uvicorn.run(getattr(module, attr), host=option("--host", "127.0.0.1"), port=int(option("--port", "8012")))


if __name__ == "__main__":
    main(sys.argv[1:])
