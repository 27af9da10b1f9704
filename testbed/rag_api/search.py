"""``GET /docs/search``: the corpus searched, best match first."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Query

from xnai_contract import API_PREFIX

from .context import RagApi, rag_api

router = APIRouter(prefix=API_PREFIX)


@router.get("/docs/search")
async def docs_search(query: str = Query(min_length=1, max_length=500), limit: int = Query(5, ge=1, le=50),
                      api: RagApi = Depends(rag_api)):
    hits = api.corpus.search(query, limit)
    if api.has_defect("docs-search-slow"):
        await asyncio.sleep(0.4)  # e.g. the index re-read for every search
    if api.has_defect("docs-search-misranks"):
        hits = list(reversed(hits))
    return {
        "query": query,
        "results": [{"id": d.id, "name": d.name, "description": d.description, "links": [d.link],
                     "score": s} for d, s in hits],
        "total": len(hits),
    }
