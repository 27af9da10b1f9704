import importlib.util
from pathlib import Path

import pytest
from robot.api.types import Secret
from xnai_qa import targetconfig
from xnai_qa.targetconfig import TargetConfigError, common_variables

REPO = Path(__file__).resolve().parents[2]


def valid(**overrides):
    variables = common_variables("fast")
    variables.update(
        TARGET="testbed",
        SERVICES={"gateway": {"host": "127.0.0.1", "port": 8000}, "rag_api": {"host": "::1", "port": 8012}},
        REQUIRED_SERVICES=["gateway", "rag_api"],
        GATEWAY_URL="http://127.0.0.1:8000",
        RAG_API_URL="http://127.0.0.1:8012",
        REDIS_URL="redis://127.0.0.1:6379/0",
        REDIS_PASSWORD=Secret("pw"),
        FAULT_BACKEND="process",
        FAULT_PROXY_URL="",
        FAULT_LEDGER="/tmp/ledger.jsonl",
        AGGREGATE_SERVICES=["rag_api"],
        PERFORMANCE_SERVICES=["rag_api"],
    )
    variables.update(overrides)
    return variables


def test_a_complete_loopback_configuration_is_valid():
    targetconfig.validate(valid())


def test_every_problem_is_named_with_its_fix():
    variables = valid(PROFILE="slowest", HEALTH_PATH="health")
    del variables["QUERY_FIELD"]
    with pytest.raises(TargetConfigError) as err:
        targetconfig.validate(variables)
    text = str(err.value)
    assert "${QUERY_FIELD} is missing ('query' in the stack's code, 'question' in the seed)" in text
    assert "${PROFILE} must be one of fast, production" in text
    assert "${HEALTH_PATH} must be a path starting with '/'" in text
    assert "--variablefile" in text


def test_a_plain_string_password_is_refused():
    with pytest.raises(TargetConfigError, match=r"\$\{REDIS_PASSWORD\} must be a robot.api.types.Secret"):
        targetconfig.validate(valid(REDIS_PASSWORD="pw"))


def test_an_empty_secret_names_the_environment_variable():
    with pytest.raises(TargetConfigError, match="XNAI_REDIS_PASSWORD"):
        targetconfig.validate(valid(REDIS_PASSWORD=Secret("")))


def test_a_bad_port_is_named():
    services = {"gateway": {"host": "127.0.0.1", "port": 70000}, "rag_api": {"host": "127.0.0.1", "port": 1}}
    with pytest.raises(TargetConfigError, match="entry 'gateway' has port 70000"):
        targetconfig.validate(valid(SERVICES=services))


def test_required_services_must_exist():
    with pytest.raises(TargetConfigError, match="names vikunja, not in"):
        targetconfig.validate(valid(REQUIRED_SERVICES=["gateway", "vikunja"]))


def test_non_loopback_hosts_are_refused_unless_allowed():
    services = {"gateway": {"host": "192.0.2.10", "port": 8000}, "rag_api": {"host": "127.0.0.1", "port": 8012}}
    with pytest.raises(TargetConfigError, match=r"'192\.0\.2\.10' is not loopback"):
        targetconfig.validate(valid(SERVICES=services))
    targetconfig.validate(valid(SERVICES=services, ALLOWED_HOSTS=["192.0.2.10"]))


@pytest.mark.parametrize("name", ["GATEWAY_URL", "RAG_API_URL", "REDIS_URL", "FAULT_PROXY_URL", "MONITOR_URL",
                                  "VIKUNJA_URL", "VOICE_URL", "DOCKER_URL"])
def test_every_url_variable_must_name_an_allowed_host(name):
    url = "tcp://192.0.2.10:2375" if name == "DOCKER_URL" else "http://192.0.2.10:8000"
    with pytest.raises(TargetConfigError, match=rf"\$\{{{name}\}}: host '192.0.2.10' is not loopback"):
        targetconfig.validate(valid(**{name: url}))
    targetconfig.validate(valid(**{name: url}, ALLOWED_HOSTS=["192.0.2.10"]))


def test_service_health_and_proxy_urls_must_name_an_allowed_host():
    services = {"gateway": {"host": "127.0.0.1", "port": 8000, "health_url": "http://192.0.2.10/health"},
                "rag_api": {"host": "127.0.0.1", "port": 8012, "proxy_url": "http://192.0.2.11:1"}}
    with pytest.raises(TargetConfigError) as err:
        targetconfig.validate(valid(SERVICES=services))
    assert "${SERVICES}['gateway'][health_url]: host '192.0.2.10'" in str(err.value)
    assert "${SERVICES}['rag_api'][proxy_url]: host '192.0.2.11'" in str(err.value)


