"""``python tools/container_lane.py [--engine URL] [--base-port N] [robot options]``: the testbed as a
compose project of containers, and the suites against it from this host.

1. The image: ``docker/Dockerfile`` on the Debian base made without a registry (``tools/images.py``).
2. The shared config: ``<lane>/testbed/run-<base>/config.json`` with fresh secrets, no fault proxy, no
   debug routes, the monitor's restarts through the engine (``testbed/config.py``).
3. ``docker-compose -p <project> -f docker/compose.testbed.yml up -d`` on that engine (Debian's
   docker-compose 1.29, which speaks the Docker API: Docker's, or Podman's compatible socket); every
   service healthy within a bound.
4. The suites from the host through ``variables/xnai_host.py`` (the stack's published ports, Redis
   without TLS, the container engine as fault backend on this project), with pabot and the real-stack
   order; every test must PASS or SKIP naming a capability.
5. From inside: ``docker/compose.suite.yml``'s runner service in the same project (``--profile qa run
   xnai-suite``), on host networking with the stack's names on loopback (``compose.testbed.yml``), runs
   KG-1 and the task service's suite through ``variables/xnai_compose.py`` (names, the mounted engine
   socket as fault backend); its results in ``<results>/inside``.
6. The proof through the lane (``--proof``): each switch of PROOF_SWITCHES on in config.json, the project
   restarted, its claimed tests must fail and no other test of the read-only suites around them.
7. ``docker-compose down -v`` and the lane's folder removed, whatever happened.  A lane killed outright
   cannot do that: the next lane first stops a private engine whose lane is gone (``engines.heal``) and
   removes what an earlier lane left of its project on the ``--engine`` it is given.

Results in ``results/container-lane/`` (``output.xml``, ``log.html``, ``report.html``, ``compose.log``).
The exit code is robot's (0: no test failed), or 2 when the lane could not be set up.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker" / "compose.testbed.yml"
SUITE_FILE = ROOT / "docker" / "compose.suite.yml"  # the runner service, as a user adds it to their stack
PROJECT = "xnai-lane"  # the compose project: the only containers the suites' faults may touch
SERVICES = ("redis", "postgres", "embeddings", "rag", "vikunja", "mkdocs", "ui", "monitor", "caddy")
HEALTHY_BOUND_S = 180.0
ENGINE_IN_CONTAINER = "unix:///var/run/docker.sock"  # where the monitor's container sees the engine socket
ENGINE_PREFIX = "xnai-lane-engine-"  # /tmp/<this>*: the lane's private engine (engines.heal finds a killed one's)


class LaneError(RuntimeError):
    """The lane could not be set up; the message says what to install or fix."""


def _offsets() -> dict[str, int]:
    sys.path.insert(0, str(ROOT))
    from testbed.config import PORT_OFFSETS  # noqa: PLC0415 - after the path is set

    return PORT_OFFSETS


ALERT_OFFSET = 95  # the suite's alert receiver, base + this: the monitor is configured to call it


def write_config(home: Path, base_port: int, engine_socket: str, defects: tuple[str, ...] = (),
                 keep: dict | None = None) -> dict:
    """The one config.json every container reads (paths as the containers see them: /testbed): fresh
    secrets, or those of ``keep`` (the config written before) with these ``defects`` switched on."""
    from testbed.config import TestbedConfig  # noqa: PLC0415

    held = keep or {"redis_password": secrets.token_urlsafe(18), "postgres_password": secrets.token_urlsafe(18),
                    "vikunja_token": secrets.token_urlsafe(24), "instance_id": secrets.token_hex(8)}
    cfg = TestbedConfig(
        base_port=base_port, run_dir=f"/testbed/run-{base_port}", profile="fast",
        redis_password=held["redis_password"], postgres_password=held["postgres_password"],
        vikunja_token=held["vikunja_token"], instance_id=held["instance_id"], defects=list(defects),
        fault_proxy=False, container_engine=engine_socket, compose_project=PROJECT,
        alert_urls=[f"http://127.0.0.1:{base_port + ALERT_OFFSET}/alerts"])
    run = home / f"run-{base_port}"
    run.mkdir(parents=True, exist_ok=True)
    run.chmod(0o755)  # the run folder is reachable by PostgreSQL's unprivileged user
    (run / "config.json").write_text(cfg.to_json())
    return asdict(cfg)


def compose(args: list[str], env: dict[str, str], log: Path, timeout: float = 600, files=(COMPOSE_FILE,),
            check: bool = True) -> int:
    """``docker-compose -p <project> -f <files> <args>``, its output appended to ``log``; a failure raises
    (``check``) or is returned (the runner container's exit code is the suites' verdict)."""
    tool = shutil.which("docker-compose")
    if not tool:
        raise LaneError("docker-compose is not installed (Debian/Ubuntu: apt-get install docker-compose; "
                        "./qa test does it as root)")
    chosen = [arg for path in files for arg in ("-f", str(path))]
    with log.open("a") as out:
        out.write(f"\n$ docker-compose {' '.join(args)}\n")
        out.flush()
        result = subprocess.run([tool, "-p", PROJECT, *chosen, *args], env=env,  # noqa: S603
                                stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise LaneError(f"docker-compose {args[0]} failed (exit {result.returncode}); see {log}:\n"
                        + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    return result.returncode


def _project_containers(engine) -> list:
    return engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"})


def wait_healthy(engine, bound_s: float = HEALTHY_BOUND_S) -> float:
    """Polls the project's containers until every service is healthy; returns the seconds it took."""
    started = time.monotonic()
    while True:
        found = _project_containers(engine)
        health = {c.labels.get("com.docker.compose.service"): c.attrs["State"].get("Health", {}).get("Status")
                  for c in found}
        if all(health.get(name) == "healthy" for name in SERVICES):
            return time.monotonic() - started
        if time.monotonic() - started > bound_s:
            raise LaneError(f"not every service healthy within {bound_s:.0f} s: {health}")
        time.sleep(0.5)


