"""``python -m testbed serve <service>``: one testbed service as a container's main process.

The compose project ``docker/compose.testbed.yml`` runs each service in a container of its own on host
networking, every container reading one ``config.json`` (a folder of the host mounted in all of them;
``tools/container_lane.py`` writes it).  ``serve`` prepares the service as ``testbed up`` would, then
the service *replaces* this process, so it is the container's main process as in the stack: the
engine's stop signal reaches it, its process figures (descriptors, memory) are the container's, its
exit code is the container's.  A helper forked first waits until the service answers (bounded by its
start-up time), runs what follows readiness (the databases' roles) and writes ``READY_FILE``, the
container's health check.
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

from .config import TestbedConfig
from .services import AFTER_READY, SERVICES, ServiceError, wait_ready

# The container's own /tmp; XNAI_TESTBED_READY_FILE moves it (the testbed's tests run serve outside a container).
READY_FILE = Path(os.environ.get("XNAI_TESTBED_READY_FILE") or "/tmp/xnai-testbed-ready")  # noqa: S108


def serve(cfg: TestbedConfig, name: str) -> int:
    if name not in SERVICES:
        raise ServiceError(f"no testbed service '{name}'; known: {', '.join(SERVICES)}")
    service = SERVICES[name]
    launch = service.prepare(cfg)
    READY_FILE.unlink(missing_ok=True)  # a restarted container keeps its /tmp: not ready until it answers
    sys.stdout.flush()
    if os.fork() == 0:
        _mark_ready(cfg, name)  # never returns
    env = {**os.environ, **launch.env}
    if launch.cwd:
        os.chdir(launch.cwd)
    if launch.user:
        entry = pwd.getpwnam(launch.user)
        os.setgroups([])
        os.setgid(entry.pw_gid)
        os.setuid(entry.pw_uid)
    os.execvpe(launch.argv[0], launch.argv, env)  # noqa: S606 - the service's own argv, from our config


def _mark_ready(cfg: TestbedConfig, name: str) -> None:
    """The helper: the service is its parent (after the exec); writes READY_FILE once it answers."""
    service = SERVICES[name]
    code = 0
    try:
        wait_ready(service, cfg, alive=lambda: True)  # bounded by the service's start-up time
        if name in AFTER_READY:
            AFTER_READY[name](cfg)
        READY_FILE.write_text(name)
        print(f"testbed serve {name}: ready on port {cfg.port(service.port_key)}", flush=True)
    except Exception as err:  # noqa: BLE001 - told on the container's log; it stays unhealthy
        print(f"testbed serve {name}: not ready: {err}", file=sys.stderr, flush=True)
        code = 1
    os._exit(code)
