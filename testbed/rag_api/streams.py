"""``POST /stream``: one answer as SSE frames (sources, tokens, done; an error frame when the model
fails or the stream outlives its timeout), and the clean-up of what each stream holds on every way
out; ``/metrics`` counts the streams cleaned up."""

from __future__ import annotations

import asyncio
import json
import os
import time

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse

from xnai_contract import API_PREFIX

from .breaker import RedisCircuitBreaker
from .context import RagApi, rag_api
from .queries import QueryRequest, admit, query_request
from .rag import Document
from .store import record_query

router = APIRouter()


class StreamResources:
    """What one open stream holds: a context buffer and a file descriptor (the model's context handle)."""

    def __init__(self, stream_id: str, buffer_bytes: int):
        self.stream_id = stream_id
        self.buffer: bytearray | None = bytearray(buffer_bytes)
        self.fd: int | None = os.open("/dev/null", os.O_RDONLY)
        self.frames = 0
        self.opened = time.monotonic()

    def close_fd(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def describe(self) -> dict:
        return {"id": self.stream_id, "age_s": round(time.monotonic() - self.opened, 3), "frames": self.frames,
                "buffer_bytes": len(self.buffer or b""), "fd": self.fd}


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always closes its generator, even when the client went away.

    On a client disconnect Starlette cancels the task that iterates the body; a generator
    suspended at a ``yield`` is then left to the garbage collector, and its ``finally`` runs
    whenever that happens.  Closing it here, shielded from the cancellation, runs the clean-up
    at once.
    """

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()  # type: ignore[attr-defined]  # an async generator here


def _frame(payload: dict) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


async def _orphan_watcher(stream_id: str) -> None:  # noqa: ARG001 - the stream that left it, for a debugger
    """What the stream-leaks-task defect leaves behind: a task per disconnected stream, waiting forever."""
    await asyncio.Event().wait()


async def _audit_stream(stream_id: str) -> None:
    """Called without await by the stream-unawaited-coroutine defect."""


@router.post(API_PREFIX + "/stream")
async def stream(request: Request, req: QueryRequest = Depends(query_request), api: RagApi = Depends(rag_api)):
    await record_query(api, request, req, "stream")
    admitted = await admit(api, req, request)
    if isinstance(admitted, JSONResponse):
        return admitted
    breaker, sources, tokens = admitted
    stream_id = request.state.request_id
    return ClosingStreamingResponse(stream_frames(api, stream_id, req, sources, tokens, breaker),
                                    media_type="text/event-stream",
                                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


async def stream_frames(api: RagApi, stream_id: str, req: QueryRequest, sources: list[Document], tokens: list[str],
                        breaker: RedisCircuitBreaker):
    """One answer as SSE frames.  Its resources (a context buffer, a file descriptor) are
    taken when the stream starts and given back on every way out: completion, client
    disconnect before or after the first frame, server-side timeout."""
    llm, timings = api.llm, api.timings
    resource = StreamResources(stream_id, api.stream_buffer_bytes)
    api.streams[stream_id] = resource
    started = time.perf_counter()
    completed = False  # True once the server ended the stream itself (done, timeout or error frame)
    try:
        await asyncio.sleep(timings.first_event_delay_s)  # retrieval
        if req.use_rag or api.has_defect("use-rag-ignored"):
            cited = sources[:1] if api.has_defect("stream-cites-fewer-sources") else sources
            yield _frame({"type": "sources", "sources": [d.id for d in cited]})
            resource.frames += 1
        for index, tok in enumerate(tokens):
            if llm["mode"] == "fail" and index >= llm["fail_after_tokens"]:
                await breaker.record_failure()
                completed = True
                if api.has_defect("stream-ends-silently-on-error"):
                    return  # the stream just stops: the client cannot tell a failure from an answer
                yield _frame({"type": "error", "error": "LLM generation failed"})
                resource.frames += 1
                return
            if (time.perf_counter() - started > timings.stream_timeout_s
                    and not api.has_defect("no-stream-timeout")):
                yield _frame({"type": "error", "error": "stream timeout"})
                resource.frames += 1
                completed = True
                return
            await asyncio.sleep(llm.get("token_delay_s") or timings.token_delay_s)
            yield _frame({"type": "token", "content": tok})
            resource.frames += 1
        await breaker.record_success()
        completed = True
        if not api.has_defect("stream-missing-done"):
            yield _frame({"type": "done", "tokens": len(tokens),
                          "latency_ms": round((time.perf_counter() - started) * 1000, 3)})
            resource.frames += 1
    finally:
        release_stream(api, resource, disconnected=not completed)


def release_stream(api: RagApi, resource: StreamResources, disconnected: bool) -> None:
    """Give back what one stream took (or, under a defect switch, forget to)."""
    if disconnected and resource.frames == 0 and api.has_defect("cleanup-skipped-before-first-event"):
        return  # the sse-starlette #156 trap: a stream that never sent a frame is never cleaned
    api.streams.pop(resource.stream_id, None)
    if not api.has_defect("stream-leaks-fd"):
        resource.close_fd()
    if disconnected and api.has_defect("stream-keeps-memory"):
        api.retained.append(bytearray(api.cfg.leak_kb * 1024))
    if disconnected and api.has_defect("stream-leaks-task"):
        task = asyncio.get_running_loop().create_task(_orphan_watcher(resource.stream_id))
        api.orphans.append(task)
    if api.has_defect("stream-unawaited-coroutine"):
        _audit_stream(resource.stream_id)  # type: ignore[unused-coroutine]  # the defect: never awaited
    resource.buffer = None
    api.streams_closed += 1


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(api: RagApi = Depends(rag_api)):
    return f"# TYPE xnai_streams_closed_total counter\nxnai_streams_closed_total {api.streams_closed}\n"