def suite_env(cfg: dict, base_port: int, engine_url: str, lane: Path) -> dict[str, str]:
    """The environment of variables/xnai_host.py for this project's ports, secrets and engine."""
    port = {name: base_port + offset for name, offset in _offsets().items()}
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # pabot runs `robot`
        "XNAI_VARIABLES": "variables/xnai_host.py", "XNAI_PROFILE": "fast",
        "XNAI_GATEWAY_PORT": str(port["gateway"]), "XNAI_RAG_API_PORT": str(port["rag_api"]),
        "XNAI_REDIS_PORT": str(port["redis"]), "XNAI_POSTGRES_PORT": str(port["postgres"]),
        "XNAI_VIKUNJA_PORT": str(port["vikunja"]), "XNAI_MKDOCS_PORT": str(port["mkdocs"]),
        "XNAI_UI_PORT": str(port["ui"]),
        "XNAI_MONITOR_URL": f"http://127.0.0.1:{port['monitor']}",
        "XNAI_ALERT_RECEIVER_PORT": str(base_port + ALERT_OFFSET),
        "XNAI_REDIS_PASSWORD": cfg["redis_password"], "XNAI_REDIS_TLS": "0",
        "XNAI_VIKUNJA_TOKEN": cfg["vikunja_token"], "XNAI_VIKUNJA_DB_PASSWORD": cfg["postgres_password"],
        "XNAI_FAULT_BACKEND": "docker", "XNAI_COMPOSE_PROJECT": PROJECT, "DOCKER_HOST": engine_url,
        "XNAI_FAULT_LEDGER": str(lane / "faults.jsonl"),
    }


# From inside, the runner container runs the suites that read the stack by its names and fault it through
# the mounted engine socket (KG-1; the task service, whose database it restarts): the rest of the
# suites ran from the host already, against the same services.
INSIDE_SUITES = ("Kg1 Service Integration", "Vikunja Integration")


def run_inside(cfg: dict, base_port: int, engine_socket: str, image: str, lane: Path, env: dict[str, str],
               log: Path, suites=INSIDE_SUITES) -> int:
    """docker/compose.suite.yml's runner in this project (``--profile qa run xnai-suite``): the suites with
    ``variables/xnai_compose.py`` from inside a container, results in ``<lane>/inside``."""
    port = {name: base_port + offset for name, offset in _offsets().items()}
    inside = lane / "inside"
    inside.mkdir()
    ca = lane / "no-redis-ca.crt"  # the lane's Redis has no TLS; the override mounts a CA file all the same
    ca.touch()
    run_env = {**env, "XNAI_SUITE_DIR": str(ROOT), "XNAI_SUITE_IMAGE": image,
               "XNAI_COMPOSE_PROJECT": PROJECT, "XNAI_ENGINE_SOCKET": engine_socket, "XNAI_PROFILE": "fast",
               "REDIS_PASSWORD": cfg["redis_password"], "XNAI_REDIS_CA_FILE": str(ca), "XNAI_REDIS_TLS": "0",
               "XNAI_VIKUNJA_TOKEN": cfg["vikunja_token"], "XNAI_VIKUNJA_DB_PASSWORD": cfg["postgres_password"],
               "XNAI_MONITOR_URL": f"http://127.0.0.1:{port['monitor']}"}
    ports = {"XNAI_GATEWAY_PORT": port["gateway"], "XNAI_RAG_API_PORT": port["rag_api"],
             "XNAI_REDIS_PORT": port["redis"], "XNAI_POSTGRES_PORT": port["postgres"],
             "XNAI_VIKUNJA_PORT": port["vikunja"], "XNAI_MKDOCS_PORT": port["mkdocs"], "XNAI_UI_PORT": port["ui"]}
    args = ["--profile", "qa", "run", "--rm", "--no-deps", "-v", f"{inside}:/suite/results/inside",
            "-e", "XNAI_RESULTS=results/inside", *(a for k, v in ports.items() for a in ("-e", f"{k}={v}")),
            "xnai-suite", *(a for name in suites for a in ("--suite", name))]
    return compose(args, run_env, log, timeout=1200, files=(COMPOSE_FILE, SUITE_FILE), check=False)


