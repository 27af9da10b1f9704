"""Start, stop and inspect a testbed's services.

Each service runs in its own session (process group) so the whole group can
be signalled.  Its pid and start time are written to ``state.json`` in the run
folder the moment it is spawned, so a supervisor that crashes (or a Robot run
that is killed) leaves enough behind for the next ``up`` or ``down`` to find
and stop every process: no orphans.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import config as cfgmod
from .config import PROXIED, SERVICE_ORDER, START_STAGES, STOP_STAGES, TestbedConfig
from .services import AFTER_READY, SERVICES, ServiceError, port_free, wait_ready

STOP_GRACE_S = 10.0


class TestbedError(RuntimeError):
    """A testbed operation failed; the message says what and how to fix it."""

    __test__ = False


@dataclass
class ServiceStatus:
    name: str
    port: int
    pid: int | None
    alive: bool
    paused: bool = False  # alive but stopped by SIGSTOP (a pause fault, or a killed run's leftover)
    recorded: bool = True  # False: found by its marker only (state.json lost or damaged)


# --------------------------------------------------------------- state --
def _state_path(cfg: TestbedConfig) -> Path:
    return cfg.run_path / "state.json"


# Every process of a testbed carries these in its environment (inherited by its children), so its
# processes are found without state.json: a lost or damaged state file never reads "nothing runs".
MARK_RUN = "XNAI_TESTBED_RUN"
MARK_SERVICE = "XNAI_TESTBED_SERVICE"


def marked_processes(run_path: Path | None = None) -> dict[str, list[psutil.Process]]:
    """{run folder: live processes of that testbed}, by their environment marker; every testbed's
    (``run_path`` None) or one's."""
    want = str(Path(run_path).resolve()) if run_path is not None else None
    found: dict[str, list[psutil.Process]] = {}
    for proc in psutil.process_iter():
        try:
            env = proc.environ()
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
        except psutil.Error:
            continue
        run = env.get(MARK_RUN)
        if run and (want is None or run == want):
            found.setdefault(run, []).append(proc)
    return found


def _marked_service(proc: psutil.Process) -> str | None:
    try:
        return proc.environ().get(MARK_SERVICE)
    except psutil.Error:
        return None


def read_state(cfg: TestbedConfig) -> dict:
    path = _state_path(cfg)
    if not path.exists():
        return {"services": {}}
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {"services": {}}


def _write_state(cfg: TestbedConfig, state: dict) -> None:
    path = _state_path(cfg)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(cfg: TestbedConfig):
    """One supervisor operation at a time per testbed (also across processes)."""
    cfg.run_path.mkdir(parents=True, exist_ok=True)
    with open(cfg.run_path / "supervisor.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _process(entry: dict | None) -> psutil.Process | None:
    """The live process recorded in ``entry``, or None if gone or pid reused."""
    if not entry:
        return None
    try:
        proc = psutil.Process(entry["pid"])
        if abs(proc.create_time() - entry["create_time"]) > 1.0:
            return None
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        return proc
    except (psutil.Error, KeyError):
        return None


def status(cfg: TestbedConfig) -> list[ServiceStatus]:
    """One row per service: from state.json, and where it has no live entry, from the processes'
    markers (a service found only that way is ``recorded=False``)."""
    state = read_state(cfg)
    marked: dict[str, list[psutil.Process]] = {}
    for proc in marked_processes(cfg.run_path).get(str(cfg.run_path.resolve()), []):
        marked.setdefault(_marked_service(proc) or "?", []).append(proc)
    rows = []
    for name in SERVICE_ORDER:
        entry = state["services"].get(name)
        proc = _process(entry)
        recorded = proc is not None
        if proc is None and marked.get(name):
            proc = min(marked[name], key=lambda p: p.pid)  # the service's first process (its leader)
        try:
            paused = proc is not None and proc.status() == psutil.STATUS_STOPPED
        except psutil.Error:
            paused = False
        pid = proc.pid if proc is not None else entry and entry["pid"]
        rows.append(ServiceStatus(name, cfg.port(SERVICES[name].port_key), pid, proc is not None, paused,
                                  recorded or proc is None))
    return rows


def is_running(cfg: TestbedConfig) -> bool:
    rows = status(cfg)
    return all(r.alive for r in rows)


# ---------------------------------------------------------- start/stop --
def _spawn(name: str, cfg: TestbedConfig) -> subprocess.Popen:
    service = SERVICES[name]
    launch = service.prepare(cfg)
    logs = cfg.run_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(launch.env)
    env.update({MARK_RUN: str(cfg.run_path.resolve()), MARK_SERVICE: name})
    with open(logs / f"{name}.log", "ab") as log:
        log.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} ---\n".encode())
        log.flush()
        return subprocess.Popen(  # noqa: S603 - argv built from our own config
            launch.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=launch.cwd,
            user=launch.user,
            start_new_session=True,
        )


