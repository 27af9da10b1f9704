"""Target: a real XNAi stack, from the Docker host, through its published ports.

Usage::

    export XNAI_REDIS_PASSWORD=...            # the stack's REDIS_PASSWORD
    export XNAI_REDIS_CA_FILE=/path/ca.crt    # production Redis is TLS-only
    robot --variablefile variables/xnai_host.py suites/

Only published ports are reachable from the host: the gateway (8000), MkDocs
(8008) and whatever your compose file publishes.  Set ``XNAI_RAG_API_PORT``,
``XNAI_REDIS_PORT`` ... when you publish the internal services for testing; ``XNAI_MKDOCS_PORT`` and
``XNAI_UI_PORT`` include the documentation site and the chat UI.

A stack run as plain processes on this machine (no container engine):
``XNAI_PROCESS_MATCH='{"rag_api": "XNAi_rag_app.api.entrypoint:app"}'`` (JSON: service -> a regular
expression of its command line) gives process figures, ``XNAI_SERVICE_LOG_DIR`` (one ``<service>.log``
each) its logs.  ``tools/real_stack.py`` sets both for the stack's code it runs.
"""

import json
import os

from xnai_qa.targetconfig import common_variables, env_port, real_stack_variables


def get_variables():
    host = os.environ.get("XNAI_HOST", "127.0.0.1")
    gw, rag = env_port("XNAI_GATEWAY_PORT", 8000), env_port("XNAI_RAG_API_PORT", 8012)
    redis_port, pg = env_port("XNAI_REDIS_PORT", 6379), env_port("XNAI_POSTGRES_PORT", 5432)
    variables = common_variables(os.environ.get("XNAI_PROFILE", "production"))
    variables.update(
        {
            "ALLOWED_HOSTS": [h for h in os.environ.get("XNAI_ALLOWED_HOSTS", "").split(",") if h],
            "SERVICES": {
                "gateway": {
                    "host": host,
                    "port": gw,
                    "health_url": f"http://{host}:{gw}/xnai/api/v1/health",
                    "health_json": True,
                    "compose_service": "caddy",
                },
                "rag_api": {
                    "host": host,
                    "port": rag,
                    "health_url": f"http://{host}:{rag}/xnai/api/v1/health",
                    "health_json": True,
                    "compose_service": "rag",
                },
                "redis": {"host": host, "port": redis_port, "compose_service": "redis"},
                "postgres": {"host": host, "port": pg, "compose_service": "postgres"},
            },
            "REQUIRED_SERVICES": ["gateway", "rag_api", "redis", "postgres"],
            "GATEWAY_URL": f"http://{host}:{gw}",
            "RAG_API_URL": f"http://{host}:{rag}",
            "VIKUNJA_URL": "",
            **real_stack_variables(host, redis_port),
        }
    )
    raw = os.environ.get("XNAI_PROCESS_MATCH", "")
    try:
        matches = json.loads(raw) if raw else {}
    except ValueError as err:
        raise ValueError(f"XNAI_PROCESS_MATCH is not JSON ({err}); give an object such as "
                         '{"rag_api": "uvicorn .*entrypoint:app"}.') from None
    if not isinstance(matches, dict):
        raise ValueError("XNAI_PROCESS_MATCH must be a JSON object of service name -> regular expression.")
    for service, pattern in matches.items():
        if service not in variables["SERVICES"]:
            raise ValueError(f"XNAI_PROCESS_MATCH names '{service}', not a service here; known: "
                             f"{', '.join(variables['SERVICES'])}.")
        variables["SERVICES"][service]["process_match"] = pattern
    if os.environ.get("XNAI_UI_PORT"):  # the chat UI's own port, where it is published (the gateway serves it too)
        port = env_port("XNAI_UI_PORT", 8001)
        variables["SERVICES"]["ui"] = {"host": host, "port": port, "health_url": f"http://{host}:{port}/",
                                       "compose_service": "ui", "monitor_name": "chainlit_ui"}
    if os.environ.get("XNAI_MKDOCS_PORT"):  # the documentation site, where its port is published
        port = env_port("XNAI_MKDOCS_PORT", 8008)
        variables["SERVICES"]["mkdocs"] = {"host": host, "port": port, "health_url": f"http://{host}:{port}/",
                                           "compose_service": "mkdocs"}
    if os.environ.get("XNAI_VIKUNJA_TOKEN"):  # the task service, where the stack runs one (its token given)
        port = env_port("XNAI_VIKUNJA_PORT", 3456)
        variables["SERVICES"]["vikunja"] = {"host": host, "port": port, "compose_service": "vikunja"}
        variables["VIKUNJA_URL"] = f"http://{host}:{port}"
        variables["AGGREGATE_SERVICES"] = [*variables["AGGREGATE_SERVICES"], "vikunja"]
    return variables
