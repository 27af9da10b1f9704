"""Private container engines for the project's own tests and lanes: a ``dockerd`` or Podman's
Docker-compatible API service, each with its own storage, state and socket under one folder, on host
networking only (dockerd ``--bridge=none --iptables=false``: no bridge network, no private-range
addresses), stopped and removed afterwards.  ``tests/utest/test_docker_backend.py`` and
``tools/container_lane.py`` use it.

A run killed outright (SIGKILL, a lost terminal) cannot stop its engine: the engine's folder records
the engine's and its owner's process ids, and `heal` (called before the next lane or test session
starts one) removes the containers of an engine whose owner is gone, stops it and deletes its folder.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
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
    (root / "owner.json").write_text(json.dumps({"owner": os.getpid(), "engine": proc.pid, "kind": kind}))
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


def heal(prefix: str, parent: Path | None = None) -> list[str]:
    """Stops and removes every engine under ``parent/<prefix>*`` whose owner process is gone (a killed
    run's): its containers first, then the engine, then its folder.  Returns what it healed, for the log.
    An engine whose owner still runs (another lane at the same time) is left alone."""
    healed = []
    for root in sorted((parent or Path(tempfile.gettempdir())).glob(f"{prefix}*")):
        try:
            record = json.loads((root / "owner.json").read_text())
        except (OSError, ValueError):
            continue  # not an engine folder of ours, or one still being set up
        if _alive(int(record["owner"])):
            continue
        engine_pid = int(record["engine"])
        running = _alive(engine_pid) and _is_engine(engine_pid, root)  # not a reused process id
        removed = _remove_containers(root, record.get("kind", "docker")) if running else 0
        if running:
            _stop_pid(engine_pid)
        _unmount_below(root)
        shutil.rmtree(root, ignore_errors=True)
        healed.append(f"{record.get('kind', 'docker')} engine of killed run {record['owner']} at {root}: "
                      f"{removed} container(s) removed, engine {engine_pid} stopped, folder deleted")
    return healed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is gone as far as an owner goes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _is_engine(pid: int, root: Path) -> bool:
    try:
        return str(root) in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _remove_containers(root: Path, kind: str) -> int:
    import docker  # noqa: PLC0415

    try:
        client = docker.DockerClient(base_url=f"unix://{root / 'engine.sock'}", version="auto", timeout=30)
        found = client.containers.list(all=True)
        for container in found:
            container.remove(force=True)
        client.close()
        return len(found)
    except Exception:  # noqa: BLE001 - the engine no longer answers: stopping it is all that is left
        if kind == "podman":
            subprocess.run([*podman_cli(root), "rm", "--all", "--force"], env=podman_env(root),  # noqa: S603
                           capture_output=True, timeout=120, check=False)
        return 0


def _stop_pid(pid: int, bound_s: float = 30.0) -> None:
    """SIGTERM to the engine's process group (dockerd stops its containerd), SIGKILL after the bound."""
    for sig, wait_s in ((signal.SIGTERM, bound_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not _alive(pid):
                return
            time.sleep(0.2)


def _unmount_below(root: Path) -> None:
    """dockerd leaves its network namespace mounted under its exec root: unmount before deleting."""
    with open("/proc/mounts") as mounts:
        points = [line.split()[1] for line in mounts if line.split()[1].startswith(str(root))]
    for point in sorted(points, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)  # noqa: S603, S607