# The proof through the lane: switches a real stack could have (every test that claims one needs only
# what the lane offers), one or two per area, so the proof stays a few minutes. Each is switched on in
# config.json, the project restarted, and its claimed tests run with the read-only suites around them:
# the claimed tests must fail, no other test may. tests/proof runs every switch on the process testbed.
PROOF_SWITCHES = ("no-request-id", "cache-never-written", "validation-as-500", "use-rag-ignored",
                  "tasks-no-reconnect", "monitor-failures-not-reset")
AROUND = ("Kg1 Service Integration", "Vikunja Integration", "Error Handling", "Rag Integration")


def prove(switch: str, claimed: tuple[str, ...], run_suites, restart) -> str:
    """"" when exactly ``claimed`` failed with ``switch`` on, else the mismatch."""
    restart((switch,))
    output = run_suites(switch, [f"Suites.{claim}" for claim in claimed] + [f"Suites.{name}.*" for name in AROUND])
    from robot.api import ExecutionResult  # noqa: PLC0415

    tests = {t.full_name.removeprefix("Suites."): t for t in ExecutionResult(str(output)).suite.all_tests}
    ran = [name for name in claimed if name in tests and tests[name].status != "SKIP"]
    wrong = [f"claimed, {tests[name].status}: {name}" for name in ran if tests[name].status != "FAIL"]
    wrong += [f"not claimed, FAIL: {name}: {t.message[:200]}" for name, t in tests.items()
              if t.status == "FAIL" and name not in claimed]
    if not ran:
        wrong.append(f"no claimed test ran (claimed: {', '.join(claimed)})")
    return "; ".join(wrong)


def claims_of(switches: list[str]) -> dict[str, tuple[str, ...]]:
    """The tests that claim each switch (their catches: tags); a switch no test claims is refused."""
    sys.path.insert(0, str(ROOT / "libraries"))
    from xnai_qa import claims  # noqa: PLC0415 - the suites' catches: tags

    claimed = claims.read()
    unknown = [name for name in switches if name not in claimed]
    if unknown:
        raise LaneError(f"--proof names switches no test claims: {', '.join(unknown)} (./qa defects lists them)")
    return {name: claimed[name] for name in switches}