def _log_tail(cfg: TestbedConfig, name: str, lines: int = 25) -> str:
    path = cfg.run_path / "logs" / f"{name}.log"
    if not path.exists():
        return "(no log)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def start_service(cfg: TestbedConfig, name: str) -> None:
    """Start one service (if not alive) and wait until it answers."""
    start_services(cfg, (name,))


def start_services(cfg: TestbedConfig, names: tuple[str, ...]) -> None:
    """Start ``names`` (those not alive) at once and wait until every one answers.

    The services of one start stage do not need each other to come up, so their start-up (mostly
    Python imports) overlaps; a failure names the service and the tail of its log.
    """
    state = read_state(cfg)
    spawned: dict[str, subprocess.Popen] = {}
    for name in names:
        if _process(state["services"].get(name)):
            continue
        port = cfg.port(SERVICES[name].port_key)
        if not port_free(port):
            raise TestbedError(
                f"Port {port} (testbed service '{name}') is already in use by another program. "
                f"Free it, or move the whole testbed with XNAI_TESTBED_BASE_PORT (now {cfg.base_port}; "
                f"the testbed uses {cfg.base_port}..{cfg.base_port + max(cfgmod.PORT_OFFSETS.values())}).")
        try:
            proc = _spawn(name, cfg)
        except ServiceError as err:
            raise TestbedError(str(err)) from err
        spawned[name] = proc
        ps = psutil.Process(proc.pid)
        state["services"][name] = {"pid": proc.pid, "create_time": ps.create_time(), "argv0": ps.name()}
        _write_state(cfg, state)  # on record at once: a supervisor killed now leaves nothing unknown
    if not spawned:
        return
    with ThreadPoolExecutor(max_workers=len(spawned), thread_name_prefix="testbed-start") as pool:
        outcomes = [(name, pool.submit(_become_ready, cfg, name, proc)) for name, proc in spawned.items()]
    errors = [f"{problem}. Last lines of {cfg.run_path / 'logs' / (name + '.log')}:\n{_log_tail(cfg, name)}"
              for name, future in outcomes if (problem := future.exception()) is not None]
    if errors:
        raise TestbedError("\n".join(errors))


def _become_ready(cfg: TestbedConfig, name: str, proc: subprocess.Popen) -> None:
    wait_ready(SERVICES[name], cfg, alive=lambda: proc.poll() is None)
    if name in AFTER_READY:
        AFTER_READY[name](cfg)


def stop_service(cfg: TestbedConfig, name: str, grace_s: float = STOP_GRACE_S) -> bool:
    """Stop one service's whole process group: SIGTERM, then SIGKILL after ``grace_s``.

    Returns True if something was running.
    """
    return bool(stop_services(cfg, (name,), grace_s))


