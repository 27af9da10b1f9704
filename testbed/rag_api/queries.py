"""``POST /query``: one answer, through the ``rag_api`` breaker, with retrieval behind the ``embeddings``
breaker and the answer cache behind ``redis_cache``; and what ``/stream`` shares with it (the request's
schema, admission, retrieval)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from fastapi import APIRouter, Body, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError

from xnai_contract import API_PREFIX
from xnai_contract import QUERY_PARAMETER_RANGES as RANGES

from .breaker import CircuitOpenError, RedisCircuitBreaker
from .context import RagApi, rag_api
from .errors import circuit_open_response, error_body, error_response, llm_traceback
from .rag import Document, answer_tokens
from .store import cache_get, cache_key, cache_put, record_query

router = APIRouter(prefix=API_PREFIX)


class QueryRequest(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    use_rag: bool = True
    max_tokens: int = Field(default=512, ge=RANGES["max_tokens"][0], le=RANGES["max_tokens"][1])
    temperature: float = Field(default=0.7, ge=RANGES["temperature"][0], le=RANGES["temperature"][1])
    top_p: float = Field(default=0.95, ge=RANGES["top_p"][0], le=RANGES["top_p"][1])


class DownstreamError(Exception):
    """The embeddings service failed and the cascade defect lets it fail the whole query."""


Admitted = tuple[RedisCircuitBreaker, list[Document], list[str]]


async def query_request(body: dict = Body(), api: RagApi = Depends(rag_api)) -> QueryRequest:
    """The request body read by the contract's schema; a violation is the validation error (errors.py's 400)."""
    if api.has_defect("request-bounds-off-by-one"):
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


async def retrieve(api: RagApi, req: QueryRequest) -> list[Document]:
    """The query's sources: embed it with the downstream service (behind the ``embeddings``
    breaker), then search the corpus.  When the service fails or its breaker is open, the
    answer goes without retrieval (degraded, no sources) instead of failing."""
    if not req.use_rag and not api.has_defect("use-rag-ignored"):
        return []
    breaker = api.breakers["embeddings"]
    try:
        await breaker.before_call()
    except CircuitOpenError:
        return []
    url = f"http://127.0.0.1:{api.cfg.port('embeddings')}/embed"
    try:
        async with api.http.post(url, json={"text": req.query}) as resp:
            resp.raise_for_status()
            await resp.json()
    except (TimeoutError, aiohttp.ClientError, ValueError) as err:
        await breaker.record_failure()
        if api.has_defect("downstream-failure-cascades"):
            raise DownstreamError(str(err)) from err
        return []
    await breaker.record_success()
    sources = [doc for doc, _score in api.corpus.search(req.query)]
    if api.has_defect("wrong-sources"):  # cites the documents that did not match
        sources = [doc for doc in api.corpus.docs if doc not in sources][:max(1, len(sources))]
    return sources


def token_count(api: RagApi, req: QueryRequest) -> int:
    if api.has_defect("max-tokens-ignored"):
        return api.timings.tokens_per_answer
    return min(req.max_tokens, api.timings.tokens_per_answer)


async def admit(api: RagApi, req: QueryRequest, request: Request) -> Admitted | JSONResponse:
    """Through the rag_api breaker: (breaker, sources, tokens), or the 503 "circuit open" response."""
    breaker = api.breakers["rag_api"]
    try:
        await breaker.before_call()
    except CircuitOpenError:
        return circuit_open_response(request)
    try:
        sources = await retrieve(api, req)
    except DownstreamError:
        await breaker.record_failure()  # the defect: a downstream failure counted as the LLM's
        return error_response(request, 500, "RETRIEVAL_ERROR", "Retrieval failed", "llm")
    return breaker, sources, answer_tokens(req.query, sources, token_count(api, req))


async def generate(seconds: float, request: Request) -> None:
    """The LLM's time for one answer; given up when the client has gone (a gateway timeout, a
    cancelled request), so no generation outlives the request that wanted it."""
    deadline = time.perf_counter() + seconds
    while (left := deadline - time.perf_counter()) > 0:
        await asyncio.sleep(min(left, 0.5))
        if left > 0.5 and await request.is_disconnected():
            return  # the answer is finished early and goes nowhere; the breaker still sees the call end


@router.post("/query")
async def query(request: Request, req: QueryRequest = Depends(query_request), api: RagApi = Depends(rag_api)):
    started = time.perf_counter()
    llm, timings = api.llm, api.timings
    await record_query(api, request, req, "query")
    key = cache_key(req)
    cached = await cache_get(api, key)
    if cached is not None:
        cached["duration_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return cached
    admitted = await admit(api, req, request)
    if isinstance(admitted, JSONResponse):
        return admitted
    breaker, sources, tokens = admitted
    if llm["mode"] == "crash":
        raise RuntimeError("stand-in model crashed: an error the API's handlers do not expect")
    if llm["mode"] == "fail":
        await breaker.record_failure()
        if api.has_defect("llm-error-body-bare"):  # the exception's text as FastAPI's {"detail": ...}
            return JSONResponse({"detail": "LLM generation failed"}, status_code=500)
        body = error_body(request, 500, "LLM_ERROR", "LLM generation failed", "llm",
                          suggestion="Retry later; the circuit breaker opens after repeated failures.")
        if api.has_defect("stack-trace-in-error-body"):
            body["details"]["traceback"] = llm_traceback()
        return JSONResponse(body, status_code=500)
    generation_s = (llm.get("token_delay_s") or timings.token_delay_s) * len(tokens)
    if api.has_defect("query-slow-path"):
        generation_s *= 1.3  # a regression: 30 % more per answer
    if api.has_defect("query-over-target"):
        generation_s += 0.6  # every answer over the seed's 500 ms p99 target
    if api.has_defect("memory-grows-under-load"):
        api.retained.append(bytearray(32 * 1024))  # kept forever: memory grows with every query
    if api.has_defect("query-concurrency-capped"):
        # A worker pool sized for a few users: answers queue for one of 4 slots.
        if api.generation_slots is None:
            api.generation_slots = asyncio.Semaphore(4)
        async with api.generation_slots:
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
            len(tokens) / max(duration_ms / (1 if api.has_defect("token-rate-per-ms") else 1000), 1e-9), 2
        ),
    }
    await cache_put(api, key, body)
    return body
