"""The testbed's task service: the part of Vikunja's API that XNAi uses, on PostgreSQL.

Routes (Vikunja's): ``GET /api/v1/info`` (open, liveness), and with a bearer
token ``GET|PUT /api/v1/projects``, ``GET|PUT /api/v1/projects/{id}/tasks``,
``GET /api/v1/tasks/all``, ``GET|POST|DELETE /api/v1/tasks/{id}``.  Tasks live
in the ``vikunja`` database, reached through the fault proxy.

Testbed additions: ``GET /health`` (200 when the database answers, else 503)
and ``POST /api/v1/_testbed/reconnect`` (the health monitor's
``reconnect_database`` action).  A lost database connection is re-opened on
the next request, as a pooled client does, unless the ``tasks-no-reconnect``
defect is on.
"""

from __future__ import annotations

import asyncio
import os
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from psycopg.rows import dict_row
from pydantic import BaseModel, Field

from testbed.config import TestbedConfig

VERSION = "v0.24.6-xnai-testbed"
SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
    id SERIAL PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
    created TIMESTAMPTZ NOT NULL DEFAULT now(), updated TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS tasks (
    id SERIAL PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
    title TEXT NOT NULL, description TEXT NOT NULL DEFAULT '', done BOOLEAN NOT NULL DEFAULT false,
    created TIMESTAMPTZ NOT NULL DEFAULT now(), updated TIMESTAMPTZ NOT NULL DEFAULT now());
