"""Fault backends: the testbed's processes, Docker containers, and a Toxiproxy-compatible proxy.

Each backend acts on a named service and describes how to undo what it did
as a plain dictionary (an *undo spec*), which the ledger stores and
``perform_undo`` executes, from any process, at any later time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO_ROOT = Path(__file__).resolve().parents[3]
SERVICE_ACTIONS = ("stop", "kill", "start", "restart", "pause", "resume")
UNDO_OF = {"stop": "start", "kill": "start", "pause": "resume"}
HEALTHY_BOUND_S = 90.0  # a container started or restarted passes its health check within this (if it has one)


class FaultError(RuntimeError):
    """A fault could not be applied or undone; the message says why and what to do."""


# --------------------------------------------------------------- process --
class ProcessBackend:
    """The embedded testbed: acts through its supervisor CLI (``python -m testbed service``)."""

    name = "process"

    def __init__(self, base_port: int, home: str):
        self.base_port = int(base_port)
        self.home = str(home)

    def spec(self, action: str, service: str) -> dict:
        spec = {"backend": "process", "action": action, "service": service,
                "base_port": self.base_port, "home": self.home}
        if action == "resume":  # the undo of a pause: SIGCONT straight to the group, on time, from any process
            pid = self.instance_id(service)
            if pid.isdigit():
                with contextlib.suppress(ProcessLookupError):
                    spec["pgid"] = os.getpgid(int(pid))
        return spec

    def act(self, action: str, service: str, grace_s: float | None = None) -> str:
        args = ["service", action, service]
        if grace_s is not None:
            args += ["--grace", str(grace_s)]
        result = _testbed_cli(self.base_port, self.home, *args)
        if result.returncode != 0:
            raise FaultError(f"testbed {action} {service} failed: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout.strip()

    def instance_id(self, service: str) -> str:
        result = _testbed_cli(self.base_port, self.home, "service", "pid", service)
        return result.stdout.strip()


def _testbed_cli(base_port: int, home: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "XNAI_TESTBED_BASE_PORT": str(base_port), "XNAI_TESTBED_HOME": home}
    return subprocess.run(  # noqa: S603 - the project's own CLI
        [sys.executable, "-m", "testbed", *args], cwd=REPO_ROOT, env=env,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


# ---------------------------------------------------------------- docker --
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class DockerBackend:
    """A Docker Engine (or Podman's Docker-compatible socket) through the ``docker`` SDK.  A service is
    the one container of the configured compose project with its service label (or the container its
    entry names, which must belong to that project): no container of another project is ever touched."""

    name = "docker"

    def __init__(self, url: str, project: str):
        import docker  # noqa: PLC0415

        if not project:
            raise FaultError("FAULT_BACKEND=docker acts only on the containers of one compose project, and "
                             "${COMPOSE_PROJECT} is empty: set XNAI_COMPOSE_PROJECT to your stack's project "
                             "name (docker compose ls / podman compose ls).")
        self.url = url
        self.project = project
        try:
            self.client = docker.DockerClient(base_url=url, version="auto", timeout=60)
            self.client.ping()
        except Exception as err:  # noqa: BLE001 - docker raises many kinds
            raise FaultError(f"No Docker Engine at {url}: {err}. Start dockerd or fix DOCKER_URL.") from None

    def container(self, service: str, entry: dict):
        """The one container of ``service`` in the configured project: by ``container`` name, else by its
        compose service label (``compose_service``, default the service's name)."""
        import docker  # noqa: PLC0415

        if entry.get("container"):
            try:
                found = [self.client.containers.get(entry["container"])]
            except docker.errors.NotFound:
                found = []
            for container in found:
                if (container.labels or {}).get(PROJECT_LABEL) != self.project:
                    raise FaultError(
                        f"Service '{service}': container {entry['container']} is not in compose project "
                        f"'{self.project}' (its project: {(container.labels or {}).get(PROJECT_LABEL)!r}); "
                        "the suite acts only on the configured project's containers."
                    )
        else:
            label = entry.get("compose_service", service)
            found = self.client.containers.list(all=True, filters={"label": [f"{SERVICE_LABEL}={label}",
                                                                              f"{PROJECT_LABEL}={self.project}"]})
        if len(found) != 1:
            where = entry.get("container") or (f"labels {PROJECT_LABEL}={self.project}, "
                                               f"{SERVICE_LABEL}={entry.get('compose_service', service)}")
            raise FaultError(f"Service '{service}': expected one container ({where}), found {len(found)}.")
        return found[0]

    def spec(self, action: str, service: str, entry: dict) -> dict:
        return {"backend": "docker", "action": action, "service": service, "url": self.url,
                "container": self.container(service, entry).id}

    def act(self, action: str, service: str, entry: dict, grace_s: float | None = None) -> str:
        container = self.container(service, entry)
        return _docker_act(container, action, grace_s)

    def instance_id(self, service: str, entry: dict) -> str:
        container = self.container(service, entry)
        container.reload()
        return f"{container.id[:12]}@{container.attrs['State'].get('StartedAt', '')}"


def _docker_act(container, action: str, grace_s: float | None = None) -> str:
    import docker  # noqa: PLC0415

    container.reload()
    status = container.status
    try:
        if action == "stop":
            container.stop(timeout=int(grace_s if grace_s is not None else 10))
        elif action == "kill":
            container.kill()
        elif action == "start":
            if status == "paused":
                container.unpause()
            elif status != "running":
                container.start()
        elif action == "restart":
            container.restart(timeout=int(grace_s if grace_s is not None else 10))
        elif action == "pause":
            container.pause()
        elif action == "resume":
            if status == "paused":
                container.unpause()
        else:
            raise FaultError(f"Unknown action '{action}'.")
    except docker.errors.APIError as err:
        raise FaultError(f"docker {action} {container.name}: {err.explanation or err}") from None
    container.reload()
    back = _until_healthy(container) if action in ("start", "restart") and status != "paused" else ""
    return f"{container.name}: {status} -> {container.status}{back}"


def _until_healthy(container, bound_s: float = HEALTHY_BOUND_S) -> str:
    """A container brought back is back once its own health check passes (when it has one; a started
    database accepts no query before): polled, bounded by ``bound_s``."""
    started = time.monotonic()
    while True:
        health = (container.attrs.get("State") or {}).get("Health") or {}
        if health.get("Status") not in ("starting", "unhealthy", "healthy"):
            return ""  # no health check (Podman reports an empty status then)
        if health.get("Status") == "healthy":
            return f" (healthy after {time.monotonic() - started:.1f} s)"
        if time.monotonic() - started > bound_s:
            raise FaultError(f"{container.name} is {container.status} but not healthy {bound_s:.0f} s after it was "
                             f"brought back (its health check: {health.get('Status')}).")
        time.sleep(0.2)
        container.reload()


# ----------------------------------------------------------------- proxy --
class ProxyClient:
    """A Toxiproxy-compatible HTTP API (Toxiproxy itself, or ``python -m testbed.faultproxy``)."""

    def __init__(self, api_url: str, timeout: float = 10.0):
        self.api = api_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, **kwargs) -> requests.Response:
        try:
            return requests.request(method, self.api + path, timeout=self.timeout, **kwargs)
        except requests.RequestException as err:
            raise FaultError(f"Fault proxy API {self.api} unreachable: {err}") from None

    def proxy(self, name: str) -> dict:
        resp = self._call("GET", f"/proxies/{name}")
        if resp.status_code == 404:
            known = ", ".join(self._call("GET", "/proxies").json())
            raise FaultError(f"The fault proxy has no proxy '{name}'. Proxies: {known}.")
        resp.raise_for_status()
        return resp.json()

    def add_toxic(self, proxy: str, toxic: dict) -> dict:
        resp = self._call("POST", f"/proxies/{proxy}/toxics", json=toxic)
        if resp.status_code >= 400:
            raise FaultError(f"Fault proxy refused toxic {toxic}: {resp.text.strip()}")
        return resp.json()

    def remove_toxic(self, proxy: str, toxic: str) -> str:
        resp = self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")
        if resp.status_code == 404:
            return "already gone"
        if resp.status_code >= 400:
            raise FaultError(f"Fault proxy could not remove {toxic}: {resp.text.strip()}")
        return "removed"

    def toxics(self, proxy: str) -> list[dict]:
        resp = self._call("GET", f"/proxies/{proxy}/toxics")
        return resp.json() if resp.status_code == 200 else []

    def set_enabled(self, proxy: str, enabled: bool) -> str:
        resp = self._call("POST", f"/proxies/{proxy}", json={"enabled": enabled})
        if resp.status_code == 404:
            return "proxy gone"
        if resp.status_code >= 400:
            raise FaultError(f"Fault proxy could not set {proxy} enabled={enabled}: {resp.text.strip()}")
        return "enabled" if enabled else "disabled"


def make_backend(get_var):
    """The service backend the variables name (``FAULT_BACKEND``); ``get_var(name, default)`` reads them."""
    kind = get_var("FAULT_BACKEND", "none")
    if kind == "process":
        run_dir = get_var("TESTBED_RUN_DIR", None)
        if not run_dir:
            raise FaultError("FAULT_BACKEND=process works only against the testbed (no TESTBED_RUN_DIR).")
        return ProcessBackend(get_var("TESTBED_BASE_PORT", None), str(Path(run_dir).parent))
    if kind == "docker":
        return DockerBackend(get_var("DOCKER_URL", "unix:///var/run/docker.sock") or "unix:///var/run/docker.sock",
                             get_var("COMPOSE_PROJECT", "") or "")
    raise FaultError(f"FAULT_BACKEND={kind!r}: service actions need 'process' (testbed) or 'docker' (real stack).")


def service_pid(backend, service: str, entry: dict) -> int:
    """The main process id of ``service`` as seen from this machine."""
    if isinstance(backend, DockerBackend):
        container = backend.container(service, entry)
        container.reload()
        pid = int(container.attrs.get("State", {}).get("Pid") or 0)
    else:
        text = backend.instance_id(service)
        pid = int(text) if text.isdigit() else 0
    if not pid:
        raise FaultError(f"Service '{service}' is not running (no process id).")
    return pid


# ------------------------------------------------------------------ undo --
def perform_undo(spec: dict) -> str:
    """Undo what ``spec`` describes.  Idempotent: undoing twice is not an error."""
    backend = spec.get("backend")
    if backend == "process":
        if spec["action"] == "resume" and spec.get("pgid"):
            try:
                os.killpg(int(spec["pgid"]), signal.SIGCONT)
            except ProcessLookupError:
                return "was not running"
            return f"resumed (SIGCONT to process group {spec['pgid']})"
        result = _testbed_cli(spec["base_port"], spec["home"], "service", spec["action"], spec["service"])
        if result.returncode != 0:
            if "not up" in result.stderr:
                return "testbed not running: nothing to undo"
            raise FaultError(f"undo {spec}: {result.stderr.strip()}")
        return result.stdout.strip()
    if backend == "docker":
        import docker  # noqa: PLC0415

        try:
            container = docker.DockerClient(base_url=spec["url"], version="auto", timeout=60).containers.get(
                spec["container"]
            )
        except docker.errors.NotFound:
            return "container gone"
        except Exception as err:  # noqa: BLE001
            raise FaultError(f"undo {spec}: Docker Engine unreachable: {err}") from None
        return _docker_act(container, spec["action"])
    if backend == "http":
        try:
            resp = requests.post(spec["url"], json=spec["json"], timeout=10)
        except requests.RequestException as err:
            raise FaultError(f"undo {spec['url']}: {err}") from None
        if resp.status_code >= 400:
            raise FaultError(f"undo {spec['url']}: HTTP {resp.status_code} {resp.text[:200]}")
        return f"posted {spec['json']}"
    if backend == "proxy":
        client = ProxyClient(spec["api"])
        if spec.get("enable"):
            return client.set_enabled(spec["proxy"], True)
        return client.remove_toxic(spec["proxy"], spec["toxic"])
    raise FaultError(f"Unknown undo spec: {spec}")
