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
    """What each open descriptor of ``pid``'s tree points at (``socket:[...]``, file paths, pipes)."""
    out = []
    for proc in process_tree(pid):
        folder = f"/proc/{proc.pid}/fd"
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            try:
                out.append(os.readlink(f"{folder}/{name}"))
            except OSError:
                continue
    return sorted(out)