"""


class ProjectIn(BaseModel):
    title: str = Field(min_length=1, max_length=250)
    description: str = ""


class TaskIn(BaseModel):
    title: str = Field(min_length=1, max_length=250)
    description: str = ""
    done: bool = False


class TaskUpdate(BaseModel):
    title: str | None = Field(default=None, min_length=1, max_length=250)
    description: str | None = None
    done: bool | None = None


class Unauthorized(Exception):
    pass


class DatabaseUnavailable(Exception):
    pass


def _iso(value) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


def _task(row: dict) -> dict:
    return {**row, "created": _iso(row["created"]), "updated": _iso(row["updated"])}


def create_app(cfg: TestbedConfig | None = None) -> FastAPI:
    if cfg is None:
        cfg = TestbedConfig.from_file(Path(os.environ["XNAI_TESTBED_CONFIG"]))
    dsn = (f"host=127.0.0.1 port={cfg.port('postgres_proxy')} dbname=vikunja user=vikunja "
           f"password={cfg.postgres_password} connect_timeout=3")
    db: dict = {"conn": None, "lock": asyncio.Lock(), "broken_once": False, "reconnects": 0}

    async def connect() -> psycopg.AsyncConnection[dict[str, Any]]:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row)
        await conn.execute(SCHEMA)
        return conn

    async def run(query: str, params: tuple = (), fetch: str = "all"):
        """One statement on the shared connection; a dead connection is replaced once (unless the defect)."""
        async with db["lock"]:
            for attempt in (1, 2):
                if db["conn"] is None or db["conn"].closed:
                    if db["broken_once"] and cfg.has_defect("tasks-no-reconnect"):
                        raise DatabaseUnavailable("connection lost and never re-opened")
                    try:
                        db["conn"] = await connect()
                        db["reconnects"] += 1
                    except psycopg.Error as err:
                        raise DatabaseUnavailable(str(err).splitlines()[0]) from err
                try:
                    cur = await db["conn"].execute(query, params)
                    if fetch == "one":
                        return await cur.fetchone()
                    if fetch == "none":
                        return None
                    return await cur.fetchall()
                except psycopg.OperationalError as err:
                    db["broken_once"] = True
                    await _close(db)
                    if attempt == 2 or cfg.has_defect("tasks-no-reconnect"):
                        raise DatabaseUnavailable(str(err).splitlines()[0]) from err
        return None

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        try:
            await run("SELECT 1", fetch="one")
        except DatabaseUnavailable:
            pass  # served as 503 until the database answers
        yield
        await _close(db)

    app = FastAPI(title="Vikunja-compatible task service (XNAi testbed)", lifespan=lifespan)

    def auth(authorization: str | None = Header(default=None)) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if cfg.has_defect("tasks-token-not-checked"):
            return
        if scheme.lower() != "bearer" or token != cfg.vikunja_token:
            raise Unauthorized()

    @app.exception_handler(Unauthorized)
    async def unauthorized(_request: Request, _exc: Unauthorized):
        return JSONResponse({"code": 11, "message": "missing, malformed, expired or otherwise invalid token provided"},
                            status_code=401)

    @app.exception_handler(DatabaseUnavailable)
    async def unavailable(_request: Request, exc: DatabaseUnavailable):
        if cfg.has_defect("tasks-db-down-500"):  # a lost database looks like a bug of the service
            return JSONResponse({"code": 500, "message": "Internal Server Error"}, status_code=500)
        return JSONResponse({"code": 1, "message": f"database unavailable: {exc}"}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError):
        return JSONResponse({"code": 2002, "message": "invalid data",
                             "invalid_fields": [".".join(map(str, e["loc"])) for e in exc.errors()]},
                            status_code=400)

    @app.get("/api/v1/info")
    async def info(authorization: str | None = Header(default=None)):
        if cfg.has_defect("tasks-info-needs-token"):
            auth(authorization)  # the open liveness route demands a token: probes without one see 401
        return {"version": VERSION, "frontend_url": "", "motd": "", "link_sharing_enabled": False,
                "registration_enabled": False, "task_attachments_enabled": False}

    @app.get("/health")
    async def health():
        await run("SELECT 1", fetch="one")
        return {"status": "healthy", "database": "ok", "reconnects": db["reconnects"]}

    @app.post("/api/v1/_testbed/reconnect")
    async def reconnect():
        """The health monitor's reconnect_database action: drop the connection and open a new one."""
        async with db["lock"]:
            await _close(db)
            db["broken_once"] = False
        await run("SELECT 1", fetch="one")
        return {"reconnected": True, "reconnects": db["reconnects"]}

    @app.get("/api/v1/projects", dependencies=[Depends(auth)])
    async def projects():
        rows = await run("SELECT id, title, description, created, updated FROM projects ORDER BY id")
        return [_task(r) for r in rows]

    @app.put("/api/v1/projects", dependencies=[Depends(auth)], status_code=201)
    async def create_project(project: ProjectIn):
        row = await run("INSERT INTO projects (title, description) VALUES (%s, %s) "
                        "RETURNING id, title, description, created, updated",
                        (project.title, project.description), fetch="one")
        return _task(row)

    async def _project_exists(project_id: int) -> bool:
        return bool(await run("SELECT 1 AS ok FROM projects WHERE id = %s", (project_id,), fetch="one"))

    @app.get("/api/v1/projects/{project_id}/tasks", dependencies=[Depends(auth)])
    async def project_tasks(project_id: int):
        if not await _project_exists(project_id):
            return JSONResponse({"code": 3001, "message": "The project does not exist."}, status_code=404)
        rows = await run("SELECT * FROM tasks WHERE project_id = %s ORDER BY id", (project_id,))
        return [_task(r) for r in rows]

    @app.put("/api/v1/projects/{project_id}/tasks", dependencies=[Depends(auth)], status_code=201)
    async def create_task(project_id: int, task: TaskIn):
        if not await _project_exists(project_id):
            return JSONResponse({"code": 3001, "message": "The project does not exist."}, status_code=404)
        target = project_id
        if cfg.has_defect("tasks-wrong-project"):
            first = await run("SELECT min(id) AS id FROM projects", fetch="one")
            target = first["id"]
        row = await run("INSERT INTO tasks (project_id, title, description, done) VALUES (%s, %s, %s, %s) "
                        "RETURNING *", (target, task.title, task.description, task.done), fetch="one")
        return _task(row)

    @app.get("/api/v1/tasks/all", dependencies=[Depends(auth)])
    async def all_tasks():
        if cfg.has_defect("tasks-all-first-project-only"):
            return [_task(r) for r in await run("SELECT * FROM tasks WHERE project_id = "
                                                "(SELECT min(id) FROM projects) ORDER BY id")]
        return [_task(r) for r in await run("SELECT * FROM tasks ORDER BY id")]

    @app.get("/api/v1/tasks/{task_id}", dependencies=[Depends(auth)])
    async def get_task(task_id: int):
        row = await run("SELECT * FROM tasks WHERE id = %s", (task_id,), fetch="one")
        if row is None:
            return JSONResponse({"code": 2001, "message": "The task does not exist."}, status_code=404)
        return _task(row)

    @app.post("/api/v1/tasks/{task_id}", dependencies=[Depends(auth)])
    async def update_task(task_id: int, update: TaskUpdate):
        fields = {k: v for k, v in update.model_dump().items() if v is not None}
        row = await run("SELECT * FROM tasks WHERE id = %s", (task_id,), fetch="one")
        if row is None:
            return JSONResponse({"code": 2001, "message": "The task does not exist."}, status_code=404)
        if fields:
            sets = ", ".join(f"{k} = %s" for k in fields)  # keys come from the model, not the client
            row = await run(f"UPDATE tasks SET {sets}, updated = now() WHERE id = %s RETURNING *",  # noqa: S608
                            (*fields.values(), task_id), fetch="one")
        return _task(row)

    @app.delete("/api/v1/tasks/{task_id}", dependencies=[Depends(auth)])
    async def delete_task(task_id: int):
        if cfg.has_defect("tasks-delete-ignored"):  # says it deleted, deletes nothing
            row = await run("SELECT id FROM tasks WHERE id = %s", (task_id,), fetch="one")
        else:
            row = await run("DELETE FROM tasks WHERE id = %s RETURNING id", (task_id,), fetch="one")
        if row is None:
            return JSONResponse({"code": 2001, "message": "The task does not exist."}, status_code=404)
        return {"message": "Successfully deleted."}

    return app


async def _close(db: dict) -> None:
    conn, db["conn"] = db["conn"], None
    if conn is not None:
        try:
            await conn.close()
        except Exception:  # noqa: BLE001, S110 - it is being thrown away
            pass
