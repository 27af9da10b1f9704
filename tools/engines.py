"""Private container engines for the project's own tests and lanes: a ``dockerd`` or Podman's
Docker-compatible API service, each with its own storage, state and socket under one folder, on host
networking only (dockerd ``--bridge=none --iptables=false``: no bridge network, no private-range
addresses), stopped and removed afterwards.  ``tests/utest/test_docker_backend.py`` and
``tools/container_lane.py`` use it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

NEEDED = {"docker": (("dockerd", "containerd"), "docker.io"), "podman": (("podman", "runc"), "podman")}


def why_not(engine: str) -> str | None:
    """Why a private ``engine`` cannot start here (None: it can)."""
    if os.geteuid() != 0:
        return f"not root: cannot start a private {engine} engine (set XNAI_DOCKER_URL to use a running one)"
    binaries, package = NEEDED[engine]
    for binary in binaries:
        if not shutil.which(binary):
            return f"'{binary}' not installed (Debian/Ubuntu: apt-get install {package}; ./qa test does it as root)"
    return None


@dataclass
class Engine:
    kind: str
    root: Path
    url: str
    proc: subprocess.Popen
    log: IO[str]

    def podman(self) -> list[str]:
        """Podman's command line on this engine's storage (for imports before its API serves)."""
        return podman_cli(self.root)

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        self.log.close()
        _unmount_below(self.root)
        shutil.rmtree(self.root, ignore_errors=True)


def podman_cli(root: Path) -> list[str]:
    return ["podman", "--root", str(root / "storage"), "--runroot", str(root / "run"), "--tmpdir", str(root / "tmp"),
            "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--storage-driver", "vfs"]


def podman_env(root: Path) -> dict[str, str]:
    """Podman 4.3 as root here: no default ulimits (its default open-files limit is above this machine's
    hard limit, and the runtime refuses the setrlimit), events to a file (no journald)."""
    conf = root / "containers.conf"
    if not conf.exists():
        conf.write_text("[containers]\ndefault_ulimits = []\n\n[engine]\nevents_logger = \"file\"\n")
    return {**os.environ, "CONTAINERS_CONF": str(conf)}


def start(kind: str, root: Path, before_serving=None, bound_s: float = 60.0) -> Engine:
    """Starts a private ``kind`` engine under ``root`` and waits (bounded) until its API answers.
    ``before_serving(engine_root)`` runs first (Podman: images imported with the CLI)."""
    import docker  # noqa: PLC0415

    root.mkdir(parents=True, exist_ok=True)
    sock = root / "engine.sock"
    url = f"unix://{sock}"
    log = open(root / "engine.log", "w")  # noqa: SIM115 - closed by Engine.stop
    if kind == "docker":
        proc = subprocess.Popen(  # noqa: S603 - fixed arguments
            ["dockerd", "--bridge=none", "--iptables=false", "--ip6tables=false",  # noqa: S607
             "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--pidfile", str(root / "dockerd.pid"), "-H", url,
             "--containerd-namespace", f"xnai{os.getpid()}", "--containerd-plugins-namespace", f"xnaip{os.getpid()}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    else:
        env = podman_env(root)
        if before_serving is not None:
            before_serving(root)
        proc = subprocess.Popen([*podman_cli(root), "system", "service", "--time=0", url],  # noqa: S603
                                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    engine = Engine(kind, root, url, proc, log)
    deadline = time.monotonic() + bound_s
    while True:
        try:
            docker.DockerClient(base_url=url, version="auto", timeout=5).ping()
            return engine
        except Exception as err:  # noqa: BLE001 - not answering yet
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "engine.log").read_text()[-2000:]
                engine.stop()
                raise RuntimeError(f"{kind} did not start within {bound_s:.0f} s ({err}):\n{tail}") from None
            time.sleep(0.2)


def _unmount_below(root: Path) -> None:
    """dockerd leaves its network namespace mounted under its exec root: unmount before deleting."""
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)  # noqa: S603, S607
