"""Resource figures of a service's processes: memory, file descriptors, sockets, threads, CPU.

A service is a process tree (found by pid); figures are summed over it.
``Sampler`` samples in a background thread, bounded in count.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import psutil

FIGURES = ("rss_mb", "uss_mb", "fds", "sockets", "threads", "cpu_percent")


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return [root]


def find_by_match(pattern: str) -> int:
    """The pid of the one process tree whose command line matches ``pattern`` (a regular expression searched
    in the arguments joined by spaces): its root, the matching process whose parent does not match.  For a
    stack run as plain processes (``process_match`` in a service's ``${SERVICES}`` entry)."""
    import re  # noqa: PLC0415

    regex = re.compile(pattern)
    own = os.getpid()
    matching: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["pid", "ppid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if proc.info["pid"] != own and cmdline and regex.search(cmdline):
            matching[proc.info["pid"]] = proc
    roots = [pid for pid, proc in matching.items() if proc.info["ppid"] not in matching]
    if len(roots) != 1:
        found = (
            "no process"
            if not roots
            else f"{len(roots)} separate processes (pids {', '.join(map(str, sorted(roots)))})"
        )
        raise LookupError(f"process_match {pattern!r} matches {found}; it must match one service's command line")
    return roots[0]


def sample(pid: int, cpu_state: dict | None = None) -> dict:
    """One sample of the process tree rooted at ``pid``."""
    rss = uss = 0.0
    fds = sockets = threads = 0
    cpu_total = 0.0
    for proc in process_tree(pid):
        try:
            with proc.oneshot():
                mem = proc.memory_full_info()
                rss += mem.rss
                uss += getattr(mem, "uss", mem.rss)
                fds += proc.num_fds()
                threads += proc.num_threads()
                sockets += len(proc.net_connections(kind="inet"))
                times = proc.cpu_times()
                cpu_total += times.user + times.system
        except psutil.Error:
            continue
    now = time.monotonic()
    cpu_percent = None
    if cpu_state is not None:
        if "t" in cpu_state:
            cpu_percent = 100.0 * (cpu_total - cpu_state["cpu"]) / max(now - cpu_state["t"], 1e-6)
        cpu_state.update(t=now, cpu=cpu_total)
    return {"rss_mb": round(rss / 2**20, 3), "uss_mb": round(uss / 2**20, 3), "fds": fds, "sockets": sockets,
            "threads": threads, "cpu_percent": None if cpu_percent is None else round(cpu_percent, 1)}


class Sampler(threading.Thread):
    """Samples ``source()`` every ``interval_s`` until stopped or ``max_samples`` reached."""

    def __init__(self, source: Callable[[dict], dict], interval_s: float = 0.25, max_samples: int = 20_000):
        super().__init__(daemon=True)
        self.source = source
        self.interval_s = interval_s
        self.max_samples = max_samples
        self.samples: list[dict] = []
        self.errors: list[str] = []
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        cpu_state: dict = {}
        while not self._stop_event.is_set() and len(self.samples) < self.max_samples:
            try:
                figures = self.source(cpu_state)
                figures["t"] = round(time.monotonic() - self._t0, 3)
                self.samples.append(figures)
            except Exception as err:  # noqa: BLE001 - the process may be gone mid-run
                self.errors.append(f"{type(err).__name__}: {err}")
            self._stop_event.wait(self.interval_s)

    def stop(self) -> list[dict]:
        self._stop_event.set()
        self.join(timeout=10)
        return self.samples


def summarize(samples: list[dict]) -> dict:
    out: dict = {"samples": len(samples)}
    for name in FIGURES:
        values = [s[name] for s in samples if s.get(name) is not None]
        if values:
            out[name] = {"start": values[0], "min": min(values), "max": max(values), "end": values[-1],
                         "mean": round(sum(values) / len(values), 3)}
    return out


def fd_targets(pid: int) -> list[str]:
    """What each open descriptor of ``pid``'s tree points at (``socket:[...]``, file paths, pipes); an inet
    socket also says its addresses (``socket:[123] 127.0.0.1:40000->127.0.0.1:6379``): which peer it is."""
    out = []
    for proc in process_tree(pid):
        folder = f"/proc/{proc.pid}/fd"
        try:
            names = os.listdir(folder)
            peers = {c.fd: c for c in proc.net_connections(kind="inet")}
        except (OSError, psutil.Error):
            continue
        for name in names:
            try:
                target = os.readlink(f"{folder}/{name}")
            except OSError:
                continue
            conn = peers.get(int(name))
            if conn is not None and conn.laddr:
                local = f"{conn.laddr.ip}:{conn.laddr.port}"
                target += f" {local}->{conn.raddr.ip}:{conn.raddr.port}" if conn.raddr else f" {local} ({conn.status})"
            out.append(target)
    return sorted(out)
