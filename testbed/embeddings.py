"""The testbed's downstream service: an embeddings server the RAG API calls for retrieval.

It exists so the KG-2 cascade scenario has a real service B behind its own
breaker (``embeddings``): service A (the RAG API's query path, behind the
``rag_api`` breaker) depends on B.  When B fails, B's breaker opens and A
answers without retrieval (degraded, no sources) instead of failing.

Routes: ``GET /health``, ``POST /embed`` ``{"text": str}`` -> ``{"vector": [float], "dims": int}``.
The vector is a deterministic hash projection of the words, enough to be a
real computation and a real round trip.
"""

from __future__ import annotations

import hashlib
import math

from fastapi import FastAPI
from pydantic import BaseModel, Field

DIMS = 32


class EmbedRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


def embed(text: str, dims: int = DIMS) -> list[float]:
    vector = [0.0] * dims
    for word in text.lower().split():
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[digest[0] % dims] += 1.0 if digest[1] % 2 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [round(v / norm, 6) for v in vector]


def create_app() -> FastAPI:
    app = FastAPI(title="XNAi testbed embeddings")

    @app.get("/health")
    async def health():
        return {"status": "healthy", "dims": DIMS}

    @app.post("/embed")
    async def embed_route(req: EmbedRequest):
        return {"vector": embed(req.text), "dims": DIMS}

    return app
