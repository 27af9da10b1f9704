"""The Docker backend against real container engines: Docker and Podman.

A private engine is started per session, each test running on both: dockerd
(``--bridge=none --iptables=false``, its own data root and socket) and Podman's
Docker-compatible API service (``podman system service``, its own storage).
Containers run with ``--network host`` so all traffic stays on loopback, and the
test image is imported locally from a busybox root filesystem (no registry is
reachable).  Where an engine cannot run, its tests are skipped with the reason
printed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import requests
from xnai_qa.faults.backends import DockerBackend, FaultError, perform_undo

from xnai_contract.ledger import Ledger

from ..conftest import free_port, load_tool

REPO = Path(__file__).resolve().parents[2]
engines = load_tool("engines")
IMAGE = "xnai-test/busybox:1"
PROJECT = "xnai-qa-test"  # the compose project of the test containers: the only one the backend may touch
LOG_LINE = "xnai-test-container-started"  # what the test container writes to its log

pytestmark = pytest.mark.docker


ENGINES = ("docker", "podman")


def _why_no_engine(engine: str) -> str | None:
    if os.environ.get("XNAI_DOCKER_URL"):
        return None if engine == "docker" else "XNAI_DOCKER_URL names the one engine to test"
    reason = engines.why_not(engine)
    if reason:
        return reason
    if not _busybox():
        return "no static busybox for the test image (apt-get install busybox-static)"
    return None


def _busybox() -> str | None:
    """A statically linked busybox (the image has no libc): Debian's busybox-static."""
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(path) and _is_static(path):
            return path
    return None


def _is_static(path: str) -> bool:
    with open(path, "rb") as handle:
        head = handle.read(1 << 16)
    return head.startswith(b"\x7fELF") and b"/ld-linux" not in head and b"ld-musl" not in head


@pytest.fixture(scope="session", params=ENGINES)
def docker_url(request):
    """The Docker-compatible API of a private engine, one session each: dockerd, and Podman's
    ``podman system service`` (the XNAi stack is Podman-first). Every test that uses it runs on both."""
    engine = request.param
    reason = _why_no_engine(engine)
    if reason:
        print(f"\n{engine} backend tests SKIPPED: {reason}", file=sys.stderr)
        pytest.skip(f"{engine}: {reason}")
    if os.environ.get("XNAI_DOCKER_URL"):
        yield os.environ["XNAI_DOCKER_URL"]
        return
    for healed in engines.heal(f"xnai-{engine}-"):  # a killed session's engine
        print(f"\nhealed: {healed}", file=sys.stderr)
    root = Path("/tmp") / f"xnai-{engine}-{os.getpid()}"

    def import_image(engine_root: Path) -> None:  # Podman: the CLI imports before the API service starts
        subprocess.run([*engines.podman_cli(engine_root), "import", "-", IMAGE], input=_rootfs_tar(),
                       env=engines.podman_env(engine_root), capture_output=True, timeout=120, check=True)

    try:
        private = engines.start(engine, root, before_serving=import_image if engine == "podman" else None)
    except RuntimeError as err:
        pytest.fail(str(err))
    import docker

    client = docker.DockerClient(base_url=private.url, version="auto")
    if engine == "docker":
        repository, tag = IMAGE.split(":")
        client.api.import_image_from_data(_rootfs_tar(), repository=repository, tag=tag)
    yield private.url
    for container in client.containers.list(all=True):
        container.remove(force=True)
    client.close()
    private.stop()


def _rootfs_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(_busybox(), arcname="bin/busybox")
        for name in ("sh", "httpd"):
            info = tarfile.TarInfo(f"bin/{name}")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        page = b"hello from the test container\n"
        info = tarfile.TarInfo("www/index.html")
        info.size = len(page)
        tar.addfile(info, io.BytesIO(page))
    return buf.getvalue()