def stop_services(cfg: TestbedConfig, names: tuple[str, ...], grace_s: float = STOP_GRACE_S) -> list[str]:
    """Stop the process groups of ``names`` at once (each with its own stop signal, then SIGKILL after
    ``grace_s``); returns those that were running."""
    state = read_state(cfg)
    groups = []  # (name, group id, members): the ids are taken before any signal, while the leaders live
    for name in names:
        proc = _process(state["services"].pop(name, None))
        pgid = _pgid(proc) if proc is not None else None
        if pgid is not None:
            groups.append((name, pgid, _group_members(proc, pgid)))
    for name, pgid, _ in groups:
        _signal_group(pgid, SERVICES[name].stop_signal if name in SERVICES else signal.SIGTERM)
    alive = _wait_gone([member for _, _, members in groups for member in members], grace_s)
    if alive:
        for _, pgid, _ in groups:
            _signal_group(pgid, signal.SIGKILL)
        _wait_gone(alive, 5)
    _write_state(cfg, state)
    return [name for name, _, _ in groups]


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
        if sig != signal.SIGKILL:
            os.killpg(pgid, signal.SIGCONT)  # a paused service must wake up to handle SIGTERM


def _group_members(proc: psutil.Process, pgid: int) -> list[psutil.Process]:
    """``proc`` and its descendants in its own process group: a service the health monitor restarted is
    the monitor's child but leads a group of its own, is not signalled with it and is stopped under its
    own name."""
    members = [proc]
    with contextlib.suppress(psutil.Error):
        members += [child for child in proc.children(recursive=True) if _pgid(child) == pgid]
    return members


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except (ProcessLookupError, PermissionError):
        return None


def _wait_gone(procs: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until ``procs`` have exited; returns those still alive after ``timeout_s``.

    A zombie counts as gone (and is reaped when it is this process's child): a service restarted by
    the health monitor is the monitor's child, and nobody else can reap it.
    """
    deadline = time.monotonic() + timeout_s
    alive = list(procs)
    while alive:
        still = []
        for proc in alive:
            try:
                if proc.status() == psutil.STATUS_ZOMBIE:
                    with contextlib.suppress(ChildProcessError, OSError):
                        os.waitpid(proc.pid, os.WNOHANG)
                    continue
                still.append(proc)
            except psutil.NoSuchProcess:
                continue
        alive = still
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return alive


def signal_service(cfg: TestbedConfig, name: str, sig: signal.Signals) -> bool:
    """Send ``sig`` to a running service's process group.  False if it is not running."""
    proc = _process(read_state(cfg)["services"].get(name))
    if proc is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(proc.pid), sig)
    return True


def kill_service(cfg: TestbedConfig, name: str) -> bool:
    """SIGKILL the whole group at once (no grace); the state keeps the dead entry."""
    proc = _process(read_state(cfg)["services"].get(name))
    if proc is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(proc.pid), signal.SIGKILL)
    _wait_gone([proc], 10)
    return True


def service_action(cfg: TestbedConfig, action: str, name: str, grace_s: float = STOP_GRACE_S,
                   only_if: Callable[[], bool] | None = None) -> str:
    """stop | kill | start | restart | pause | resume one service; returns what happened.

    ``only_if`` is asked once the supervisor's lock is held: when it returns False nothing is done
    (the health monitor re-checks a service there, so it never restarts one that somebody else has
    just restarted).
    """
    if name not in SERVICES:
        raise TestbedError(f"No testbed service '{name}'. Services: {', '.join(SERVICE_ORDER)}.")
    if action == "resume":
        # Without the lock: waking a paused service is idempotent and must never wait for a restart that
        # holds the lock (the health monitor restarting a service that hangs on the paused one kept a
        # 5 s pause in place for 19 s).
        return "resumed" if signal_service(cfg, name, signal.SIGCONT) else "was not running"
    with _locked(cfg):
        if only_if is not None and not only_if():
            return "skipped: the condition no longer holds"
        if action in ("start", "restart") and read_state(cfg).get("owner") is None:
            raise TestbedError("The testbed is not up; start it with 'python -m testbed up'.")
        if action == "stop":
            return "stopped" if stop_service(cfg, name, grace_s) else "was not running"
        if action == "kill":
            return "killed" if kill_service(cfg, name) else "was not running"
        if action == "start":
            alive = _process(read_state(cfg)["services"].get(name)) is not None
            start_service(cfg, name)
            return "was running" if alive else "started"
        if action == "restart":
            stop_service(cfg, name, grace_s)
            start_service(cfg, name)
            return "restarted"
        if action == "pause":
            return "paused" if signal_service(cfg, name, signal.SIGSTOP) else "was not running"
    raise TestbedError(f"Unknown action '{action}': use stop, kill, start, restart, pause or resume.")


