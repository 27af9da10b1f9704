"""Where a testbed lives, which ports it uses, and its secrets.

A testbed is identified by its base port.  Everything about it (config,
state, logs, data) lives in one run folder: ``$XNAI_TESTBED_HOME/run-<base>``
(default home: ``.testbed/`` at the repository root).

Settings, all from the environment:

``XNAI_TESTBED_HOME``       folder holding run folders
``XNAI_TESTBED_BASE_PORT``  first port of the block (default 18000)
``XNAI_PROFILE``            timing profile: ``fast`` (default) or ``production``
``XNAI_TESTBED_DEFECTS``    comma-separated defect switches (see ``python -m testbed defects``)
``XNAI_TESTBED_DEBUG``      1: enable the RAG API's /_debug routes (the suite's runs do)
``XNAI_TESTBED_LEAK_KB``    memory kept per stream by the stream-keeps-memory defect (default 256)
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from xnai_contract import profile as contract_profile

from . import defects as defect_registry

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BASE_PORT = 18000

# Service name -> offset from the base port.  Mirrors the stack's own port
# numbers where it can (gateway 8000 -> +0, rag 8012 -> +12, ...).
PORT_OFFSETS = {
    "gateway": 0,
    "ui": 1,
    "mkdocs": 8,
    "rag_api": 12,
    "rag_api_proxy": 13,
    "caddy_admin": 19,
    "embeddings": 25,  # the testbed's downstream service (KG-2 cascade); no counterpart port in the stack
    "postgres": 32,
    "vikunja": 56,  # Vikunja's 3456 (the testbed's Vikunja-compatible task service)
    "postgres_proxy": 33,
    "faultproxy": 74,
    "redis": 79,
    "redis_proxy": 80,
    "monitor": 91,
    "voice": 40,  # the testbed's voice service (the stack runs voice inside the API and UI processes)
}

# Start order; stop order is the reverse.
SERVICE_ORDER = ("redis", "postgres", "faultproxy", "embeddings", "rag_api", "voice", "vikunja", "mkdocs", "ui",
                 "monitor", "gateway")

# The same order in stages: the services of a stage start (and stop) at once.  Stores first; the health
# monitor only once everything it checks answers, and it stops first so that it restarts nothing that
# is being stopped.
START_STAGES: tuple[tuple[str, ...], ...] = (
    ("redis", "postgres"), ("faultproxy", "embeddings", "mkdocs"), ("rag_api", "voice", "vikunja", "ui"), ("monitor",),
    ("gateway",))
STOP_STAGES: tuple[tuple[str, ...], ...] = (
    ("gateway",), ("monitor",), ("ui", "mkdocs", "vikunja", "voice", "rag_api", "embeddings", "faultproxy"),
    ("postgres", "redis"))

# Services whose clients inside the testbed reach them through the fault proxy
# (proxy name = service name, listening on "<service>_proxy").
PROXIED = ("redis", "postgres", "rag_api")


class ConfigError(ValueError):
    """A testbed setting is wrong; the message names the setting and the fix."""


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number. Set it to a port such as {default}.") from None
    return value


def testbed_home() -> Path:
    return Path(os.environ.get("XNAI_TESTBED_HOME") or REPO_ROOT / ".testbed").resolve()


def base_port_from_env() -> int:
    port = _int_env("XNAI_TESTBED_BASE_PORT", DEFAULT_BASE_PORT)
    top = port + max(PORT_OFFSETS.values())
    if port < 1024 or top > 65535:
        raise ConfigError(
            f"XNAI_TESTBED_BASE_PORT={port} puts the testbed's ports at {port}..{top}; "
            "choose a base between 1024 and " + str(65535 - max(PORT_OFFSETS.values())) + "."
        )
    return port


def defects_from_env() -> list[str]:
    raw = os.environ.get("XNAI_TESTBED_DEFECTS", "")
    names = [n.strip() for n in raw.split(",") if n.strip()]
    defect_registry.validate(names, setting="XNAI_TESTBED_DEFECTS")
    return names


@dataclass
class TestbedConfig:
    """Everything a testbed's services need to know, saved as ``config.json``."""

    base_port: int
    run_dir: str
    profile: str = "fast"
    defects: list[str] = field(default_factory=list)
    redis_password: str = ""
    postgres_password: str = ""
    vikunja_token: str = ""
    instance_id: str = ""
    debug_endpoints: bool = False  # /_debug routes of the RAG API (stream state, LLM control)
    leak_kb: int = 256  # memory kept per disconnected stream by the stream-keeps-memory defect
    # The testbed as containers (docker/compose.testbed.yml): no fault proxy (clients reach each service
    # straight, as in the stack), and the monitor's restarts go through the container engine at this API
    # URL, to the containers of this compose project (the stack's monitor calls podman restart).
    fault_proxy: bool = True
    container_engine: str = ""
    compose_project: str = ""
    alert_urls: list[str] = field(default_factory=list)  # the monitor's alert callbacks from its start

    __test__ = False  # not a pytest test class

    @property
    def run_path(self) -> Path:
        return Path(self.run_dir)

    @property
    def ports(self) -> dict[str, int]:
        return {name: self.base_port + off for name, off in PORT_OFFSETS.items()}

    def port(self, service: str) -> int:
        """The port of ``service``; ``<service>_proxy`` is the fault proxy's listener for it, or the
        service itself when the testbed runs without the proxy."""
        if not self.fault_proxy and service.endswith("_proxy"):
            service = service.removesuffix("_proxy")
        return self.ports[service]

    @property
    def timings(self):
        return contract_profile(self.profile)

    def has_defect(self, name: str) -> bool:
        return defect_registry.is_on(name, self.defects)

    def redis_url(self) -> str:
        return f"redis://:{self.redis_password}@127.0.0.1:{self.port('redis')}/0"

    def postgres_dsn(self, database: str = "postgres", user: str = "postgres") -> str:
        return (
            f"host=127.0.0.1 port={self.port('postgres')} dbname={database} "
            f"user={user} password={self.postgres_password} connect_timeout=3"
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_file(cls, path: Path) -> TestbedConfig:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"Cannot read testbed config {path}: {err}. Delete the file to recreate it.") from None
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def run_dir_for(base_port: int) -> Path:
    return testbed_home() / f"run-{base_port}"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` atomically to ``path`` with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_or_create(base_port: int | None = None, *, apply_env: bool = False) -> TestbedConfig:
    """Return the saved config of the testbed at ``base_port``, creating it once.

    Secrets are generated on first use and kept, so a variables file read
    before ``testbed up`` and the services started after it agree.  Profile
    and defects are taken from the environment when the config is created,
    and again when ``apply_env`` is true (``testbed up`` does that; readers
    such as variables files never change a running testbed's config).
    """
    base = base_port if base_port is not None else base_port_from_env()
    run_dir = run_dir_for(base)
    path = run_dir / "config.json"
    exists = path.exists()
    if exists:
        config = TestbedConfig.from_file(path)
    else:
        config = TestbedConfig(
            base_port=base,
            run_dir=str(run_dir),
            redis_password=secrets.token_urlsafe(18),
            postgres_password=secrets.token_urlsafe(18),
            vikunja_token=secrets.token_urlsafe(24),
            instance_id=secrets.token_hex(8),
        )
    if apply_env or not exists:
        config.run_dir = str(run_dir)
        config.profile = os.environ.get("XNAI_PROFILE", "fast") or "fast"
        contract_profile(config.profile)  # fails early naming the choices
        config.defects = defects_from_env()
        config.debug_endpoints = os.environ.get("XNAI_TESTBED_DEBUG", "") in ("1", "true", "yes")
        config.leak_kb = _int_env("XNAI_TESTBED_LEAK_KB", 256)
    if apply_env:
        save(config)
    elif not exists and not _publish_new(config):
        # Another process created it first (parallel pabot imports): use theirs.
        return TestbedConfig.from_file(path)
    return config


def _publish_new(config: TestbedConfig) -> bool:
    """Create ``config.json`` only if absent; False when someone else won."""
    path = config.run_path / "config.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(config.to_json())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        return True
    finally:
        os.unlink(tmp)


def save(config: TestbedConfig) -> None:
    _write_private(config.run_path / "config.json", config.to_json())


def load_saved(base_port: int | None = None) -> TestbedConfig | None:
    """The config of an existing run folder, or ``None`` when there is none."""
    base = base_port if base_port is not None else base_port_from_env()
    path = run_dir_for(base) / "config.json"
    return TestbedConfig.from_file(path) if path.exists() else None