@pytest.fixture
def web(docker_url):
    """A container on host networking serving HTTP on a free loopback port, with a compose label."""
    import docker

    client = docker.DockerClient(base_url=docker_url, version="auto")
    port = free_port()
    container = client.containers.run(
        IMAGE, ["/bin/sh", "-c", f"echo {LOG_LINE}; exec /bin/busybox httpd -f -p 127.0.0.1:{port} -h /www"],
        detach=True, network_mode="host", labels={"com.docker.compose.service": "web",
                                                  "com.docker.compose.project": PROJECT},
        name=f"web-{port}",
    )
    _wait_http(port, ok=True)
    yield {"url": docker_url, "port": port, "container": container,
           "entry": {"host": "127.0.0.1", "port": port, "compose_service": "web"}}
    with contextlib.suppress(docker.errors.NotFound):
        container.remove(force=True)
    client.close()


def _answers(port: int) -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{port}/", timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def _wait_http(port: int, ok: bool, limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while _answers(port) != ok:
        if time.monotonic() > deadline:
            pytest.fail(f"port {port} did not become {'reachable' if ok else 'unreachable'} in {limit} s")
        time.sleep(0.05)


def test_finds_the_container_by_compose_label(web):
    backend = DockerBackend(web["url"], PROJECT)
    assert backend.container("web", web["entry"]).id == web["container"].id


def test_stop_then_start(web):
    backend = DockerBackend(web["url"], PROJECT)
    backend.act("stop", "web", web["entry"], grace_s=1)
    _wait_http(web["port"], ok=False)
    backend.act("start", "web", web["entry"])
    _wait_http(web["port"], ok=True)


def test_kill_then_undo_from_the_ledger_spec(web, tmp_path):
    backend = DockerBackend(web["url"], PROJECT)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    ledger.record_apply("web", "kill", backend.spec("start", "web", web["entry"]))
    backend.act("kill", "web", web["entry"])
    _wait_http(web["port"], ok=False)
    healed = ledger.heal(perform_undo)
    assert len(healed) == 1
    _wait_http(web["port"], ok=True)


def test_pause_hangs_and_resume_recovers(web):
    backend = DockerBackend(web["url"], PROJECT)
    backend.act("pause", "web", web["entry"])
    with pytest.raises(requests.Timeout):
        requests.get(f"http://127.0.0.1:{web['port']}/", timeout=0.5)
    assert web["container"].client.containers.get(web["container"].id).status == "paused"
    backend.act("resume", "web", web["entry"])
    _wait_http(web["port"], ok=True)


def test_restart_changes_the_instance_id(web):
    backend = DockerBackend(web["url"], PROJECT)
    before = backend.instance_id("web", web["entry"])
    backend.act("restart", "web", web["entry"], grace_s=1)
    _wait_http(web["port"], ok=True)
    assert backend.instance_id("web", web["entry"]) != before


def test_undo_is_idempotent_and_survives_a_removed_container(web):
    backend = DockerBackend(web["url"], PROJECT)
    spec = backend.spec("start", "web", web["entry"])
    assert "running" in perform_undo(spec)
    web["container"].remove(force=True)
    assert perform_undo(spec) == "container gone"


def test_containers_of_another_compose_project_are_never_touched(docker_url):
    """A container is found only among the configured project's, by label or by name; whatever its
    network (a stack's own bridge networks are fine on a user's machine: actions send no traffic)."""
    import docker

    client = docker.DockerClient(base_url=docker_url, version="auto")
    ours = client.containers.create(IMAGE, ["/bin/busybox", "sh"], network_mode="none",
                                    labels={"com.docker.compose.service": "db", "com.docker.compose.project": PROJECT})
    theirs = client.containers.create(
        IMAGE,
        ["/bin/busybox", "sh"],
        network_mode="none",
        name="their-db",
        labels={"com.docker.compose.service": "db", "com.docker.compose.project": "other"},
    )
    try:
        backend = DockerBackend(docker_url, PROJECT)
        assert backend.container("db", {"host": "127.0.0.1"}).id == ours.id
        with pytest.raises(FaultError, match="container their-db is not in compose project 'xnai-qa-test'"):
            backend.container("db", {"host": "127.0.0.1", "container": "their-db"})
        assert DockerBackend(docker_url, "other").container("db", {"host": "127.0.0.1"}).id == theirs.id
        with pytest.raises(FaultError, match="COMPOSE_PROJECT"):
            DockerBackend(docker_url, "")
    finally:
        theirs.remove(force=True)
        ours.remove(force=True)


