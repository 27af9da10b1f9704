"""The monitor's recovery rules and actions (the contract's), and its alerts.

Rules: redis 3 failures -> restart; rag_api 2 -> restart, 5 -> clear the API cache; vikunja 3 ->
restart, 5 -> reconnect its database; chainlit_ui 2 -> restart.  A service that keeps failing is
restarted again once the restart cooldown has passed since the last; inside it a line in the log, no
action.  Restarts go through the testbed supervisor; every action is logged (``/health/recovery``) with
``started`` and ``time`` (its end).  Alerts: on every status change to or from ``unhealthy`` each
registered URL gets a POST with ``service``, ``status``, ``previous_status``, ``timestamp``,
``consecutive_failures`` and ``message``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import aiohttp

from testbed.config import TestbedConfig

from .checks import Checkers, ServiceHealth, now

CACHE_PATTERNS = ("query:*", "xnai_cache*")
# The monitor's service names that differ from the supervisor's, and from the compose project's.
SUPERVISOR_NAME = {"chainlit_ui": "ui"}
COMPOSE_NAME = {"rag_api": "rag", "chainlit_ui": "ui"}


@dataclass(frozen=True)
class Rule:
    service: str
    failures: int
    action: str
    cooldown_s: float = 0.0


def rules_for(cfg: TestbedConfig) -> list[Rule]:
    """A restart fires at its count and, while the service keeps failing, again each time its cooldown
    (the contract's 180 s) has passed; the other actions fire once per run of failures, at their count."""
    cooldown = cfg.timings.restart_cooldown_s
    return [Rule("redis", 3, "restart", cooldown), Rule("rag_api", 2, "restart", cooldown),
            Rule("rag_api", 5, "clear_cache"), Rule("vikunja", 3, "restart", cooldown),
            Rule("vikunja", 5, "reconnect_database"), Rule("chainlit_ui", 2, "restart", cooldown)]


def fires(rule: Rule, failures: int, once_per_streak: bool = False) -> bool:
    """Whether ``rule`` is due at this count of consecutive failures (the cooldown is judged apart)."""
    if rule.action == "restart" and not once_per_streak:
        return failures >= rule.failures
    return failures == rule.failures


class Recovery:
    """Takes the actions a failing service's rules call for (or, held by the suite, records them as held)."""

    def __init__(self, cfg: TestbedConfig, checkers: Checkers):
        self.cfg, self.checkers = cfg, checkers
        self.rules = rules_for(cfg)
        self.actions: list[dict] = []
        self.last_action: dict[tuple[str, str], float] = {}
        self.hold = False
        # The defects: a restart never waits for its cooldown, or a failing service is restarted only once.
        self.ignores_cooldown = cfg.has_defect("monitor-restart-ignores-cooldown")
        self.restarts_once = cfg.has_defect("monitor-restarts-once-per-streak")

    async def recover(self, svc: ServiceHealth, session: aiohttp.ClientSession, client) -> None:
        cfg = self.cfg
        failures = svc.consecutive_failures  # the count that triggered: the action may take seconds
        for rule in self.rules:
            if rule.service != svc.name or not fires(rule, failures, self.restarts_once):
                continue
            if rule.action == "restart" and cfg.has_defect("monitor-no-restart"):
                continue
            if rule.action == "reconnect_database" and cfg.has_defect("monitor-no-reconnect"):
                continue
            if self.hold:
                self.record(rule, failures, ok=False, detail="held: the suite holds the monitor's recovery actions")
                continue
            last = self.last_action.get((rule.service, rule.action))
            if last is not None and time.monotonic() - last < rule.cooldown_s and not self.ignores_cooldown:
                # Like the stack's recovery manager: a line in the log, no action.
                print(f"{now()} {rule.service} {rule.action} at {failures} failures: in its cooldown "
                      f"({rule.cooldown_s:g} s, {time.monotonic() - last:.1f} s since the last)", flush=True)
                continue
            self.last_action[(rule.service, rule.action)] = time.monotonic()
            started = time.time()
            try:
                detail = await self.act(rule, session, client)
                self.record(rule, failures, ok=True, detail=detail, started=started)
            except Exception as err:  # noqa: BLE001 - logged as a failed action
                self.record(rule, failures, ok=False, detail=f"{type(err).__name__}: {err}", started=started)

    def record(self, rule: Rule, failures: int, ok: bool, detail: str, started: float | None = None) -> None:
        """One entry of ``/health/recovery``: ``started`` when the action began, ``time`` when it ended."""
        action = next((f"{rule.action}_{word}" for word in ("skipped", "held") if detail.startswith(word)),
                      rule.action)
        stamp = time.time()
        self.actions.append({"at": now(), "started": started or stamp, "time": stamp, "service": rule.service,
                             "action": action, "failures": failures, "ok": ok, "detail": detail})
        del self.actions[:-200]
        print(f"{now()} action: {self.actions[-1]}", flush=True)

    async def act(self, rule: Rule, session: aiohttp.ClientSession, client) -> str:
        if rule.action == "restart" and self.cfg.container_engine:
            return await asyncio.to_thread(self.restart_container, rule.service)
        if rule.action == "restart":
            from testbed import supervisor  # noqa: PLC0415 - the monitor acts through the supervisor

            return await asyncio.to_thread(supervisor.service_action, self.cfg, "restart",
                                           SUPERVISOR_NAME.get(rule.service, rule.service),
                                           only_if=lambda: self.checkers.still_failing(rule.service))
        if rule.action == "clear_cache":
            removed = 0
            for pattern in CACHE_PATTERNS:
                keys = [k async for k in client.scan_iter(match=pattern, count=500)]
                if keys:
                    removed += await client.delete(*keys)
            return f"removed {removed} keys"
        if rule.action == "reconnect_database":
            url = f"http://127.0.0.1:{self.cfg.port('vikunja')}/api/v1/_testbed/reconnect"
            async with session.post(url) as resp:
                body = await resp.text()
                if resp.status != 200:
                    raise RuntimeError(f"HTTP {resp.status}: {body[:200]}")
                return body[:200]
        raise RuntimeError(f"unknown action {rule.action}")


    def restart_container(self, service: str) -> str:
        """Restarts the service's container through the engine, as the stack's monitor does (podman restart):
        the one container of the compose project with the service's label, if its check still fails."""
        import docker  # noqa: PLC0415 - the testbed as containers only

        if not self.checkers.still_failing(service):
            return "skipped: it answers again"
        name = COMPOSE_NAME.get(service, service)
        engine = docker.DockerClient(base_url=self.cfg.container_engine, version="auto", timeout=60)
        try:
            found = engine.containers.list(all=True, filters={"label": [
                f"com.docker.compose.project={self.cfg.compose_project}", f"com.docker.compose.service={name}"]})
            if len(found) != 1:
                raise RuntimeError(f"expected one container of service {name} in project "
                                   f"{self.cfg.compose_project}, found {len(found)}")
            found[0].restart(timeout=10)
            return f"restarted container {found[0].name}"
        finally:
            engine.close()


class Alerts:
    """Posts a service's change to or from ``unhealthy`` to every registered callback URL."""

    def __init__(self, cfg: TestbedConfig):
        self.cfg = cfg
        self.callbacks: list[str] = list(cfg.alert_urls)  # as a stack's monitor is configured; the route changes it
        self.sent = 0

    async def alert(self, svc: ServiceHealth, previous: str, session: aiohttp.ClientSession) -> None:
        if self.cfg.has_defect("alert-never-sent"):
            return
        payload = {"service": svc.name, "status": svc.status, "previous_status": previous, "timestamp": now(),
                   "consecutive_failures": svc.consecutive_failures,
                   "message": f"{svc.name} is {svc.status}: {svc.details.get('error', 'ok')}"}
        if self.cfg.has_defect("alert-wrong-payload"):
            payload["service"] = "unknown"
        for url in list(self.callbacks):
            with contextlib.suppress(Exception):
                async with session.post(url, json=payload) as resp:
                    await resp.read()
                    self.sent += 1