def proof(switches: list[str], cfg: dict, base_port: int, engine, engine_url: str, env: dict[str, str],
          log: Path, home: Path, results: Path) -> list[str]:
    """Each switch proven through the lane (see PROOF_SWITCHES); the mismatches, also printed."""
    if not switches:
        return []
    claimed = claims_of(switches)

    def restart(defects: tuple[str, ...]) -> None:
        write_config(home, base_port, ENGINE_IN_CONTAINER, defects, keep=cfg)
        compose(["restart", "-t", "10"], env, log)
        wait_healthy(engine)

    def run_suites(switch: str, tests: list[str]) -> Path:
        out = results / "proof" / switch
        subprocess.run([sys.executable, "-m", "robot", "--variablefile", "variables/xnai_host.py",  # noqa: S603
                        "--outputdir", str(out), "--report", "NONE", "--log", "log.html", "--console", "none",
                        *(a for test in tests for a in ("--test", test)), "suites/"],
                       cwd=ROOT, env=suite_env(cfg, base_port, engine_url, results), timeout=1200, check=False)
        return out / "output.xml"

    mismatches = []
    try:
        for switch in switches:
            started = time.monotonic()
            wrong = prove(switch, claimed[switch], run_suites, restart)
            print(f"[lane] proof: {switch}: {'as claimed' if not wrong else 'MISMATCH: ' + wrong} "
                  f"({len(claimed[switch])} claimed, {time.monotonic() - started:.0f} s)", flush=True)
            if wrong:
                mismatches.append(f"{switch}: {wrong}")
    finally:
        restart(())  # the project as it was: no switch on
    print(f"[lane] proof: {len(switches)} switches, "
          f"{'no mismatch' if not mismatches else str(len(mismatches)) + ' mismatched'}", flush=True)
    return mismatches


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", help="a running engine's API URL (default: a private dockerd for the lane, "
                                         "started and removed here; root needed)")
    parser.add_argument("--base-port", type=int, default=32100, help="the services' ports: base + offset")
    parser.add_argument("--results", default=str(ROOT / "results" / "container-lane"))
    parser.add_argument("--proof", default=",".join(PROOF_SWITCHES),
                        help="defect switches to prove through the lane, comma-separated, or none "
                             f"(default: {','.join(PROOF_SWITCHES)})")
    parser.add_argument("--no-inside", action="store_true",
                        help="skip the run from the runner container (docker/compose.suite.yml)")
    args, robot_args = parser.parse_known_args(argv)
    switches = [name for name in args.proof.split(",") if name and name != "none"]
    try:
        claims_of(switches)  # a wrong --proof stops the lane before anything starts
    except LaneError as err:
        parser.error(str(err))
    sys.path.insert(0, str(ROOT / "tools"))
    import engines  # noqa: PLC0415 - tools/engines.py
    import images  # noqa: PLC0415 - tools/images.py

    results = Path(args.results)
    shutil.rmtree(results, ignore_errors=True)
    results.mkdir(parents=True)
    home = results / "testbed"
    log = results / "compose.log"
    started = time.monotonic()
    private = engine = None
    try:
        if args.engine:
            engine_url = args.engine
        else:
            reason = engines.why_not("docker")
            if reason:
                raise LaneError(f"no private Docker engine for the lane: {reason}")
            for healed in engines.heal(ENGINE_PREFIX):
                print(f"[lane] healed: {healed}", flush=True)
            private = engines.start("docker", Path(tempfile.mkdtemp(prefix=ENGINE_PREFIX)))
            engine_url = private.url
        env = {**os.environ, "DOCKER_HOST": engine_url, "XNAI_TESTBED_DIR": str(home),
               "XNAI_TESTBED_BASE_PORT": str(args.base_port),
               "XNAI_LANE_ENGINE_SOCKET": engine_url.removeprefix("unix://")}
        engine = images.client(engine_url)
        left = _project_containers(engine)
        if left:  # a killed lane's project on a running engine (--engine)
            compose(["down", "-v", "--remove-orphans", "--timeout", "10"], env, log, timeout=300)
            print(f"[lane] healed: {len(left)} container(s) of an earlier lane's project {PROJECT} removed", flush=True)
        images.build_runner(engine)
        cfg = write_config(home, args.base_port, ENGINE_IN_CONTAINER)
        compose(["up", "-d"], env, log)
        print(f"[lane] {len(SERVICES)} services healthy after {wait_healthy(engine):.0f} s "
              f"({time.monotonic() - started:.0f} s with the image)", flush=True)
        run = subprocess.run(  # noqa: S603 - the project's own runner
            [sys.executable, "-m", "pabot.pabot", "--processes", "2", "--pabotlibport", "0",
             "--ordering", str(ROOT / "suites" / "pabot-order-real-stack.txt"),
             "--variablefile", "variables/xnai_host.py", "--outputdir", str(results),
             "--tagstatexclude", "catches:*", "--console", "dotted", *robot_args, "suites/"],
            cwd=ROOT, env=suite_env(cfg, args.base_port, engine_url, results), timeout=3600, check=False)
        inside_rc = 0
        if not args.no_inside:
            inside_started = time.monotonic()
            inside_rc = run_inside(cfg, args.base_port, engine_url.removeprefix("unix://"), images.RUNNER_TAG,
                                   results, env, log)
            print(f"[lane] from the runner container ({', '.join(INSIDE_SUITES)}): exit {inside_rc} in "
                  f"{time.monotonic() - inside_started:.0f} s; results in {results / 'inside'}", flush=True)
        mismatches = proof(switches, cfg, args.base_port, engine, engine_url, env, log, home, results)
        return run.returncode or inside_rc or (1 if mismatches else 0)
    except (LaneError, images.ImageError, RuntimeError) as err:
        print(f"container lane: {err}", file=sys.stderr)
        return 2
    finally:
        if engine is not None:
            try:
                compose(["logs", "--no-color"], env, log, timeout=120)
                compose(["down", "-v", "--remove-orphans", "--timeout", "10"], env, log, timeout=300)
            except LaneError as err:
                print(f"container lane: {err}", file=sys.stderr)
            engine.close()
        if private is not None:
            private.stop()
        shutil.rmtree(home, ignore_errors=True)
        print(f"[lane] {time.monotonic() - started:.0f} s in all; results in {results}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