def service_pid(cfg: TestbedConfig, name: str) -> int | None:
    proc = _process(read_state(cfg)["services"].get(name))
    return proc.pid if proc else None


def up(cfg: TestbedConfig, *, owner: str = "manual") -> bool | list[str]:
    """Start every service in dependency order.  Returns False if already running; the names it
    started when it repaired a testbed that had come up whole and lost some services since (its
    owner stays: a hand-started testbed stays hand-started, and is left running by a suite run)."""
    with _locked(cfg):
        if is_running(cfg):
            return False
        state = read_state(cfg)
        rows = status(cfg)
        if state.get("complete") and state.get("owner") and any(r.alive and r.recorded for r in rows):
            dead = [r.name for r in rows if not r.alive]
            for stage in START_STAGES:
                start_services(cfg, stage)  # starts only those not alive
            return dead
        # Leftovers of a crashed supervisor or a killed run: stop them first.
        for stage in STOP_STAGES:
            stop_services(cfg, stage)
        busy = [
            (name, cfg.port(SERVICES[name].port_key))
            for name in SERVICE_ORDER
            if not port_free(cfg.port(SERVICES[name].port_key))
        ]
        for extra in ("caddy_admin", *(name + "_proxy" for name in PROXIED)):
            if not port_free(cfg.port(extra)):
                busy.append((extra, cfg.port(extra)))
        if busy:
            names = ", ".join(f"{port} ({name})" for name, port in busy)
            raise TestbedError(
                f"Port(s) already in use: {names}. Free them, or move the testbed with "
                f"XNAI_TESTBED_BASE_PORT (now {cfg.base_port})."
            )
        state = read_state(cfg)
        state["owner"] = owner
        state["started_at"] = time.time()
        _write_state(cfg, state)
        try:
            for stage in START_STAGES:
                start_services(cfg, stage)
        except BaseException:
            for stage in STOP_STAGES:
                stop_services(cfg, stage)
            raise
        state = read_state(cfg)
        state["complete"] = True  # came up whole: from now on a lost service is repaired, not the stack
        _write_state(cfg, state)
        return True


def down(cfg: TestbedConfig) -> list[str]:
    """Stop every service (reverse order).  Returns the names that were running."""
    with _locked(cfg):
        stopped = []
        for stage in STOP_STAGES:
            started = time.monotonic()
            names = stop_services(cfg, stage)
            took = time.monotonic() - started
            # A stop that needed more than a second waited out a grace: say so, it costs every run.
            stopped += names if took < 1.0 or not names else [f"{'+'.join(names)} (took {took:.1f} s)"]
        state = read_state(cfg)
        state.pop("owner", None)
        state.pop("complete", None)
        _write_state(cfg, state)
        strays = stop_strays(cfg)
        if strays:
            stopped.append(f"{len(strays)} process(es) not in state.json ({', '.join(sorted(set(strays)))})")
        return stopped


def stop_strays(cfg: TestbedConfig, grace_s: float = STOP_GRACE_S) -> list[str]:
    """Stops every process of this testbed that its marker finds but state.json no longer knows
    (a lost or damaged state file, a killed supervisor); returns their services' names."""
    procs = [p for p in marked_processes(cfg.run_path).get(str(cfg.run_path.resolve()), []) if p.pid != os.getpid()]
    names = [_marked_service(p) or "?" for p in procs]
    stop_processes(procs, grace_s)
    return [name for name in names if name != "watchdog"]  # its watchdog ends with the testbed, unremarked


def stop_processes(procs: list[psutil.Process], grace_s: float = STOP_GRACE_S) -> None:
    """SIGCONT (a paused process cannot act on SIGTERM), SIGTERM, then SIGKILL after ``grace_s``."""
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
    for proc in _wait_gone(procs, grace_s):
        with contextlib.suppress(psutil.Error):
            proc.kill()


