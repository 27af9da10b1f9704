"""The testbed-only control routes (``--debug-endpoints``; a real stack has none): what the open
streams hold (``GET /_debug/streams``), a breaker taken out of the call path (``POST /_debug/breakers``),
the stand-in model's behaviour (``POST /_debug/llm``)."""

from __future__ import annotations

import asyncio
import contextlib
import os

import psutil
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from xnai_contract import API_PREFIX

from .context import RagApi, rag_api

router = APIRouter(prefix=API_PREFIX + "/_debug")


class BreakerControl(BaseModel):
    name: str = "rag_api"
    bypass: bool


class LLMControl(BaseModel):
    # crash: generation raises an error no handler of the API expects (a bug), so its generic handler answers.
    mode: str = Field(default="ok", pattern="^(ok|fail|slow|crash)$")
    token_delay_s: float | None = Field(default=None, ge=0, le=10)
    fail_after_tokens: int = Field(default=0, ge=0, le=2048)  # streams send this many tokens before failing


def descriptor_figures(api: RagApi) -> dict:
    """Descriptors by kind: files, and sockets split into inbound, Redis pool and other."""
    cfg = api.cfg
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


@router.get("/streams")
async def debug_streams(api: RagApi = Depends(rag_api)):
    tasks: dict[str, int] = {}
    for task in asyncio.all_tasks():
        coro = task.get_coro()
        name = getattr(coro, "__qualname__", type(coro).__name__)
        tasks[name] = tasks.get(name, 0) + 1
    return {
        "open_streams": len(api.streams),
        "streams": [r.describe() for r in api.streams.values()],
        "task_count": sum(tasks.values()),
        "tasks": tasks,
        "retained_bytes": sum(len(b) for b in api.retained),
        "streams_closed": api.streams_closed,
        **descriptor_figures(api),
    }


@router.post("/breakers")
async def debug_breakers(control: BreakerControl, api: RagApi = Depends(rag_api)):
    """Takes a breaker out of the call path (``bypass``) or puts it back: the baseline of the
    breaker-overhead measurement."""
    breaker = api.breakers.get(control.name)
    if breaker is None:
        return JSONResponse({"error": f"no breaker {control.name}"}, status_code=404)
    breaker.bypass = control.bypass
    return {"name": control.name, "bypass": breaker.bypass}


@router.post("/llm")
async def debug_llm(control: LLMControl, api: RagApi = Depends(rag_api)):
    api.llm.update(mode=control.mode, token_delay_s=control.token_delay_s,
                   fail_after_tokens=control.fail_after_tokens)
    return dict(api.llm)
