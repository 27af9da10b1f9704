"""The testbed's RAG API: the XNAi contract's routes on FastAPI/uvicorn.

Routes (all under ``/xnai/api/v1``): ``GET /health`` (health.py), ``POST /query`` (queries.py),
``POST /stream`` (SSE, streams.py), ``GET /docs/search`` (search.py); ``/metrics`` at the root
(streams.py); with ``--debug-endpoints`` the testbed's control routes (debug.py).  Every answer carries
``X-Request-ID: req_<uuid>``; errors have the contract's body (errors.py).  What the routes share is one
:class:`~testbed.rag_api.context.RagApi`; its clients are opened for as long as the app serves (store.py).
"""

from __future__ import annotations

import os
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from testbed.config import TestbedConfig

from . import debug, errors, health, queries, search, store, streams
from .context import RagApi
from .health import VERSION


def create_app(config: TestbedConfig | None = None) -> FastAPI:
    cfg = config if config is not None else TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
    api = RagApi(cfg)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        async with store.clients(api):
            yield

    app = FastAPI(title="XNAi RAG API (testbed)", version=VERSION, lifespan=lifespan)
    app.state.api = api
    errors.install(app, cfg)
    for router in (health.router, queries.router, streams.router, search.router):
        app.include_router(router)
    if cfg.debug_endpoints:
        app.include_router(debug.router)
    return app
