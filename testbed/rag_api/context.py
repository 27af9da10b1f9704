"""What the RAG API's routes share: one :class:`RagApi` per app, handed to each route by ``Depends(rag_api)``.

The lifespan (``app.py``) opens its clients (Redis, the breakers, the embeddings session); the routes
live in one module per route family (``health``, ``queries``, ``streams``, ``search``, ``debug``) and
ask this object for everything else: the config and its defect switches, the corpus, the stand-in
model's behaviour, the open streams.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastapi import Request

from testbed.config import TestbedConfig

from .rag import Corpus

if TYPE_CHECKING:
    import aiohttp

    from .breaker import RedisCircuitBreaker
    from .store import GuardedRedis
    from .streams import StreamResources


def _healthy_model() -> dict:
    return {"mode": "ok", "token_delay_s": None, "fail_after_tokens": 0}


@dataclass
class RagApi:
    cfg: TestbedConfig
    corpus: Corpus = field(default_factory=Corpus)
    # The LLM stand-in's behaviour, set by the /_debug/llm route (debug.LLMControl says what each field does).
    llm: dict = field(default_factory=_healthy_model)
    # Opened by the lifespan.
    redis: GuardedRedis = None  # type: ignore[assignment]
    breakers: dict[str, RedisCircuitBreaker] = field(default_factory=dict)
    http: aiohttp.ClientSession = None  # type: ignore[assignment]
    # The streams open now, and what their clean-up did.
    streams: dict[str, StreamResources] = field(default_factory=dict)
    streams_closed: int = 0
    stream_buffer_bytes: int = 64 * 1024
    # What defect switches leave behind: memory kept, tasks never ended, a pool too small.
    retained: list[bytearray] = field(default_factory=list)
    orphans: list[asyncio.Task[Any]] = field(default_factory=list)
    generation_slots: asyncio.Semaphore | None = None

    @property
    def timings(self):
        return self.cfg.timings

    def has_defect(self, name: str) -> bool:
        return self.cfg.has_defect(name)


def rag_api(request: Request) -> RagApi:
    """The app's RagApi (a FastAPI dependency)."""
    return request.app.state.api