def test_a_restarted_container_is_back_only_once_its_health_check_passes(docker_url, request):
    """A database container is running before it accepts a query: a restart returns once the container's
    own health check passes (here: a file the service writes a moment after it starts)."""
    if request.node.callspec.params["docker_url"] != "docker":
        pytest.skip("Podman runs health checks from systemd timers, which this machine has not")
    import docker

    client = docker.DockerClient(base_url=docker_url, version="auto")
    slow = client.containers.run(
        IMAGE, ["/bin/sh", "-c", "/bin/busybox rm -f /ok; /bin/busybox sleep 1; /bin/busybox touch /ok; "
                                 "exec /bin/busybox sleep 600"],
        detach=True, network_mode="none", labels={"com.docker.compose.service": "db",
                                                  "com.docker.compose.project": PROJECT},
        healthcheck={"test": ["CMD", "/bin/busybox", "test", "-f", "/ok"], "interval": 200_000_000,
                     "timeout": 1_000_000_000, "retries": 100})
    try:
        backend = DockerBackend(docker_url, PROJECT)
        outcome = backend.act("restart", "db", {"host": "127.0.0.1"}, grace_s=1)
        slow.reload()
        assert slow.attrs["State"]["Health"]["Status"] == "healthy", outcome
        assert re.search(r"\(healthy after (\d+\.\d) s\)", outcome), outcome
        assert float(re.search(r"after (\d+\.\d) s", outcome).group(1)) >= 0.5, "returned before the check passed"
    finally:
        slow.remove(force=True)
        client.close()


def test_a_missing_service_container_is_named(docker_url):
    with pytest.raises(FaultError, match=r"expected one container .*compose.service=nosuch.*found 0"):
        DockerBackend(docker_url, PROJECT).container("nosuch", {"host": "127.0.0.1"})


def test_no_engine_gives_a_clear_error():
    with pytest.raises(FaultError, match=r"No Docker Engine at unix:///nonexistent\.sock"):
        DockerBackend("unix:///nonexistent.sock", PROJECT)


