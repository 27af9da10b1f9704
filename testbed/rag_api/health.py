"""``GET /health``: the API's status (healthy while Redis answers and every breaker is closed, else
degraded), its memory, and its components as the stack reports them."""

from __future__ import annotations

import asyncio

import psutil
from fastapi import APIRouter, Depends

from xnai_contract import API_PREFIX

from .context import RagApi, rag_api
from .store import redis_alive

VERSION = "testbed-0.1"
router = APIRouter(prefix=API_PREFIX)


@router.get("/health")
async def health(api: RagApi = Depends(rag_api)):
    if api.has_defect("slow-health"):
        await asyncio.sleep(0.6)
    redis_ok = await redis_alive(api)
    breakers_ok = True
    if redis_ok:
        for b in api.breakers.values():
            breakers_ok = breakers_ok and await b.is_healthy()
    status = "healthy" if redis_ok and breakers_ok else "degraded"
    tier = 1 if status == "healthy" else 2
    if api.has_defect("health-tier-zero-based"):
        tier -= 1
    memory_gb = round(psutil.Process().memory_info().rss / 2**30, 4)
    if api.has_defect("health-memory-zero"):
        memory_gb = 0
    if api.has_defect("health-breakers-unhealthy-while-closed"):
        breakers_ok = False  # the component only: the status above stays as the breakers make it
    return {
        "status": status,
        "version": VERSION,
        "memory_gb": memory_gb,
        "vectorstore_loaded": bool(api.corpus.docs),
        "components": {
            "embeddings": True,
            "vectorstore": bool(api.corpus.docs),
            "llm": True,
            "circuit_breakers_healthy": breakers_ok,
            "health_memory": True,
            "health_redis": redis_ok,
            "degradation_tier": tier,
            "tier_name": "full" if tier == 1 else "degraded",
        },
    }
