"""Target: a real XNAi stack, from a container inside its compose network.

Services are reached by their compose names through Docker DNS on their
internal ports.  Those names are not loopback, so this file lists them in
``ALLOWED_HOSTS``: choosing this file is the explicit permission to probe them.

Usage (inside the suite's runner container, see README)::

    export XNAI_REDIS_PASSWORD=...  XNAI_REDIS_CA_FILE=/run/secrets/redis-ca.crt
    robot --variablefile variables/xnai_compose.py suites/
"""

import os

from xnai_qa.targetconfig import common_variables, env_port, real_stack_variables

# The stack's services by compose name and internal port (XNAI_<NAME>_PORT where a project maps another).
SERVICE_HOSTS = {
    "gateway": ("caddy", env_port("XNAI_GATEWAY_PORT", 8000)),
    "rag_api": ("rag", env_port("XNAI_RAG_API_PORT", 8012)),
    "redis": ("redis", env_port("XNAI_REDIS_PORT", 6379)),
    "postgres": ("postgres", env_port("XNAI_POSTGRES_PORT", 5432)),
}
# Services the stack's compose file may not have (infra/docker/docker-compose.yml has neither today):
# included where their port is given, XNAI_UI_PORT (Chainlit, 8001) and XNAI_MKDOCS_PORT (8008).
OPTIONAL_HOSTS = {"ui": ("ui", "XNAI_UI_PORT"), "mkdocs": ("mkdocs", "XNAI_MKDOCS_PORT")}


def get_variables():
    services = {}
    for name, (host, port) in SERVICE_HOSTS.items():
        services[name] = {"host": host, "port": port, "compose_service": host}
    for name in ("gateway", "rag_api"):
        host, port = SERVICE_HOSTS[name]
        services[name]["health_url"] = f"http://{host}:{port}/xnai/api/v1/health"
        services[name]["health_json"] = True
    for name, (host, env) in OPTIONAL_HOSTS.items():
        if os.environ.get(env):
            port = env_port(env, 0)
            services[name] = {"host": host, "port": port, "compose_service": host,
                              "health_url": f"http://{host}:{port}/"}  # Chainlit's and MkDocs' liveness: GET /
    if "ui" in services:
        services["ui"]["monitor_name"] = "chainlit_ui"  # what the health monitor calls it
    variables = common_variables(os.environ.get("XNAI_PROFILE", "production"))
    variables.update(
        {
            "ALLOWED_HOSTS": sorted({entry["host"] for entry in services.values()}),
            "SERVICES": services,
            "REQUIRED_SERVICES": list(SERVICE_HOSTS),
            "GATEWAY_URL": f"http://caddy:{SERVICE_HOSTS['gateway'][1]}",
            "RAG_API_URL": f"http://rag:{SERVICE_HOSTS['rag_api'][1]}",
            "VIKUNJA_URL": "",
            **real_stack_variables("redis", SERVICE_HOSTS["redis"][1]),
        }
    )
    if os.environ.get("XNAI_VIKUNJA_TOKEN"):  # the task service, where the stack runs one (its token given)
        port = env_port("XNAI_VIKUNJA_PORT", 3456)
        variables["SERVICES"]["vikunja"] = {"host": "vikunja", "port": port, "compose_service": "vikunja"}
        variables["ALLOWED_HOSTS"] = sorted({*variables["ALLOWED_HOSTS"], "vikunja"})
        variables["VIKUNJA_URL"] = f"http://vikunja:{port}"
        variables["AGGREGATE_SERVICES"] = [*variables["AGGREGATE_SERVICES"], "vikunja"]
    return variables
