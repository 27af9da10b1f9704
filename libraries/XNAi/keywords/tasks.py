"""Task-service (Vikunja) keywords: the bearer-token API XNAi uses, and the tasks as stored in PostgreSQL.

``${VIKUNJA_URL}`` is the service (directly, or through the gateway's
``/vikunja`` prefix where the profile routes it); ``${VIKUNJA_TOKEN}`` is a
Robot ``Secret``.  The database is ``${VIKUNJA_DB}`` (host, port, dbname,
user) with ``${VIKUNJA_DB_PASSWORD}`` (a ``Secret``).  Secrets never reach the log.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import psycopg
import requests
from psycopg.rows import dict_row
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure
from xnai_qa import capabilities, safehttp, targetconfig

from ..base import LibraryComponent


def _plain(value) -> str:
    return value.value if hasattr(value, "value") else str(value or "")


class TaskKeywords(LibraryComponent):
    """Talks to the task service and checks what it stored."""

    def _call(self, method: str, path: str, json=None, token: str = "valid", base: str | None = None,  # noqa: S107 - a kind
              expected=(200, 201)) -> requests.Response:
        url = f"{base or self._var('VIKUNJA_URL')}{path}"
        safehttp.check(url, self._var("ALLOWED_HOSTS", []))
        headers = {}
        if token == "valid":  # noqa: S105 - which kind of token, not one
            headers["Authorization"] = f"Bearer {_plain(self._var('VIKUNJA_TOKEN'))}"
        elif token == "invalid":  # noqa: S105 - which kind of token, not one
            headers["Authorization"] = f"Bearer not-{uuid.uuid4().hex}"
        elif token != "missing":  # noqa: S105 - which kind of token, not one
            raise Failure(f"token={token!r}: use valid, invalid or missing.")
        try:
            resp = safehttp.request(method, url, self._var("ALLOWED_HOSTS", []), json=json, headers=headers,
                                    timeout=float(self._var("REQUEST_TIMEOUT_S", 10)))
        except requests.RequestException as err:
            raise Failure(f"{method} {url} failed: {type(err).__name__}: {err}") from None
        logger.info(f"{method} {url} ({token} token) -> {resp.status_code} {resp.text[:300]}")
        if expected and resp.status_code not in expected:
            raise Failure(f"{method} {path} answered {resp.status_code}, expected {' or '.join(map(str, expected))}: "
                          f"{resp.text[:300]}")
        return resp

    def _base(self, via: str) -> str | None:
        if via == "direct":
            return None
        if via != "gateway":
            raise Failure(f"via={via!r}: use direct or gateway.")
        prefix = self._var("VIKUNJA_GATEWAY_PREFIX", "")
        if not prefix:
            raise capabilities.skip("vikunja-gateway", "${VIKUNJA_GATEWAY_PREFIX} is empty")
        return f"{self._var('GATEWAY_URL')}{prefix}"

    @keyword(tags=["requires:vikunja"])
    def get_task_service_info(self, via: str = "direct") -> dict:
        """``GET /api/v1/info`` (no token needed) ``via`` the service directly or the ``gateway``.

        Example:
        | ${info}= | Get Task Service Info | via=gateway |
        """
        info = self._call("GET", "/api/v1/info", token="missing", base=self._base(via)).json()  # noqa: S106 - no token
        if "version" not in info:
            raise Failure(f"The task service's info has no version: {info}")
        return info

    @keyword(tags=["requires:vikunja"])
    def create_project(self, title: str | None = None) -> dict:
        """Creates a project (``PUT /api/v1/projects``) and returns it; a unique title when none is given.

        Example:
        | ${project}= | Create Project |
        """
        return self._call("PUT", "/api/v1/projects", {"title": title or f"xnai-qa {uuid.uuid4().hex[:8]}"}).json()

    @keyword(tags=["requires:vikunja"])
    def create_task(self, project: dict, title: str | None = None, description: str = "") -> dict:
        """Creates a task in ``project`` (``PUT /api/v1/projects/{id}/tasks``) and returns it.

        Example:
        | ${task}= | Create Task | ${project} | Check the breaker |
        """
        body = {"title": title or f"task {uuid.uuid4().hex[:8]}", "description": description}
        return self._call("PUT", f"/api/v1/projects/{project['id']}/tasks", body).json()

    @keyword(tags=["requires:vikunja"])
    def get_project_tasks(self, project: dict) -> list:
        """``GET /api/v1/projects/{id}/tasks``.

        Example:
        | ${tasks}= | Get Project Tasks | ${project} |
        """
        return self._call("GET", f"/api/v1/projects/{project['id']}/tasks").json()

    @keyword(tags=["requires:vikunja"])
    def get_all_tasks(self, via: str = "direct") -> list:
        """``GET /api/v1/tasks/all`` (what XNAi's integration calls), ``via`` the service or the ``gateway``.

        Example:
        | ${tasks}= | Get All Tasks | via=gateway |
        """
        return self._call("GET", "/api/v1/tasks/all", base=self._base(via)).json()

    @keyword(tags=["requires:vikunja"])
    def get_task(self, task: dict, expected_status: int = 200) -> dict | None:
        """``GET /api/v1/tasks/{id}``; ``expected_status=404`` to check it is gone.

        Example:
        | ${task}= | Get Task | ${task} |
        """
        resp = self._call("GET", f"/api/v1/tasks/{task['id']}", expected=(int(expected_status),))
        return resp.json()

    @keyword(tags=["requires:vikunja"])
    def update_task(self, task: dict, **changes) -> dict:
        """``POST /api/v1/tasks/{id}`` with the given fields (title, description, done).

        Example:
        | ${task}= | Update Task | ${task} | done=${True} |
        """
        return self._call("POST", f"/api/v1/tasks/{task['id']}", changes).json()

    @keyword(tags=["requires:vikunja"])
    def delete_task(self, task: dict) -> None:
        """``DELETE /api/v1/tasks/{id}``.

        Example:
        | Delete Task | ${task} |
        """
        self._call("DELETE", f"/api/v1/tasks/{task['id']}")

    @keyword(tags=["requires:vikunja"])
    def task_service_should_refuse(self, token: str, path: str = "/api/v1/tasks/all") -> None:
        """Fails unless ``path`` answers 401 with a ``missing`` or ``invalid`` token.

        Example:
        | Task Service Should Refuse | invalid |
        """
        resp = self._call("GET", path, token=token, expected=())
        if resp.status_code != 401:
            raise Failure(f"GET {path} with a {token} token answered {resp.status_code}, not 401.")

    @keyword(tags=["requires:vikunja"])
    def task_request_should_answer(self, status: int, path: str = "/api/v1/tasks/all",
                                   within: timedelta | None = None) -> None:
        """Fails unless an authenticated ``GET path`` answers ``status`` (e.g. 200 after a database restart),
        and, given ``within``, answers within that bound (an error must come promptly, not hang).

        Example:
        | Task Request Should Answer | 200 |
        | Task Request Should Answer | 503 | within=2s |
        """
        started = time.monotonic()
        self._call("GET", path, expected=(int(status),))
        took = time.monotonic() - started
        if within is not None and took > within.total_seconds():
            raise Failure(f"GET {path} answered {status} after {took:.2f} s, more than {within.total_seconds():g} s.")

    @keyword(tags=["requires:vikunja", "requires:vikunja-db"])
    def task_should_be_stored_in_the_database(self, task: dict) -> dict:
        """Reads the task's row from PostgreSQL and fails unless its title and project match; returns the
        row (``id``, ``project_id``, ``title``, ``done``).

        Example:
        | Task Should Be Stored In The Database | ${task} |
        """
        row = self._query("SELECT id, project_id, title, done FROM tasks WHERE id = %s", (task["id"],))
        if row is None:
            raise Failure(f"Task {task['id']} is not in the tasks table.")
        if row["title"] != task["title"] or row["project_id"] != task["project_id"]:
            raise Failure(f"Task {task['id']} is stored as {row}, the API said {task}.")
        return row

    @keyword(tags=["requires:vikunja", "requires:vikunja-db"])
    def task_should_belong_to(self, task: dict, project: dict) -> None:
        """Fails unless the stored task is in ``project`` (the project the API was asked to put it in).

        Example:
        | Task Should Belong To | ${task} | ${project} |
        """
        row = self._query("SELECT project_id FROM tasks WHERE id = %s", (task["id"],))
        if row is None or row["project_id"] != project["id"]:
            raise Failure(f"Task {task['id']} is stored in project {row and row['project_id']}, "
                          f"not {project['id']} ('{project['title']}').")

    def _query(self, sql: str, params: tuple):
        db = self._var("VIKUNJA_DB", {}) or {}
        if not db:
            raise capabilities.skip("vikunja-db", "${VIKUNJA_DB} is empty")
        try:
            targetconfig.check_host_allowed(db["host"], self._var("ALLOWED_HOSTS", []))
        except targetconfig.TargetConfigError as err:
            raise Failure(str(err)) from None
        try:
            with psycopg.connect(host=db["host"], port=db["port"], dbname=db["dbname"], user=db["user"],
                                 password=_plain(self._var("VIKUNJA_DB_PASSWORD")), connect_timeout=5,
                                 row_factory=dict_row) as conn:
                return conn.execute(sql, params).fetchone()
        except psycopg.Error as err:
            raise Failure(f"The task database ({db['host']}:{db['port']}/{db['dbname']}) failed: "
                          f"{str(err).splitlines()[0]}") from None