KILLED_OWNER = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, {tools!r})
import engines
engine = engines.start("docker", Path(tempfile.mkdtemp(prefix="xnai-healtest-")))
print(engine.url, flush=True)
sys.stdin.read()  # held open until the test kills this process outright
"""


def test_an_engine_left_by_a_killed_run_is_healed_with_its_containers():
    """A lane or test session killed with SIGKILL leaves its private dockerd and its containers
    running; the next one's heal removes the containers, stops the engine and deletes its folder."""
    reason = _why_no_engine("docker")
    if reason or os.environ.get("XNAI_DOCKER_URL"):
        pytest.skip(reason or "XNAI_DOCKER_URL: no private engine to heal")
    import docker

    owner = subprocess.Popen([sys.executable, "-c", KILLED_OWNER.format(tools=str(REPO / "tools"))],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = owner.stdout.readline().strip()
        assert url.startswith("unix://"), "the owner did not start its engine"
        root = Path(url.removeprefix("unix://")).parent
        client = docker.DockerClient(base_url=url, version="auto")
        repository, tag = IMAGE.split(":")
        client.api.import_image_from_data(_rootfs_tar(), repository=repository, tag=tag)
        port = free_port()
        client.containers.run(IMAGE, ["/bin/busybox", "httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
                              detach=True, network_mode="host")
        _wait_http(port, ok=True)
        engine_pid = json.loads((root / "owner.json").read_text())["engine"]
        client.close()
    finally:
        owner.kill()
        owner.wait(10)
    assert engines.heal("xnai-healtest-", root.parent) == [
        f"docker engine of killed run {owner.pid} at {root}: 1 container(s) removed, "
        f"engine {engine_pid} stopped, folder deleted"]
    assert not root.exists()
    assert not engines._alive(engine_pid)
    _wait_http(port, ok=False)  # the container's server is gone with it


def test_an_engine_whose_owner_still_runs_is_left_alone(tmp_path):
    root = tmp_path / "xnai-healtest-busy"
    root.mkdir()
    (root / "owner.json").write_text(json.dumps({"owner": os.getpid(), "engine": os.getpid(), "kind": "docker"}))
    assert engines.heal("xnai-healtest-", tmp_path) == []
    assert root.exists()


FAULT_SUITE = """*** Settings ***
Library    XNAi
Variables    {varfile}

*** Test Cases ***
Stop And Start Through Keywords
    Stop Service    web    grace=1s
    Service Should Refuse Connections    web
    Start Service    web
    Wait Until Service Is Healthy    web    timeout=20s

Pause Through Keywords Is Undone At Test End
    Pause Service    web
    Request Should Fail With    http://127.0.0.1:{port}/    timeout    timeout=1s

Service Is Healthy Again
    Wait Until Service Is Healthy    web    timeout=20s

Logs And Process Figures Come From The Container
    Run Keyword And Expect Error    The log of 'web' contains*{log_line}*
    ...    Service Log Should Not Contain    web    {log_line}
    Service Log Should Not Contain    web    no such line
    ${{figures}}    Get Resource Figures    web
    Should Be True    ${{figures}}[fds] >= 3 and ${{figures}}[sockets] >= 1 and ${{figures}}[rss_mb] > 0
"""

VARFILE = """
SERVICES = {{"web": {{"host": "127.0.0.1", "port": {port}, "compose_service": "web",
                      "health_url": "http://127.0.0.1:{port}/"}}}}
ALLOWED_HOSTS = []
FAULT_BACKEND = "docker"
DOCKER_URL = "{url}"
COMPOSE_PROJECT = "xnai-qa-test"
FAULT_PROXY_URL = ""
FAULT_LEDGER = "{ledger}"
"""


def test_fault_keywords_drive_the_engine_and_read_its_logs_and_process_figures(web, tmp_path):
    varfile = tmp_path / "docker_vars.py"
    varfile.write_text(VARFILE.format(port=web["port"], url=web["url"], ledger=tmp_path / "ledger.jsonl"))
    suite = tmp_path / "docker_faults.robot"
    suite.write_text(FAULT_SUITE.format(varfile=varfile, port=web["port"], log_line=LOG_LINE))
    result = subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(tmp_path / "out"), "--pythonpath", str(REPO / "libraries"),
         str(suite)], cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert "4 tests, 4 passed" in result.stdout
    assert Ledger(tmp_path / "ledger.jsonl").pending() == []


# ------------------------------------------------------------ images --
@pytest.fixture(scope="session")
def images():
    """tools/images.py, with the base root filesystem made (mmdebstrap) or taken from its cache."""
    module = load_tool("images")
    try:
        module.base_rootfs()
    except module.ImageError as err:
        pytest.skip(str(err))
    return module


def test_a_debian_base_made_without_a_registry_runs_python_on_host_networking(docker_url, images):
    engine = images.client(docker_url)
    images.import_base(engine)
    out = engine.containers.run(images.BASE_TAG, ["python3", "-c", "import sys; print(sys.version_info[:2])"],
                                network_mode="host", remove=True)
    assert out.strip() == b"(3, 11)"
    engine.close()


def test_the_runner_image_builds_on_that_base_and_parses_every_suite(docker_url, images, request):
    """docker/Dockerfile really built (FROM the mmdebstrap base, hash-locked pip on host networking),
    then a dry run of every suite inside it. On the Docker engine only: Podman's vfs storage copies
    each layer whole, and the build is the same Dockerfile either way."""
    if request.node.callspec.params["docker_url"] != "docker":
        pytest.skip("the runner image is built on the Docker engine only (same Dockerfile; CI time)")
    engine = images.client(docker_url)
    images.build_runner(engine)
    container = engine.containers.run(
        images.RUNNER_TAG, detach=True, network_mode="host", environment={"XNAI_PROFILE": "fast"},
        entrypoint=["sh", "-c", "./qa setup && .venv/bin/python -m robot --dryrun --output NONE --log NONE "
                    "--report NONE --variablefile variables/xnai_host.py suites/"])
    try:
        status = container.wait(timeout=300)
        out = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
        engine.close()
    assert status["StatusCode"] == 0, out[-3000:]
    assert "installing requirements" not in out, (
        "./qa setup reinstalled: the image's marker is not the one ./qa computes"
    )
    assert "apt-get" not in out, "./qa setup installed packages at the container's start"
    assert re.search(r"^\d+ tests, \d+ passed, 0 failed", out, re.MULTILINE), out[-3000:]


# ------------------------------------------------------- the lane --
# What the containerised testbed does not offer a suite, as a real stack would not: no LLM or voice
# control, no fault proxy, no debug routes, no voice service, no known documents; the lane's variables
# name no task database, gateway prefix or cascade pair. Every other capability must be offered.
LANE_LACKS = {"llm-control", "fault-proxy", "stream-debug", "breaker-bypass", "voice", "voice-control",
              "rag-facts", "vikunja-db", "vikunja-gateway", "cascade-pair"}


def _lane_verdicts(output: Path, lacks: set[str]) -> dict:
    """{status: count} of a lane's output.xml, after checking no test failed and every skip names a
    capability in ``lacks``."""
    from robot.api import ExecutionResult

    assert output.exists(), f"no {output}"
    tests = list(ExecutionResult(str(output)).suite.all_tests)
    assert tests, f"{output} holds no test"
    failed = [f"{t.full_name}: {t.message[:300]}" for t in tests if t.status == "FAIL"]
    assert not failed, "\n".join(failed)
    named = {t.full_name: re.findall(r"^Missing capability '([^']+)'", t.message, re.MULTILINE)
             for t in tests if t.status == "SKIP"}
    assert all(named.values()), [n for n, caps in named.items() if not caps]
    reach = {n: caps[0] for n, caps in named.items() if caps[0] not in lacks}
    assert not reach, f"skipped for a capability the lane offers: {reach}"
    return {"tests": tests, **{s: sum(t.status == s for t in tests) for s in ("PASS", "SKIP", "FAIL")}}


@pytest.mark.timeout(1500)
def test_the_suites_pass_or_skip_for_a_capability_against_the_testbed_as_a_compose_project(
        docker_url, images, request, tmp_path, capsys):
    """./qa lane on this session's engine (the runner image is built already): the testbed's services
    each in a container of one compose project, the suites from the host with the engine as the fault
    backend, then KG-1 and the task service's suite from the runner container of docker/compose.suite.yml
    (compose names, the mounted engine socket). No test fails; each skip names a capability the lane
    does not offer. Then the proof through the lane: each switch of PROOF_SWITCHES fails exactly the
    tests that claim it."""
    if request.node.callspec.params["docker_url"] != "docker":
        pytest.skip("the lane runs on the Docker engine (Podman runs no health checks without systemd "
                    "timers, and the compose file waits for them)")
    results = tmp_path / "lane"
    started = time.monotonic()
    run = subprocess.run([sys.executable, str(REPO / "tools" / "container_lane.py"), "--engine", docker_url,
                          "--results", str(results)], cwd=REPO, capture_output=True, text=True, timeout=1400,
                         check=False)
    out = run.stdout + run.stderr
    lines = "\n".join(line for line in out.splitlines() if line.startswith("[lane]"))
    with capsys.disabled():  # the lane's own figures in the CI log
        print(f"\n{lines}\n[lane] exit {run.returncode} after {time.monotonic() - started:.0f} s")
    assert re.search(r"^\[lane\] 9 services healthy", out, re.MULTILINE), out[-4000:]
    host = _lane_verdicts(results / "output.xml", LANE_LACKS)
    inside = _lane_verdicts(results / "inside" / "output.xml", LANE_LACKS)
    with capsys.disabled():
        for name, found in (("from the host", host), ("from the runner container", inside)):
            print(f"[lane] {name}: {len(found['tests'])} tests, {found['PASS']} passed, {found['SKIP']} skipped, "
                  f"{found['FAIL']} failed")
    passed_inside = {t.name for t in inside["tests"] if t.status == "PASS"}
    # compose names resolved inside, and a fault went through the mounted engine socket
    needed = {"Query Is Answered Through The Gateway", "The Task Service Reconnects After A Database Restart"}
    assert needed <= passed_inside, sorted(passed_inside)
    lane = load_tool("container_lane")
    for switch in lane.PROOF_SWITCHES:  # the proof through the lane: exactly the claimed tests failed
        assert re.search(rf"^\[lane\] proof: {switch}: as claimed", out, re.MULTILINE), lines
    assert f"[lane] proof: {len(lane.PROOF_SWITCHES)} switches, no mismatch" in out, lines
    assert run.returncode == 0, out[-4000:]
