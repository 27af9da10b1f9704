"""The RAG API's answers when something goes wrong: the contract's error body, X-Request-ID on every
answer (errors included), validation errors as 400, routing errors and unexpected errors as the contract
says; and the stack's own 503 for an open breaker."""

from __future__ import annotations

import traceback
import uuid
from datetime import UTC, datetime

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from testbed.config import TestbedConfig


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def error_body(request: Request, status: int, code: str, message: str, category: str,
               details: dict | None = None, suggestion: str = "") -> dict:
    return {
        "error_code": code,
        "message": message,
        "category": category,
        "http_status": status,
        "timestamp": now_iso(),
        "details": details or {},
        "recovery_suggestion": suggestion,
        "request_id": getattr(request.state, "request_id", None),
    }


def error_response(request: Request, status: int, code: str, message: str, category: str,
                   details: dict | None = None, suggestion: str = "") -> JSONResponse:
    return JSONResponse(error_body(request, status, code, message, category, details, suggestion),
                        status_code=status)


def circuit_open_response(request: Request) -> JSONResponse:
    body = {"error": "LLM service unavailable (circuit open)", "request_id": request.state.request_id}
    return JSONResponse(body, status_code=503)


def llm_traceback() -> str:
    """What the stack-trace-in-error-body defect leaks: the formatted traceback of the LLM's failure."""
    try:
        raise RuntimeError("llama_cpp: failed to decode batch (n_ctx=2048)")
    except RuntimeError:
        return traceback.format_exc()


def internal_error(request: Request, exc: Exception) -> JSONResponse:
    print(f"internal error in {request.url.path} ({request.state.request_id}):\n"
          + "".join(traceback.format_exception(exc)), flush=True)
    return error_response(request, 500, "INTERNAL_ERROR", "Internal server error", "server",
                          suggestion="Retry later; report the request_id if it persists.")


class RequestId:
    """X-Request-ID on every answer; a plain ASGI middleware, so handlers still see their client
    go away (``request.is_disconnected()`` does not work through ``@app.middleware("http")``)."""

    def __init__(self, inner, cfg: TestbedConfig):
        self.inner, self.cfg = inner, cfg

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        rid = f"req_{uuid.uuid4()}"
        scope.setdefault("state", {})["request_id"] = rid

        started = False

        async def send_with_id(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if not self.cfg.has_defect("no-request-id"):
                    MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        try:
            await self.inner(scope, receive, send_with_id)
        except Exception as exc:
            # An error no handler expected: answered here, inside this middleware, so the answer keeps
            # its X-Request-ID (Starlette's own last-resort handler sits outside every middleware).
            if started or self.cfg.has_defect("internal-error-without-request-id"):
                raise
            response = internal_error(Request(scope), exc)
            await response(scope, receive, send_with_id)


def install(app: FastAPI, cfg: TestbedConfig) -> None:
    """The request-id middleware and the error handlers, on ``app``."""
    app.add_middleware(RequestId, cfg=cfg)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        status = 500 if cfg.has_defect("validation-as-500") else 400
        return error_response(request, status, "VALIDATION_ERROR", "Request validation failed", "validation",
                              {"errors": errors}, "Check the request body against the API schema.")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if cfg.has_defect("routing-errors-bare"):  # the framework's own {"detail": ...} body, no contract fields
            return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, f"HTTP_{exc.status_code}")
        return error_response(request, exc.status_code, code, str(exc.detail), "client")

    # What Starlette's outermost middleware answers an unexpected error with (the answer of the defect
    # internal-error-without-request-id: past the request-id middleware, so without its header).
    app.add_exception_handler(Exception, internal_error)
