"""Keywords for the system under test: its configuration, its start, its services.

The target is chosen by the variables file (default ``variables/testbed.py``).
For the embedded testbed the library starts it when needed and stops it at
the end of the run if the run started it; for a real stack it only checks
that the services are reachable.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from robot.api import logger
from robot.api.deco import keyword
from robot.api.exceptions import Failure, FatalError, SkipExecution
from robot.libraries.BuiltIn import BuiltIn
from robot.utils import escape
from xnai_qa import capabilities, safehttp, targetconfig
from xnai_qa.faults import heal_ledger
from xnai_qa.faults.backends import FaultError, make_backend

from ..base import Context, LibraryComponent

REPO_ROOT = Path(__file__).resolve().parent.parent
TESTBED_OWNER = "robot"


class TargetKeywords(LibraryComponent):
    """Configuration, lifecycle and reachability of the XNAi target.

    Every keyword reads the target from the variables file, so suites never
    name hosts or ports.  Services are referred to by the names in
    ``${SERVICES}`` (``gateway``, ``rag_api``, ``redis``, ``postgres`` ...).
    """

    def __init__(self, ctx: Context):
        super().__init__(ctx)
        self._started_here = False
        self._under_pabot = False
        self._testbed_env: dict | None = None
        self._detected: dict[str, str] | None = None  # capability -> "" (offered) or why not
        self._announced_timeouts = False

    # ----------------------------------------------------------- helpers --
    def _service(self, name: str) -> dict:
        services = self._required("SERVICES")
        if name not in services:
            raise Failure(f"No service named '{name}' in ${{SERVICES}}. Known services: {', '.join(services)}.")
        svc = services[name]
        targetconfig.check_host_allowed(svc["host"], self._required("ALLOWED_HOSTS"))
        return svc

    def _testbed(self, *args: str, timeout: float = 240.0) -> subprocess.CompletedProcess:
        if self._testbed_env is None:  # cached: close() runs after Robot's variables are gone
            self._testbed_env = {
                "XNAI_TESTBED_BASE_PORT": str(self._required("TESTBED_BASE_PORT")),
                "XNAI_PROFILE": str(self._required("PROFILE")),
            }
        env = {**os.environ, **self._testbed_env}
        return subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "testbed", *args],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False,
        )

    # ---------------------------------------------------------- keywords --
    @keyword
    def target_configuration_should_be_valid(self) -> None:
        """Checks every target variable and stops the run if one is missing or malformed.

        The failure lists each problem with the variable's name and the fix.
        Hosts must be loopback unless listed in ``${ALLOWED_HOSTS}``: the services' hosts and every URL
        (gateway, RAG API, Redis, fault proxy, monitor, task service, voice, container engine, each
        service's health and proxy URL), read strictly (a URL with user info is refused).

        Example:
        | Target Configuration Should Be Valid |
        """
        names = [*targetconfig.RULES, *targetconfig.URL_VARIABLES]
        variables = {name: self._var(name) for name in names}
        variables = {k: v for k, v in variables.items() if v is not None}
        try:
            targetconfig.validate(variables)
        except targetconfig.TargetConfigError as err:
            raise FatalError(str(err)) from None
        logger.info(f"Target '{variables['TARGET']}' with profile '{variables['PROFILE']}': configuration valid.")

    @keyword
    def keep_sessions_on_allowed_addresses(self, *aliases: str) -> None:
        """Puts the address gate on these RequestsLibrary sessions: each request they send, and each
        hop of a redirect, goes only to loopback or ``${ALLOWED_HOSTS}``; any other is refused before
        a connection opens (a redirect elsewhere fails the request, naming where it pointed).

        Example:
        | Create Session | gateway | ${GATEWAY_URL} |
        | Keep Sessions On Allowed Addresses | gateway |
        """
        requests_library: Any = BuiltIn().get_library_instance("RequestsLibrary")
        cache = requests_library._cache  # noqa: SLF001 - its session registry
        for alias in aliases:
            try:
                session = cache.get_connection(alias)
            except RuntimeError:
                raise Failure(f"No RequestsLibrary session '{alias}': create it with Create Session first.") from None
            safehttp.guard(session, self._required("ALLOWED_HOSTS") or [])

    @keyword
    def prepare_target(self) -> None:
        """Validates the configuration and makes sure the target answers.

        Against the testbed, starts it unless it is already running (and then
        stops it at the end of the run).  Then undoes faults that a killed
        earlier run left in ``${FAULT_LEDGER}``.  Against a real stack, waits up to
        ``${READY_TIMEOUT_S}`` for every required service port and fails
        naming those that do not answer.

        Example:
        | Suite Setup | Prepare Target |
        """
        self.target_configuration_should_be_valid()
        if self._required("TARGET") == "testbed":
            self.start_testbed_unless_running()
        self.required_services_should_be_reachable()
        try:
            healed = heal_ledger(self._required("FAULT_LEDGER"))
        except FaultError as err:
            raise FatalError(f"Faults left by an earlier run could not be undone: {err}") from None
        for line in healed:
            logger.warn(f"Healed a fault left by an earlier (killed) run: {line}")
        self.target_capabilities()
        self._announce_test_timeouts()

    def _announce_test_timeouts(self) -> None:
        """Once per run, on the console: how long a test of each suite may take in this profile (its
        timeout, which follows from the profile's planned durations)."""
        timeouts = self._var("TEST_TIMEOUTS") or {}
        if not timeouts or self._announced_timeouts:
            return
        self._announced_timeouts = True
        # In output.xml, so the next run's planned wall time uses this run's suite times only in this profile.
        BuiltIn().set_suite_metadata("Profile", self._required("PROFILE"), top=True)
        from robot.utils import secs_to_timestr, timestr_to_secs  # noqa: PLC0415

        longest = max(timeouts, key=lambda k: timestr_to_secs(timeouts[k]))
        parts = ", ".join(f"{k} {secs_to_timestr(timestr_to_secs(v), compact=True)}" for k, v in timeouts.items())
        logger.console(f"[xnai] profile {self._required('PROFILE')}: a test may take at most (per suite) {parts}; "
                       f"the longest plan is {longest}'s.")

    @keyword
    def target_capabilities(self) -> dict:
        """Detects what the target offers the suite and returns ``{capability: reason}``: an empty
        reason where it is offered, else why not (``${LLM_CONTROL_PATH} is empty``, the container engine
        does not answer ...).  Detected once per run, from the variables and, where a variable alone
        cannot tell, a probe (the container engine answers).  `Prepare Target` calls it and logs the
        table; ``report.html`` shows it at the top with the number of tests each missing capability
        skipped.  The capabilities and how to provide each are listed in the README.

        Example:
        | ${offered}= | Target Capabilities |
        """
        if self._detected is None:
            engine = None

            def engine_answers() -> str:
                nonlocal engine
                if engine is None:
                    try:  # its address passes the loopback rule first (Requires may come before Prepare Target)
                        url = self._var("DOCKER_URL", "") or "unix:///var/run/docker.sock"
                        targetconfig.check_url(url, self._var("ALLOWED_HOSTS", []))
                        make_backend(self._var)
                        engine = ""
                    except targetconfig.TargetConfigError as err:
                        engine = f"${{DOCKER_URL}}: {err}"
                    except (FaultError, ImportError) as err:  # no engine there, or no project to act on
                        engine = str(err)
                return engine

            probes: dict[str, Callable[[], str]] = {}
            if self._var("FAULT_BACKEND", "") == "docker":
                probes = {"service-control": engine_answers, "process-figures": engine_answers}
                if not self._var("SERVICE_LOG_DIR", ""):
                    probes["service-logs"] = engine_answers
            self._detected = capabilities.detect(self._var, probes)
            missing = {k: v for k, v in self._detected.items() if v}
            logger.info("Target capabilities: " + (", ".join(k for k, v in self._detected.items() if not v) or "none")
                        + (" offered; missing: " + "; ".join(f"{k} ({v})" for k, v in missing.items()) if missing
                           else " offered (all)."))
            BuiltIn().set_suite_metadata("Target capabilities", capabilities.table(self._detected), top=True)
        return dict(self._detected)

    @keyword
    def requires(self, *needed: str) -> None:
        """Skips the test, naming the capability and how to provide it, unless the target offers every
        capability in ``needed``.  The same as tagging the test ``requires:<capability>`` (the tag is
        checked before the test's setup runs, so nothing is set up for a test that cannot run).

        Example:
        | Requires | llm-control | fault-proxy |
        """
        detected = self.target_capabilities()
        for name in needed:
            try:
                cap = capabilities.lookup(name)
            except capabilities.UnknownCapability as err:
                raise Failure(str(err)) from None
            if detected[name]:
                raise SkipExecution(cap.skip_message(detected[name]))

    @keyword
    def start_testbed_unless_running(self) -> None:
        """Starts the embedded testbed if it is not running; no-op otherwise.  A testbed that came up
        whole and has lost some services since is repaired, service by service, and keeps its owner: a
        hand-started testbed is used and left running.

        Defect switches come from ``XNAI_TESTBED_DEFECTS`` in the environment.

        Example:
        | Start Testbed Unless Running |
        """
        if self._testbed("owner").returncode == 0:
            logger.info("Testbed already running; using it as it is.")
            return
        debug = ["--debug-endpoints"] if self._required("TESTBED_REACH") == "full" else []
        # --watch-pid: should this process die without its teardown (SIGKILL), the testbed stops anyway.
        result = self._testbed("up", "--owner", TESTBED_OWNER, "--watch-pid", str(os.getpid()), *debug)
        logger.info(result.stdout.strip())
        if result.returncode != 0:
            raise FatalError(f"The testbed did not start:\n{result.stderr.strip() or result.stdout.strip()}")
        if result.stdout.startswith("testbed repaired"):  # its services again; its owner unchanged
            (logger.info if f"owner {TESTBED_OWNER}," in result.stdout else logger.warn)(result.stdout.strip())
            return
        self._started_here = True
        self._under_pabot = self._var("PABOTQUEUEINDEX") is not None

    @keyword
    def stop_testbed_if_robot_started_it(self) -> None:
        """Stops the testbed when a Robot run started it; leaves a hand-started one running.

        Example:
        | Suite Teardown | Stop Testbed If Robot Started It |
        """
        if self._required("TARGET") != "testbed":
            return
        result = self._testbed("owner")
        if result.returncode == 0 and result.stdout.strip() == TESTBED_OWNER:
            down = self._testbed("down")
            logger.info(down.stdout.strip())
            if down.returncode != 0:
                raise Failure(f"Stopping the testbed failed:\n{down.stderr.strip()}")
        else:
            logger.info("Testbed not started by Robot (or not running): left as it is.")
        self._started_here = False

    @keyword
    def required_services_should_be_reachable(self, timeout: float | None = None) -> None:
        """Waits until every service in ``${REQUIRED_SERVICES}`` accepts TCP connections.

        Polls every 0.2 s for at most ``timeout`` seconds (default
        ``${READY_TIMEOUT_S}``); fails naming the unreachable services.

        Example:
        | Required Services Should Be Reachable | timeout=30 |
        """
        limit = float(timeout if timeout is not None else self._required("READY_TIMEOUT_S"))
        pending = list(self._required("REQUIRED_SERVICES"))
        deadline = time.monotonic() + limit
        while pending:
            pending = [name for name in pending if not self._connects(name)]
            if not pending or time.monotonic() >= deadline:
                break
            time.sleep(0.2)
        if pending:
            where = ", ".join(f"{n} ({self._service(n)['host']}:{self._service(n)['port']})" for n in pending)
            raise FatalError(f"Not reachable within {limit:g} s: {where}. Is the stack up, and are the ports right?")

    def _connects(self, name: str, timeout: float = 1.0) -> bool:
        svc = self._service(name)
        try:
            with socket.create_connection((svc["host"], svc["port"]), timeout=timeout):
                return True
        except OSError:
            return False

    @keyword
    def service_host_should_resolve(self, service: str) -> str:
        """Resolves the host of ``service`` (Docker DNS inside a compose network) and returns its address.

        Example:
        | ${address}= | Service Host Should Resolve | rag_api |
        """
        host = self._service(service)["host"]
        try:
            infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except socket.gaierror as err:
            raise Failure(f"Host '{host}' of service '{service}' does not resolve: {err}") from None
        address = str(infos[0][4][0])
        logger.info(f"{service}: {host} -> {address}")
        return address

    @keyword
    def service_port_should_accept_connections(self, service: str, timeout: float = 2.0) -> None:
        """Opens a TCP connection to ``service``; fails on refusal or timeout, naming the error.

        Example:
        | Service Port Should Accept Connections | redis |
        """
        svc = self._service(service)
        started = time.perf_counter()
        try:
            with socket.create_connection((svc["host"], svc["port"]), timeout=timeout):
                pass
        except OSError as err:
            raise Failure(f"Service '{service}' at {svc['host']}:{svc['port']}: {err}") from None
        logger.info(
            f"{service} {svc['host']}:{svc['port']} accepted in {(time.perf_counter() - started) * 1000:.1f} ms"
        )

    @keyword
    def every_required_service_should_resolve(self) -> None:
        """Runs `Service Host Should Resolve` for each service in ``${REQUIRED_SERVICES}``, failing with all misses.

        Example:
        | Every Required Service Should Resolve |
        """
        self._each_required(self.service_host_should_resolve)

    @keyword
    def every_required_service_should_accept_connections(self) -> None:
        """Runs `Service Port Should Accept Connections` for each required service, failing with all refusals.

        Example:
        | Every Required Service Should Accept Connections |
        """
        self._each_required(self.service_port_should_accept_connections)

    @keyword
    def every_required_service_should_answer_its_health_check(self) -> None:
        """GETs the ``health_url`` of each required service that has one; fails naming every service that
        did not answer 200, or (where the service's entry says ``health_json``) not with JSON
        (services without an HTTP health URL, such as Redis, are checked elsewhere).

        Example:
        | Every Required Service Should Answer Its Health Check |
        """
        def check(name: str) -> None:
            svc = self._service(name)
            if "health_url" not in svc:
                return
            try:
                resp = safehttp.request("GET", svc["health_url"], self._required("ALLOWED_HOSTS") or [],
                                        timeout=float(self._required("REQUEST_TIMEOUT_S") or 10))
            except requests.RequestException as err:
                raise Failure(f"{name}: {svc['health_url']} failed: {type(err).__name__}") from None
            if resp.status_code != 200:
                raise Failure(f"{name}: {svc['health_url']} answered {resp.status_code}")
            if svc.get("health_json") and "json" not in resp.headers.get("Content-Type", ""):
                raise Failure(f"{name}: {svc['health_url']} answered 200 with {resp.headers.get('Content-Type')!r}, "
                              "not its JSON health report: another service answered (a routing fault?)")
            logger.info(f"{name}: {svc['health_url']} -> 200 in {resp.elapsed.total_seconds() * 1000:.1f} ms")

        self._each_required(check)

    def _each_required(self, check) -> None:
        errors = []
        for name in self._required("REQUIRED_SERVICES"):
            try:
                check(name)
            except Failure as err:
                errors.append(str(err))
        if errors:
            raise Failure("\n".join(errors))

    @keyword("Service Health URL")
    def service_health_url(self, service: str) -> str:
        """Returns the health URL configured for ``service`` in ``${SERVICES}``.

        Example:
        | ${url}= | Service Health URL | rag_api |
        """
        svc = self._service(service)
        if "health_url" not in svc:
            raise Failure(f"Service '{service}' has no health_url in ${{SERVICES}}.")
        return svc["health_url"]

    # ------------------------------------- called by the library's listener --
    def skip_test_without_capabilities(self, data) -> None:
        """A test tagged ``requires:<capability>`` the target lacks is skipped in place of its setup."""
        needs = capabilities.required_by(data.tags)
        if not needs:
            return
        try:
            self.requires(*needs)
        except (Failure, SkipExecution) as err:
            kind = "BuiltIn.Skip" if isinstance(err, SkipExecution) else "BuiltIn.Fail"
            data.setup.config(name=kind, args=(escape(str(err)),))

    def record_capability_table(self, result) -> None:
        """The whole run's table, with how many tests each missing capability skipped."""
        if result.parent is None and self._detected is not None:
            result.metadata["Target capabilities"] = capabilities.table(
                self._detected, capabilities.skipped_counts(result.all_tests))

    def stop_the_testbed_started_here(self) -> None:
        """End of a plain ``robot`` run of single suite files: stop what this process started.

        Under pabot, the teardown of ``suites/__init__.robot`` in each suite's
        process stops that process's testbed (the next suite of the pool
        starts it again, in about two seconds).
        """
        if self._started_here and not self._under_pabot:
            self._testbed("down")