@pytest.mark.parametrize("url", ["http://192.0.2.10\\@127.0.0.1:24000", "http://user@127.0.0.1:8000",
                                 "http://127.0.0.1 :8000", "http:///path"])
def test_a_url_parsers_could_read_differently_is_refused(url):
    """requests connected to 192.0.2.10 for the first one while urllib.parse read 127.0.0.1."""
    with pytest.raises(TargetConfigError, match=r"\$\{GATEWAY_URL\}: '"):
        targetconfig.validate(valid(GATEWAY_URL=url))


def test_a_unix_socket_is_local():
    targetconfig.validate(valid(DOCKER_URL="unix:///var/run/docker.sock"))


def test_loopback_detection():
    assert targetconfig.is_loopback("127.0.0.1")
    assert targetconfig.is_loopback("::1")
    assert targetconfig.is_loopback("localhost")
    assert not targetconfig.is_loopback("192.0.2.1")
    assert not targetconfig.is_loopback("no-such-host.invalid")


def _load(name):
    spec = importlib.util.spec_from_file_location(f"varfile_{name}", REPO / "variables" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_variables()


@pytest.mark.parametrize("name", ["xnai_host", "xnai_compose"])
def test_real_stack_variables_files_are_valid_with_a_password(name, monkeypatch):
    monkeypatch.setenv("XNAI_REDIS_PASSWORD", "from-env")
    variables = _load(name)
    targetconfig.validate(variables)
    assert variables["TARGET"] == "xnai"
    assert variables["PROFILE"] == "production"
    assert variables["REDIS_URL"].startswith("rediss://"), "production Redis is TLS-only"
    assert str(variables["REDIS_PASSWORD"]) == "<secret>"


def test_real_stack_variables_without_password_name_the_variable(monkeypatch):
    monkeypatch.delenv("XNAI_REDIS_PASSWORD", raising=False)
    with pytest.raises(TargetConfigError, match="XNAI_REDIS_PASSWORD"):
        targetconfig.validate(_load("xnai_host"))


def test_compose_file_allows_exactly_its_service_names():
    variables = _load("xnai_compose")
    hosts = {svc["host"] for svc in variables["SERVICES"].values()}
    assert set(variables["ALLOWED_HOSTS"]) == hosts


def test_host_file_rejects_a_bad_port_variable(monkeypatch):
    monkeypatch.setenv("XNAI_GATEWAY_PORT", "eighty")
    with pytest.raises(ValueError, match="XNAI_GATEWAY_PORT='eighty' is not a port number"):
        _load("xnai_host")


def test_all_variables_files_define_the_same_names(testbed_env):
    names = {n: set(_load(n)) for n in ("testbed", "xnai_host", "xnai_compose")}
    testbed_only = {"TESTBED_BASE_PORT", "TESTBED_RUN_DIR", "TESTBED_REACH"}
    assert names["testbed"] - testbed_only == names["xnai_host"] == names["xnai_compose"]


def test_api_url_goes_through_the_gateway_or_straight_and_refuses_other_hosts():
    values = {"GATEWAY_URL": "http://127.0.0.1:8000", "RAG_API_URL": "http://10.0.0.5:8012",
              "API_PREFIX": "/xnai/api/v1", "ALLOWED_HOSTS": []}

    def get(name, default=None):
        return values.get(name, default)

    assert targetconfig.api_url(get, "/query", "gateway") == "http://127.0.0.1:8000/xnai/api/v1/query"
    with pytest.raises(targetconfig.TargetConfigError, match="not loopback"):
        targetconfig.api_url(get, "/query", "direct")
    with pytest.raises(targetconfig.TargetConfigError, match="use gateway or direct"):
        targetconfig.api_url(get, "/query", "sideways")


def test_a_real_stack_run_never_loads_the_testbed(tmp_path):
    """With a real-stack variables file, the testbed's default file adds nothing: no slot, no run
    folder, and none of its values fill a gap (here: no Redis password, so the run stops naming it)."""
    import os
    import subprocess
    import sys

    from robot.api import ExecutionResult

    home = tmp_path / "testbed-home"
    env = {k: v for k, v in os.environ.items() if k != "XNAI_REDIS_PASSWORD"}
    env.update(XNAI_TESTBED_HOME=str(home), XNAI_FAULT_LEDGER=str(tmp_path / "ledger.jsonl"))
    subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(tmp_path), "--console", "none", "--log", "NONE",
         "--report", "NONE", "--variablefile", "variables/xnai_host.py",
         "--test", "Suites.Kg1 Service Integration.RAG API Is Healthy Directly", "suites/"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    suite = ExecutionResult(str(tmp_path / "output.xml")).suite
    assert suite.setup.failed and "XNAI_REDIS_PASSWORD" in suite.setup.message, suite.setup.message
    assert not home.exists(), f"the testbed was touched: {list(home.rglob('*'))}"


def test_test_timeouts_follow_the_profiles_planned_durations():
    """No test may end on its timeout because the production profile's durations are long: each
    suite's timeout covers its longest plan (15 min normal load, 3 baseline runs with cooldowns, a
    capacity search of 50 five-minute steps each repeated once at most)."""
    from robot.utils import timestr_to_secs

    fast, production = (common_variables(p)["TEST_TIMEOUTS"] for p in ("fast", "production"))
    secs = {k: timestr_to_secs(v) for k, v in production.items()}
    assert secs["kg5_load"] >= 15 * 60 + 5 * 60
    assert secs["kg5_baselines"] >= 3 * (5 * 60 + 5 * 60)
    assert secs["capacity"] >= targetconfig.CAPACITY_MAX_STEPS * 300 * 2
    assert all(timestr_to_secs(production[k]) >= timestr_to_secs(fast[k]) for k in fast)


def test_every_suite_takes_its_timeout_from_the_profile():
    import re

    keys = set(common_variables("fast")["TEST_TIMEOUTS"])
    for path in sorted((REPO / "suites").glob("[0-9]*.robot")):
        found = re.findall(r"^Test Timeout\s+\$\{TEST_TIMEOUTS\}\[(\w+)\]\s*$", path.read_text(), flags=re.MULTILINE)
        assert len(found) == 1 and found[0] in keys, f"{path.name}: Test Timeout    ${{TEST_TIMEOUTS}}[<one of {keys}>]"


# Every variable a profile defines is validated at start: a bad value names the variable and its fix.
BAD_VALUES = [
    ("LOAD_PROFILES", {"baseline": {"users": 1, "rate": "1/s", "duration": "5s"}}, "the seed's profiles"),
    (
        "LOAD_PROFILES",
        {**common_variables("fast")["LOAD_PROFILES"], "peak": {"users": 0, "rate": "x", "duration": "4s"}},
        "profile 'peak'",
    ),
    ("CAPACITY", {**common_variables("fast")["CAPACITY"], "step": "ten"}, "has step 'ten'"),
    ("CAPACITY", {"step": "10%"}, "lacks step_duration_s"),
    ("CAPACITY", {**common_variables("fast")["CAPACITY"], "max_error_rate": 2}, "has max_error_rate 2"),
    ("MONITOR_PATHS", {"aggregate": "health", "detailed": "/d", "recovery": "/r"}, "not starting with '/'"),
    ("MONITOR_PATHS", {"aggregate": "/health"}, "lacks detailed, recovery"),
    ("SSE_GRAMMAR", {"type_field": "type"}, "lacks token, done, error"),
    ("VOICE_URL", "voice:8000", "must be a URL"),
    ("MONITOR_URL", "127.0.0.1:8091", "must be a URL"),
    ("PROFILE_COOLDOWN", "a while", "must be a positive time"),
    ("LEAK_SETTLE", 0, "must be a positive time"),
    ("RESPONSE_TIME_SAMPLES", 2.5, "whole number"),
    ("ALERT_RECEIVER_PORT", 70000, "port"),
    ("QUERY_P99_MS", "fast", "positive number"),
    ("STREAM_DEBUG_PATH", "_debug/streams", "starting with '/'"),
    ("RAG_FACTS", [{"question": "q"}], "question, source"),
    ("VOICE_COMMANDS", ["ok", ""], "non-empty strings"),
    ("VIKUNJA_DB", {"host": "127.0.0.1"}, "lacks one of"),
    ("VIKUNJA_TOKEN", "plain-token", "Secret"),
    ("AGGREGATE_SERVICES", ["rag_api", "nosuch"], "names nosuch, not in ${SERVICES}"),
    ("PERFORMANCE_SERVICES", ["gateway", "ghost"], "names ghost, not in ${SERVICES}"),
]


@pytest.mark.parametrize(
    ("name", "value", "fragment"), BAD_VALUES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(BAD_VALUES)]
)
def test_a_bad_value_of_any_profile_variable_stops_the_run_naming_it(name, value, fragment):
    variables = valid()
    variables[name] = value
    with pytest.raises(TargetConfigError) as err:
        targetconfig.validate(variables)
    assert f"${{{name}}}" in str(err.value)
    assert fragment in str(err.value)


def test_every_variable_a_profile_defines_has_a_rule():
    for profile in ("fast", "production"):
        unruled = sorted(k for k in common_variables(profile) if k not in targetconfig.RULES)
        assert unruled == [], f"variables of the {profile} profile nobody validates: {unruled}"


def test_a_number_given_on_the_command_line_as_text_is_accepted():
    targetconfig.validate(valid(QUERY_P99_MS="600", RESPONSE_TIME_SAMPLES="20", ALERT_RECEIVER_PORT="0"))
