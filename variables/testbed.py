"""Target: the embedded testbed (the default).

Imported by every suite through ``resources/xnai.resource``, where it is the default: with a
variables file on the command line (``--variablefile variables/xnai_host.py``) it returns nothing.
The testbed's ports follow ``XNAI_TESTBED_BASE_PORT`` (default 18000); its secrets live in its run
folder (``.testbed/run-<port>/config.json``, mode 0600) and are asked of the testbed's own CLI, so
this file shares no code with the testbed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

from robot.api.types import Secret
from xnai_qa.targetconfig import common_variables

REPO_ROOT = Path(__file__).resolve().parent.parent


POOL_STRIDE = 100  # each concurrent robot process gets its own testbed, 100 ports further up
MAX_SLOTS = 16
SLOT_ENV = "XNAI_TESTBED_SLOT"  # this process's slot, once taken


def _slot() -> int:
    """This process's testbed slot: the first of ``MAX_SLOTS`` lock files nobody else holds.

    pabot's ``PABOTEXECUTIONPOOLID`` is handed out round-robin per suite, so two suites running at the
    same time can get the same id; an exclusive lock cannot.  The lock is held (by a raw descriptor
    that is never closed) until this robot process exits; the slot is remembered in the environment so
    every import of this file in the process agrees.
    """
    import fcntl  # noqa: PLC0415

    if os.environ.get(SLOT_ENV, "").isdigit():
        return int(os.environ[SLOT_ENV])
    home = Path(os.environ.get("XNAI_TESTBED_HOME") or REPO_ROOT / ".testbed")
    slots = home / "slots"
    slots.mkdir(parents=True, exist_ok=True)
    for slot in range(MAX_SLOTS):
        fd = os.open(slots / f"slot-{slot}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        os.environ[SLOT_ENV] = str(slot)  # the descriptor stays open: the lock lives as long as the process
        return slot
    raise RuntimeError(f"All {MAX_SLOTS} testbed slots in {slots} are taken: run fewer robot processes at once.")


def _describe_testbed() -> dict:
    env = dict(os.environ)
    base = int(env.get("XNAI_TESTBED_BASE_PORT") or 18000)
    env["XNAI_TESTBED_BASE_PORT"] = str(base + POOL_STRIDE * _slot())
    result = subprocess.run(
        [sys.executable, "-m", "testbed", "describe"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"python -m testbed describe failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def _reach() -> str:
    reach = os.environ.get("XNAI_TESTBED_REACH", "") or "full"
    if reach not in ("full", "bare"):
        raise ValueError(f"XNAI_TESTBED_REACH={reach!r}: use full (the default) or bare.")
    return reach


def _target_chosen_elsewhere() -> bool:
    """True when a variables file given on the command line already named the target: then this
    default, imported by every suite through ``resources/xnai.resource``, adds nothing (no testbed
    slot, no ``.testbed/``, and no value of the testbed's fills a gap in the user's file: a missing
    variable stops the run, naming it)."""
    try:
        from robot.libraries.BuiltIn import BuiltIn, RobotNotRunningError  # noqa: PLC0415
    except ImportError:
        return False
    try:
        return BuiltIn().get_variable_value("${TARGET}") is not None
    except RobotNotRunningError:  # loaded outside a run (tests, tools)
        return False


def get_variables():
    if _target_chosen_elsewhere():
        return {}
    cfg = _describe_testbed()
    ports = cfg["ports"]
    host = "127.0.0.1"

    def http(service: str) -> str:
        return f"http://{host}:{ports[service]}"

    variables = common_variables(os.environ.get("XNAI_PROFILE") or cfg["profile"])
    variables.update(
        {
            "TARGET": "testbed",
            # full: with the testbed's controls (debug routes, fault proxy, process control); bare: without
            # them, as the suite would reach a real stack (XNAI_TESTBED_REACH=bare).
            "TESTBED_REACH": _reach(),
            "TESTBED_BASE_PORT": cfg["base_port"],
            "TESTBED_RUN_DIR": cfg["run_dir"],
            "SERVICES": {
                "gateway": {"host": host, "port": ports["gateway"], "health_json": True,
                            "health_url": http("gateway") + "/xnai/api/v1/health"},
                "rag_api": {"host": host, "port": ports["rag_api"], "health_json": True,
                            "health_url": http("rag_api") + "/xnai/api/v1/health",
                            "proxy": "rag_api", "proxy_url": http("rag_api_proxy")},
                "redis": {"host": host, "port": ports["redis"], "proxy": "redis", "proxy_port": ports["redis_proxy"]},
                "postgres": {"host": host, "port": ports["postgres"], "proxy": "postgres",
                             "proxy_port": ports["postgres_proxy"]},
                "embeddings": {"host": host, "port": ports["embeddings"], "health_json": True,
                               "health_url": http("embeddings") + "/health"},
                "vikunja": {"host": host, "port": ports["vikunja"], "health_json": True,
                            "health_url": http("vikunja") + "/api/v1/info"},
                "mkdocs": {"host": host, "port": ports["mkdocs"], "health_url": http("mkdocs") + "/"},
                "ui": {"host": host, "port": ports["ui"], "health_url": http("ui") + "/",
                       "monitor_name": "chainlit_ui"},
                "monitor": {"host": host, "port": ports["monitor"], "health_json": True,
                            "health_url": http("monitor") + "/health"},
                "faultproxy": {"host": host, "port": ports["faultproxy"],
                               "health_url": http("faultproxy") + "/version"},
                "voice": {"host": host, "port": ports["voice"], "health_json": True,
                          "health_url": http("voice") + "/health"},
            },
            "REQUIRED_SERVICES": ["gateway", "rag_api", "redis", "postgres", "vikunja", "mkdocs", "ui", "monitor"],
            "GATEWAY_URL": http("gateway"),
            "RAG_API_URL": http("rag_api"),
            "REDIS_URL": f"redis://{host}:{ports['redis']}/0",
            "REDIS_PASSWORD": Secret(cfg["redis_password"]),
            "REDIS_CA_FILE": "",
            "STREAM_DEBUG_PATH": "/_debug/streams",
            "LLM_CONTROL_PATH": "/_debug/llm",
            "BREAKER_CONTROL_PATH": "/_debug/breakers",
            "CASCADE": {"downstream_service": "embeddings", "downstream_breaker": "embeddings",
                        "upstream_breaker": "rag_api", "error_budget": 0.01},
            "SERVICE_LOG_DIR": f"{cfg['run_dir']}/logs",
            "FAULT_BACKEND": "process",
            "FAULT_PROXY_URL": http("faultproxy"),
            "FAULT_LEDGER": f"{cfg['run_dir']}/fault-ledger.jsonl",
            "DOCKER_URL": "",
            "MONITOR_URL": http("monitor"),
            "MONITOR_PATHS": {"aggregate": "/health", "detailed": "/health/detailed",
                              "recovery": "/health/recovery", "callbacks": "/health/callbacks",
                              "hold": "/health/hold"},
            "AGGREGATE_SERVICES": ["rag_api", "redis", "postgres", "vikunja"],
            "VIKUNJA_URL": http("vikunja"),
            "VIKUNJA_GATEWAY_PREFIX": "/vikunja",
            "VIKUNJA_TOKEN": Secret(cfg["vikunja_token"]),
            "VIKUNJA_DB": {"host": host, "port": ports["postgres"], "dbname": "vikunja", "user": "vikunja"},
            "VIKUNJA_DB_PASSWORD": Secret(cfg["postgres_password"]),
            "PERFORMANCE_SERVICES": ["rag_api", "gateway", "redis", "postgres"],
            "VOICE_URL": http("voice"),
            "VOICE_CONTROL_PATH": "/_debug/voice",
            # Commands of the voice assistant's grammar (testbed/voice/commands.gram).
            "VOICE_COMMANDS": ["show the health of the stack", "the circuit breaker opens after three failures",
                               "please restart the database service"],
            # Facts of the testbed's corpus (testbed/corpus/): the document that holds each answer.
            "RAG_FACTS": [
                {"question": "How does a circuit breaker recover after its failure threshold?",
                 "source": "circuit-breakers", "answer_contains": "breaker"},
                {"question": "Which bearer token and database does Vikunja use for projects and tasks?",
                 "source": "vikunja-tasks", "answer_contains": "Vikunja"},
                {"question": "How does the health monitor detect unhealthy services and restart them?",
                 "source": "health-monitoring", "answer_contains": "health"},
            ],
        }
    )
    if variables["TESTBED_REACH"] == "bare":
        # The testbed as the suite reaches a real stack: its services only, none of the testbed's own
        # controls (no debug routes, no fault proxy, no process control, no logs, no monitor hold).
        # What the suite cannot do without them, it must SKIP naming the capability, never FAIL.
        variables.update({"STREAM_DEBUG_PATH": "", "LLM_CONTROL_PATH": "", "BREAKER_CONTROL_PATH": "",
                          "VOICE_CONTROL_PATH": "", "FAULT_PROXY_URL": "", "SERVICE_LOG_DIR": "",
                          "FAULT_BACKEND": "none",
                          "MONITOR_PATHS": {k: v for k, v in variables["MONITOR_PATHS"].items() if k != "hold"}})
    return variables
