"""The testbed's RAG API: the XNAi contract's routes on FastAPI/uvicorn.

Routes (all under ``/xnai/api/v1``): ``GET /health``, ``POST /query``,
``POST /stream`` (SSE), ``GET /docs/search``; plus ``/metrics`` at the root.
Every response carries ``X-Request-ID: req_<uuid>``; validation errors are
400 with the contract's error body.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import anyio
import psutil
import redis.asyncio as aioredis
from fastapi import Body, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from testbed.config import TestbedConfig
from xnai_contract import QUERY_PARAMETER_RANGES as RANGES

from .breaker import CircuitOpenError, RedisCircuitBreaker
from .rag import Corpus, answer_tokens

PREFIX = "/xnai/api/v1"
VERSION = "testbed-0.1"
QUERY_STREAM = "xnai_queries"
HEALTH_KEY = "xnai_health_check"
REDIS_POOL_SIZE = 8


class BreakerControl(BaseModel):
    name: str = "rag_api"
    bypass: bool


class DownstreamError(Exception):
    """The embeddings service failed and the cascade defect lets it fail the whole query."""


class LLMControl(BaseModel):
    # crash: generation raises an error no handler of the API expects (a bug), so its generic handler answers.
    mode: str = Field(default="ok", pattern="^(ok|fail|slow|crash)$")
    token_delay_s: float | None = Field(default=None, ge=0, le=10)
    fail_after_tokens: int = Field(default=0, ge=0, le=2048)  # streams send this many tokens before failing


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


async def _orphan_watcher(stream_id: str) -> None:  # noqa: ARG001 - the stream that left it, for a debugger
    """What the stream-leaks-task defect leaves behind: a task per disconnected stream, waiting forever."""
    await asyncio.Event().wait()


async def _audit_stream(stream_id: str) -> None:
    """Called without await by the stream-unawaited-coroutine defect."""


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    use_rag: bool = True
    max_tokens: int = Field(default=512, ge=RANGES["max_tokens"][0], le=RANGES["max_tokens"][1])
    temperature: float = Field(default=0.7, ge=RANGES["temperature"][0], le=RANGES["temperature"][1])
    top_p: float = Field(default=0.95, ge=RANGES["top_p"][0], le=RANGES["top_p"][1])


class GuardedRedis:
    """The API's Redis client with a short memory of failure: once a call fails, calls fail at once for
    ``cooloff_s`` instead of each waiting out its timeout, so a silent Redis costs one timeout per
    cooloff, not one per call (the stack's degraded mode: answer without cache)."""

    GUARDED = frozenset({"get", "set", "delete", "xadd", "execute_command", "expire", "ttl", "exists"})

    def __init__(self, client, cooloff_s: float, memory: dict | None = None):
        # ``memory`` is shared by every client of the same Redis: one failure makes them all fail fast.
        self._client, self._cooloff_s = client, cooloff_s
        self._memory = memory if memory is not None else {"down_until": 0.0}

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if name not in self.GUARDED:
            return attr

        async def call(*args, **kwargs):
            if time.monotonic() < self._memory["down_until"]:
                raise aioredis.ConnectionError("Redis did not answer a moment ago; not waiting again yet")
            try:
                return await attr(*args, **kwargs)
            except Exception:
                self._memory["down_until"] = time.monotonic() + self._cooloff_s
                raise

        return call


def _llm_traceback() -> str:
    """What the stack-trace-in-error-body defect leaks: the formatted traceback of the LLM's failure."""
    import traceback  # noqa: PLC0415

    try:
        raise RuntimeError("llama_cpp: failed to decode batch (n_ctx=2048)")
    except RuntimeError:
        return traceback.format_exc()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def error_body(request: Request, status: int, code: str, message: str, category: str,
               details: dict | None = None, suggestion: str = "") -> dict:
    return {
        "error_code": code,
        "message": message,
        "category": category,
        "http_status": status,
        "timestamp": _now_iso(),
        "details": details or {},
        "recovery_suggestion": suggestion,
        "request_id": getattr(request.state, "request_id", None),
    }


def create_app(config: TestbedConfig | None = None) -> FastAPI:
    cfg = config if config is not None else TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
    timings = cfg.timings
    corpus = Corpus()
    state: dict = {"retained": [], "orphans": [], "stream_buffer_bytes": 64 * 1024}
    # The LLM stand-in's behaviour, set by /_debug/llm.
    llm: dict = {"mode": "ok", "token_delay_s": None, "fail_after_tokens": 0}

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        # A fixed pool, filled at start: the process's descriptors stay constant while it serves,
        # so a leak is a leak and not a pool growing.
        # Every Redis call is bounded; the redis-down-hangs defect removes the bounds.
        bound = None if cfg.has_defect("redis-down-hangs") else timings.check_timeout_s
        # One immediate retry: a connection that a Redis fault closed is reopened at once.  redis-py's default
        # (10 retries, pauses growing to 1 s) holds a call for seconds after a refusal, and the breaker's lock
        # with it, then writes a state the call held from before the fault ended.
        retry = Retry(NoBackoff(), 1)
        pool = aioredis.BlockingConnectionPool(
            host="127.0.0.1", port=cfg.port("redis_proxy"), password=cfg.redis_password,  # via the fault proxy
            socket_timeout=bound, socket_connect_timeout=bound,
            max_connections=REDIS_POOL_SIZE, timeout=bound, retry=retry,
        )
        redis_down = {"down_until": 0.0}  # one memory of a Redis failure for every client below
        state["redis"] = GuardedRedis(aioredis.Redis(connection_pool=pool), cooloff_s=2 * timings.check_timeout_s,
                                      memory=redis_down)
        with contextlib.suppress(Exception):
            await asyncio.gather(*(state["redis"].execute_command("CLIENT", "SETNAME", f"rag_api_{i}")
                                   for i in range(REDIS_POOL_SIZE)))
        # Each breaker's state goes over a connection of its own (through the fault proxy, so a Redis fault
        # reaches it like every other call): the breaker's lock already lets one state read or write out at
        # a time, and a pool's hand-out per command cost more than the round trip itself on a small machine.
        breaker_clients = []
        for _spec in timings.breakers:
            client = aioredis.Redis(host="127.0.0.1", port=cfg.port("redis_proxy"), password=cfg.redis_password,
                                    socket_timeout=bound, socket_connect_timeout=bound, single_connection_client=True,
                                    retry=retry)
            breaker_clients.append(client)
        with contextlib.suppress(Exception):  # opened now: the process's descriptors stay constant while it serves
            await asyncio.gather(*(c.execute_command("CLIENT", "SETNAME", f"rag_api_breaker_{i}")
                                   for i, c in enumerate(breaker_clients)))
        state["breakers"] = {
            spec.name: RedisCircuitBreaker(spec, GuardedRedis(client, cooloff_s=2 * timings.check_timeout_s,
                                                              memory=redis_down),
                                           timings.breaker_ttl_s, defects=tuple(cfg.defects))
            for spec, client in zip(timings.breakers, breaker_clients, strict=True)
        }
        # The downstream embeddings service; one connection per call (no idle pool to skew descriptor counts).
        state["http"] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True),
            timeout=aiohttp.ClientTimeout(total=timings.check_timeout_s))
        if cfg.has_defect("breaker-state-lost-on-restart"):
            with contextlib.suppress(Exception):
                for name in state["breakers"]:
                    await state["redis"].delete(f"circuit_breaker:{name}")
        yield
        await state["http"].close()
        await state["redis"].aclose()
        for client in breaker_clients:
            await client.aclose()

    app = FastAPI(title="XNAi RAG API (testbed)", version=VERSION, lifespan=lifespan)

    # ------------------------------------------------------ middleware --
    class RequestId:
        """X-Request-ID on every answer; a plain ASGI middleware, so handlers still see their client
        go away (``request.is_disconnected()`` does not work through ``@app.middleware("http")``)."""

        def __init__(self, inner):
            self.inner = inner

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
                    if not cfg.has_defect("no-request-id"):
                        MutableHeaders(scope=message).append("X-Request-ID", rid)
                await send(message)

            try:
                await self.inner(scope, receive, send_with_id)
            except Exception as exc:
                # An error no handler expected: answered here, inside this middleware, so the answer keeps
                # its X-Request-ID (Starlette's own last-resort handler sits outside every middleware).
                if started or cfg.has_defect("internal-error-without-request-id"):
                    raise
                response = internal_error(Request(scope), exc)
                await response(scope, receive, send_with_id)

    app.add_middleware(RequestId)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in exc.errors()
        ]
        status = 500 if cfg.has_defect("validation-as-500") else 400
        return JSONResponse(
            error_body(request, status, "VALIDATION_ERROR", "Request validation failed", "validation",
                       {"errors": errors}, "Check the request body against the API schema."),
            status_code=status,
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if cfg.has_defect("routing-errors-bare"):  # the framework's own {"detail": ...} body, no contract fields
            return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code)
        code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, f"HTTP_{exc.status_code}")
        return JSONResponse(error_body(request, exc.status_code, code, str(exc.detail), "client"),
                            status_code=exc.status_code)

    def internal_error(request: Request, exc: Exception) -> JSONResponse:
        import traceback  # noqa: PLC0415

        print(f"internal error in {request.url.path} ({request.state.request_id}):\n"
              + "".join(traceback.format_exception(exc)), flush=True)
        return JSONResponse(
            error_body(request, 500, "INTERNAL_ERROR", "Internal server error", "server",
                       suggestion="Retry later; report the request_id if it persists."),
            status_code=500,
        )

    # What Starlette's outermost middleware answers an unexpected error with (the answer of the defect
    # internal-error-without-request-id: past the request-id middleware, so without its header).
    app.add_exception_handler(Exception, internal_error)

    # ---------------------------------------------------------- helpers --
    async def redis_alive() -> bool:
        if cfg.has_defect("health-ignores-redis"):
            return True
        try:
            await state["redis"].set(HEALTH_KEY, _now_iso(), ex=10)
            return True
        except Exception:  # noqa: BLE001
            return False

    def cache_key(req: QueryRequest) -> str:
        raw = json.dumps([req.query, req.use_rag, req.max_tokens], separators=(",", ":"))
        return "query:" + hashlib.sha256(raw.encode()).hexdigest()[:32]

    async def record_query(request: Request, req: QueryRequest, endpoint: str) -> None:
        if cfg.has_defect("queries-not-recorded"):
            return
        try:
            await state["redis"].xadd(
                QUERY_STREAM,
                {"txn_id": request.state.request_id, "endpoint": endpoint,
                 "query_hash": cache_key(req).split(":", 1)[1], "ts": str(time.time())},
                maxlen=10000, approximate=True,
            )
        except Exception:  # noqa: BLE001, S110 - the record is best effort, as in the stack
            pass

    async def retrieve(req: QueryRequest):
        """The query's sources: embed it with the downstream service (behind the ``embeddings``
        breaker), then search the corpus.  When the service fails or its breaker is open, the
        answer goes without retrieval (degraded, no sources) instead of failing."""
        if not req.use_rag and not cfg.has_defect("use-rag-ignored"):
            return []
        breaker = state["breakers"]["embeddings"]
        try:
            await breaker.before_call()
        except CircuitOpenError:
            return []
        url = f"http://127.0.0.1:{cfg.port('embeddings')}/embed"
        try:
            async with state["http"].post(url, json={"text": req.query}) as resp:
                resp.raise_for_status()
                await resp.json()
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            await breaker.record_failure()
            if cfg.has_defect("downstream-failure-cascades"):
                raise DownstreamError(str(err)) from err
            return []
        await breaker.record_success()
        sources = [doc for doc, _score in corpus.search(req.query)]
        if cfg.has_defect("wrong-sources"):  # cites the documents that did not match
            sources = [doc for doc in corpus.docs if doc not in sources][:max(1, len(sources))]
        return sources

    def token_count(req: QueryRequest) -> int:
        if cfg.has_defect("max-tokens-ignored"):
            return timings.tokens_per_answer
        return min(req.max_tokens, timings.tokens_per_answer)

    async def cache_get(key: str):
        if cfg.has_defect("cache-never-hit"):
            return None
        breaker = state["breakers"]["redis_cache"]
        try:
            await breaker.before_call()
        except CircuitOpenError:
            if not (cfg.has_defect("cache-breaker-ignored") or cfg.has_defect("cache-read-past-open-breaker")):
                return None
        try:
            raw = await state["redis"].get(key)
        except Exception:  # noqa: BLE001
            await breaker.record_failure()
            return None
        await breaker.record_success()
        return json.loads(raw) if raw else None

    async def cache_put(key: str, value: dict) -> None:
        if cfg.has_defect("cache-never-written"):
            return
        breaker = state["breakers"]["redis_cache"]
        try:
            try:
                await breaker.before_call()
            except CircuitOpenError:
                if not cfg.has_defect("cache-breaker-ignored"):
                    raise
            await state["redis"].set(key, json.dumps(value), ex=3600)
        except CircuitOpenError:
            return
        except Exception:  # noqa: BLE001
            await breaker.record_failure()
            return
        await breaker.record_success()

    async def admit(req: QueryRequest, request: Request):
        """Through the rag_api breaker: (breaker, sources, tokens), or the 503 "circuit open" response."""
        breaker = state["breakers"]["rag_api"]
        try:
            await breaker.before_call()
        except CircuitOpenError:
            return circuit_open_response(request)
        try:
            sources = await retrieve(req)
        except DownstreamError:
            await breaker.record_failure()  # the defect: a downstream failure counted as the LLM's
            return JSONResponse(error_body(request, 500, "RETRIEVAL_ERROR", "Retrieval failed", "llm"),
                                status_code=500)
        return breaker, sources, answer_tokens(req.query, sources, token_count(req))

    def circuit_open_response(request: Request) -> JSONResponse:
        body = {"error": "LLM service unavailable (circuit open)", "request_id": request.state.request_id}
        return JSONResponse(body, status_code=503)

    # ----------------------------------------------------------- routes --
    @app.get(PREFIX + "/health")
    async def health():
        if cfg.has_defect("slow-health"):
            await asyncio.sleep(0.6)
        redis_ok = await redis_alive()
        breakers_ok = True
        if redis_ok:
            for b in state["breakers"].values():
                breakers_ok = breakers_ok and await b.is_healthy()
        status = "healthy" if redis_ok and breakers_ok else "degraded"
        tier = 1 if status == "healthy" else 2
        if cfg.has_defect("health-tier-zero-based"):
            tier -= 1
        memory_gb = round(psutil.Process().memory_info().rss / 2**30, 4)
        if cfg.has_defect("health-memory-zero"):
            memory_gb = 0
        if cfg.has_defect("health-breakers-unhealthy-while-closed"):
            breakers_ok = False  # the component only: the status above stays as the breakers make it
        return {
            "status": status,
            "version": VERSION,
            "memory_gb": memory_gb,
            "vectorstore_loaded": bool(corpus.docs),
            "components": {
                "embeddings": True,
                "vectorstore": bool(corpus.docs),
                "llm": True,
                "circuit_breakers_healthy": breakers_ok,
                "health_memory": True,
                "health_redis": redis_ok,
                "degradation_tier": tier,
                "tier_name": "full" if tier == 1 else "degraded",
            },
        }

    async def generate(seconds: float, request: Request) -> None:
        """The LLM's time for one answer; given up when the client has gone (a gateway timeout, a
        cancelled request), so no generation outlives the request that wanted it."""
        deadline = time.perf_counter() + seconds
        while (left := deadline - time.perf_counter()) > 0:
            await asyncio.sleep(min(left, 0.5))
            if left > 0.5 and await request.is_disconnected():
                return  # the answer is finished early and goes nowhere; the breaker still sees the call end

    async def query_request(body: dict = Body()) -> QueryRequest:
        """The request body read by the contract's schema; a violation is the validation error (the 400 above)."""
        if cfg.has_defect("request-bounds-off-by-one"):
            # Every range one step up: its low end is refused, one step past its high end is answered.
            for name, (low, _) in RANGES.items():
                step = 1 if isinstance(low, int) else 0.01
                if isinstance(body.get(name), int | float):
                    if body[name] == low:
                        raise RequestValidationError([{"loc": ("body", name), "msg": f"must be above {low}",
                                                       "type": "greater_than"}])
                    body[name] = round(body[name] - step, 6)
        try:
            return QueryRequest.model_validate(body)
        except ValidationError as err:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in err.errors()]) from None

    @app.post(PREFIX + "/query")
    async def query(request: Request, req: QueryRequest = Depends(query_request)):
        started = time.perf_counter()
        await record_query(request, req, "query")
        key = cache_key(req)
        cached = await cache_get(key)
        if cached is not None:
            cached["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
            return cached
        admitted = await admit(req, request)
        if isinstance(admitted, JSONResponse):
            return admitted
        breaker, sources, tokens = admitted
        if llm["mode"] == "crash":
            raise RuntimeError("stand-in model crashed: an error the API's handlers do not expect")
        if llm["mode"] == "fail":
            await breaker.record_failure()
            if cfg.has_defect("llm-error-body-bare"):  # the exception's text as FastAPI's {"detail": ...}
                return JSONResponse({"detail": "LLM generation failed"}, status_code=500)
            body = error_body(request, 500, "LLM_ERROR", "LLM generation failed", "llm",
                              suggestion="Retry later; the circuit breaker opens after repeated failures.")
            if cfg.has_defect("stack-trace-in-error-body"):
                body["details"]["traceback"] = _llm_traceback()
            return JSONResponse(body, status_code=500)
        generation_s = (llm.get("token_delay_s") or timings.token_delay_s) * len(tokens)
        if cfg.has_defect("query-slow-path"):
            generation_s *= 1.3  # a regression: 30 % more per answer
        if cfg.has_defect("query-over-target"):
            generation_s += 0.6  # every answer over the seed's 500 ms p99 target
        if cfg.has_defect("memory-grows-under-load"):
            state["retained"].append(bytearray(32 * 1024))  # kept forever: memory grows with every query
        if cfg.has_defect("query-concurrency-capped"):
            # A worker pool sized for a few users: answers queue for one of 4 slots.
            async with state.setdefault("generation_slots", asyncio.Semaphore(4)):
                await generate(generation_s, request)
        else:
            await generate(generation_s, request)
        await breaker.record_success()
        duration_ms = (time.perf_counter() - started) * 1000
        body = {
            "response": "".join(tokens),
            "sources": [d.id for d in sources],
            "tokens_generated": len(tokens),
            "duration_ms": round(duration_ms, 3),
            "token_rate_tps": round(
                len(tokens) / max(duration_ms / (1 if cfg.has_defect("token-rate-per-ms") else 1000), 1e-9), 2
            ),
        }
        await cache_put(key, body)
        return body

    @app.post(PREFIX + "/stream")
    async def stream(request: Request, req: QueryRequest = Depends(query_request)):
        await record_query(request, req, "stream")
        admitted = await admit(req, request)
        if isinstance(admitted, JSONResponse):
            return admitted
        breaker, sources, tokens = admitted
        stream_id = request.state.request_id
        return ClosingStreamingResponse(stream_frames(stream_id, req, sources, tokens, breaker),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def stream_frames(stream_id, req, sources, tokens, breaker):
        """One answer as SSE frames.  Its resources (a context buffer, a file descriptor) are
        taken when the stream starts and given back on every way out: completion, client
        disconnect before or after the first frame, server-side timeout."""
        streams = state.setdefault("streams", {})
        resource = StreamResources(stream_id, state["stream_buffer_bytes"])
        streams[stream_id] = resource
        started = time.perf_counter()
        completed = False  # True once the server ended the stream itself (done, timeout or error frame)
        try:
            await asyncio.sleep(timings.first_event_delay_s)  # retrieval
            if req.use_rag or cfg.has_defect("use-rag-ignored"):
                cited = sources[:1] if cfg.has_defect("stream-cites-fewer-sources") else sources
                yield _frame({"type": "sources", "sources": [d.id for d in cited]})
                resource.frames += 1
            for index, tok in enumerate(tokens):
                if llm["mode"] == "fail" and index >= llm["fail_after_tokens"]:
                    await breaker.record_failure()
                    completed = True
                    if cfg.has_defect("stream-ends-silently-on-error"):
                        return  # the stream just stops: the client cannot tell a failure from an answer
                    yield _frame({"type": "error", "error": "LLM generation failed"})
                    resource.frames += 1
                    return
                if (time.perf_counter() - started > timings.stream_timeout_s
                        and not cfg.has_defect("no-stream-timeout")):
                    yield _frame({"type": "error", "error": "stream timeout"})
                    resource.frames += 1
                    completed = True
                    return
                await asyncio.sleep(llm.get("token_delay_s") or timings.token_delay_s)
                yield _frame({"type": "token", "content": tok})
                resource.frames += 1
            await breaker.record_success()
            completed = True
            if not cfg.has_defect("stream-missing-done"):
                yield _frame({"type": "done", "tokens": len(tokens),
                              "latency_ms": round((time.perf_counter() - started) * 1000, 3)})
                resource.frames += 1
        finally:
            release_stream(resource, disconnected=not completed)

    def descriptor_figures() -> dict:
        """Descriptors by kind: files, and sockets split into inbound, Redis pool and other."""
        links = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the directory's own descriptor is gone by now
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
        fds = links
        sockets = sum(1 for link in links if link.startswith("socket:"))
        conns = psutil.Process().net_connections(kind="tcp")
        inbound = sum(1 for c in conns if c.laddr and c.laddr.port == cfg.port("rag_api") and c.raddr)
        to_redis = sum(1 for c in conns if c.raddr and c.raddr.port == cfg.port("redis_proxy"))
        return {"fds": len(fds), "file_fds": len(fds) - sockets, "sockets": sockets,
                "inbound_connections": inbound, "redis_connections": to_redis,
                "other_sockets": sockets - inbound - to_redis}

    def release_stream(resource: StreamResources, disconnected: bool) -> None:
        """Give back what one stream took (or, under a defect switch, forget to)."""
        if disconnected and resource.frames == 0 and cfg.has_defect("cleanup-skipped-before-first-event"):
            return  # the sse-starlette #156 trap: a stream that never sent a frame is never cleaned
        state["streams"].pop(resource.stream_id, None)
        if not cfg.has_defect("stream-leaks-fd"):
            resource.close_fd()
        if disconnected and cfg.has_defect("stream-keeps-memory"):
            state["retained"].append(bytearray(cfg.leak_kb * 1024))
        if disconnected and cfg.has_defect("stream-leaks-task"):
            task = asyncio.get_running_loop().create_task(_orphan_watcher(resource.stream_id))
            state["orphans"].append(task)
        if cfg.has_defect("stream-unawaited-coroutine"):
            _audit_stream(resource.stream_id)  # type: ignore[unused-coroutine]  # the defect: never awaited
        resource.buffer = None
        state["streams_closed"] = state.get("streams_closed", 0) + 1

    # ------------------------------------------------------------ debug --
    if cfg.debug_endpoints:
        @app.get(PREFIX + "/_debug/streams")
        async def debug_streams():
            tasks: dict[str, int] = {}
            for task in asyncio.all_tasks():
                coro = task.get_coro()
                name = getattr(coro, "__qualname__", type(coro).__name__)
                tasks[name] = tasks.get(name, 0) + 1
            streams = state.get("streams", {})
            return {
                "open_streams": len(streams),
                "streams": [r.describe() for r in streams.values()],
                "task_count": sum(tasks.values()),
                "tasks": tasks,
                "retained_bytes": sum(len(b) for b in state["retained"]),
                "streams_closed": state.get("streams_closed", 0),
                **descriptor_figures(),
            }

        @app.post(PREFIX + "/_debug/breakers")
        async def debug_breakers(control: BreakerControl):
            """Takes a breaker out of the call path (``bypass``) or puts it back: the baseline of the
            breaker-overhead measurement."""
            breaker = state["breakers"].get(control.name)
            if breaker is None:
                return JSONResponse({"error": f"no breaker {control.name}"}, status_code=404)
            breaker.bypass = control.bypass
            return {"name": control.name, "bypass": breaker.bypass}

        @app.post(PREFIX + "/_debug/llm")
        async def debug_llm(control: LLMControl):
            llm.update(mode=control.mode, token_delay_s=control.token_delay_s,
                       fail_after_tokens=control.fail_after_tokens)
            return dict(llm)

    @app.get(PREFIX + "/docs/search")
    async def docs_search(query: str = Query(min_length=1, max_length=500), limit: int = Query(5, ge=1, le=50)):
        hits = corpus.search(query, limit)
        if cfg.has_defect("docs-search-slow"):
            await asyncio.sleep(0.4)  # e.g. the index re-read for every search
        if cfg.has_defect("docs-search-misranks"):
            hits = list(reversed(hits))
        return {
            "query": query,
            "results": [{"id": d.id, "name": d.name, "description": d.description, "links": [d.link],
                         "score": s} for d, s in hits],
            "total": len(hits),
        }

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics():
        closed = state.get("streams_closed", 0)
        return f"# TYPE xnai_streams_closed_total counter\nxnai_streams_closed_total {closed}\n"

    return app


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