def clean(cfg: TestbedConfig) -> list[str]:
    """Delete a stopped testbed's run folder and its PostgreSQL data (wherever it lives).  Refuses while
    any process of this testbed lives, whatever state.json says (it may be lost or damaged)."""
    import shutil  # noqa: PLC0415

    from .services import postgres_data_dir  # noqa: PLC0415

    alive = marked_processes(cfg.run_path).get(str(cfg.run_path.resolve()), [])
    if alive:
        raise TestbedError(f"{len(alive)} process(es) of this testbed still run (pids "
                           f"{', '.join(str(p.pid) for p in alive[:8])}): run 'python -m testbed down' first.")

    removed = []
    pgdata = postgres_data_dir(cfg)
    for path in (pgdata, pgdata.with_suffix(".id"), cfg.run_path):
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(str(path))
        elif path.exists():
            path.unlink()
            removed.append(str(path))
    return removed


def start_watchdog(cfg: TestbedConfig, pid: int) -> None:
    """A detached ``python -m testbed watch`` that stops this testbed when process ``pid`` (the robot
    run that started it) ends without stopping it: a run killed with SIGKILL leaves no testbed."""
    import sys  # noqa: PLC0415

    started_at = read_state(cfg).get("started_at")
    env = {**os.environ, MARK_RUN: str(cfg.run_path.resolve()), MARK_SERVICE: "watchdog",
           "XNAI_TESTBED_BASE_PORT": str(cfg.base_port)}
    logs = cfg.run_path / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "watchdog.log", "ab") as log:
        subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "testbed", "watch", "--pid", str(pid), "--started-at", repr(started_at)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            cwd=Path(__file__).resolve().parent.parent, start_new_session=True)


def watch(cfg: TestbedConfig, pid: int, started_at: float) -> int:
    """Waits for ``pid`` to end; then, if the testbed it started still runs (same start, owner robot),
    stops it. A later run's testbed, or a hand-started one, is left alone."""
    with contextlib.suppress(psutil.NoSuchProcess):
        psutil.Process(pid).wait()  # blocks for the life of the run; no polling loop of ours
    state = read_state(cfg)
    if state.get("owner") == "robot" and state.get("started_at") == started_at:
        print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} robot process {pid} ended without stopping its testbed: "
              "stopping it", flush=True)
        print("stopped: " + ", ".join(down(cfg)), flush=True)
    return 0


def faults_in_place(cfg: TestbedConfig) -> list[str]:
    """What a run left broken: the fault ledger's open entries (a killed run's), the fault proxy's
    toxics and disabled proxies. One line each."""
    import urllib.request  # noqa: PLC0415

    lines = []
    ledger = cfg.run_path / "fault-ledger.jsonl"
    if ledger.exists():
        from xnai_contract.ledger import Ledger  # noqa: PLC0415 - the ledger's format, shared with the suite

        for record in Ledger(ledger).pending():
            lines.append(f"ledger {record['id']}: {record['kind']} on {record['service']} (by pid {record.get('pid')}; "
                         f"'python -m xnai_qa.faults heal {ledger}' undoes it)")
    try:
        direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via HTTP_PROXY
        with direct.open(f"http://127.0.0.1:{cfg.port('faultproxy')}/proxies", timeout=2) as resp:
            proxies = json.loads(resp.read())
    except (OSError, ValueError):
        proxies = {}
    for name, proxy in sorted(proxies.items()):
        if not proxy.get("enabled", True):
            lines.append(f"proxy {name}: disabled (its service is cut off)")
        for toxic in proxy.get("toxics", []):
            lines.append(f"proxy {name}: toxic {toxic['name']} ({toxic['type']} {toxic.get('attributes')})")
    return lines


def owner_of(run_path: Path) -> str | None:
    """The owner a run folder's state.json names (None when it has none or cannot be read)."""
    try:
        return json.loads((run_path / "state.json").read_text()).get("owner")
    except (OSError, ValueError, AttributeError):
        return None


def owner(cfg: TestbedConfig) -> str | None:
    return read_state(cfg).get("owner")
