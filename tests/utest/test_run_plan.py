"""The run plan: pabot ordering files, the runner container and its compose override.

The Dockerfile installs the hash-locked requirements with the marker ./qa expects and
runs the README's command (it is really built, on a Debian base made without a
registry, in test_docker_backend.py); the override parses and joins the XNAi services
and networks.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SUITES = REPO / "suites"


def suite_names() -> dict[str, Path]:
    """Robot's names of the suites (file name without the ``NN__`` prefix, title case)."""
    out = {}
    for path in sorted(SUITES.glob("[0-9]*__*.robot")):
        out[path.stem.split("__", 1)[1].replace("_", " ").title()] = path
    return out


def ordered(path: Path) -> list[str]:
    return [line.split("Suites.", 1)[1].strip() for line in path.read_text().splitlines()
            if line.startswith("--suite Suites.")]


def suite_tags(path: Path) -> set[str]:
    match = re.search(r"^Test Tags\s+(.+)$", path.read_text(), re.MULTILINE)
    return set(re.split(r"\s{2,}", match.group(1).strip())) if match else set()


def test_every_suite_is_in_both_ordering_files_once():
    names = set(suite_names())
    for order in ("pabot-order.txt", "pabot-order-real-stack.txt"):
        listed = ordered(SUITES / order)
        assert sorted(listed) == sorted(names), f"{order}: lists {sorted(listed)}, suites are {sorted(names)}"


def test_real_stack_order_runs_faulting_and_loading_suites_after_the_barrier_one_at_a_time():
    text = (SUITES / "pabot-order-real-stack.txt").read_text()
    _before, after = text.split("#WAIT", 1)
    assert "{" in after and after.strip().endswith("}"), "after the barrier the suites run in one sequential group"
    for name, path in suite_names().items():
        disturbs = suite_tags(path) & {"destructive", "load", "stress"}
        where = "after" if f"Suites.{name}\n" in after else "before"
        if disturbs:
            assert where == "after", f"{name} is tagged {sorted(disturbs)} but runs before the #WAIT barrier"
    assert ordered(SUITES / "pabot-order-real-stack.txt")[:1], "nothing runs before the barrier"


QUIET_KEYWORDS = r"\b(Establish Baseline|Find The Capacity Knee|Measure Breaker Overhead)\b"


def needs_quiet_machine(path: Path) -> bool:
    """A suite declares it with ``Metadata    Machine    quiet``."""
    return bool(re.search(r"^Metadata\s+Machine\s+quiet\s*$", path.read_text(), re.MULTILINE))


def test_suites_that_measure_against_a_reference_declare_a_quiet_machine():
    """A baseline taken beside other load describes the neighbours, a capacity search saturates the machine,
    and a 2 ms overhead cannot be resolved beside busy neighbours: such a suite says it needs a quiet machine."""
    for name, path in suite_names().items():
        if re.search(QUIET_KEYWORDS, path.read_text()):
            assert needs_quiet_machine(path), f"{name} measures against a reference: add 'Metadata    Machine    quiet'"


def test_quiet_machine_suites_run_after_the_barrier_in_one_unit_even_against_testbeds():
    """Suites that need a quiet machine run after the barrier, one at a time (one group), beside nothing;
    every other suite runs before it, side by side."""
    from xnai_qa.plan import stages

    text = (SUITES / "pabot-order.txt").read_text()
    assert "#WAIT" in text
    _before, after = text.split("#WAIT", 1)
    for name, path in suite_names().items():
        assert (f"Suites.{name}\n" in after) == needs_quiet_machine(path), (
            f"{name}: suites that need a quiet machine run after the #WAIT barrier, the others before it")
    assert len(stages(text)[-1]) == 1, "after the barrier one unit (a suite or a { } group) runs, alone"
    assert len(stages(text)[0]) >= 2, "nothing runs in parallel"


def test_groups_list_their_suites_in_the_order_robot_runs_them():
    """One robot process runs a ``{ }`` group's suites in file-name order, whatever the listing says."""
    from xnai_qa.plan import stages

    files = {name: path.name for name, path in suite_names().items()}
    for order in ("pabot-order.txt", "pabot-order-real-stack.txt"):
        for stage in stages((SUITES / order).read_text()):
            for unit in stage:
                assert unit == sorted(unit, key=files.__getitem__), f"{order}: list {unit} in file order"


def test_qa_run_picks_the_real_stack_order_for_a_real_target():
    qa = (REPO / "qa").read_text()
    assert "pabot-order-real-stack.txt" in qa and "*testbed.py" in qa


def test_dockerfile_installs_the_pinned_requirements_and_runs_the_readme_command():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^COPY requirements\.txt requirements\.lock", dockerfile, re.MULTILINE)
    assert "pip install" in dockerfile and "--require-hashes -r requirements.lock" in dockerfile
    marker = "cat requirements.txt requirements.lock | sha256sum"
    assert marker in dockerfile and marker in (REPO / "qa").read_text(), \
        "the image's marker must be the one ./qa computes, or ./qa would reinstall at start"
    assert '.requirements.sha256' in dockerfile
    entry = re.search(r'^ENTRYPOINT \["\./qa", "run"\]$', dockerfile, re.MULTILINE)
    assert entry, "the container must run the README's command 1"
    readme = (REPO / "README.md").read_text()
    assert "./qa run     # 1." in readme
    assert "XNAI_VARIABLES=variables/xnai_compose.py" in dockerfile
    assert (REPO / "variables" / "xnai_compose.py").exists()


def test_compose_override_joins_the_xnai_services_and_networks():
    override = yaml.safe_load((REPO / "docker" / "compose.suite.yml").read_text())
    service = override["services"]["xnai-suite"]
    assert service["build"]["dockerfile"] == "docker/Dockerfile"
    assert "networks" not in service and "network_mode" not in service, "network-neutral: the lane adds host networking"
    networks = yaml.safe_load((REPO / "docker" / "compose.suite.networks.yml").read_text())
    assert networks["services"]["xnai-suite"]["networks"] == ["xnai_app_network", "xnai_db_network"]
    assert any(v.startswith("${XNAI_ENGINE_SOCKET:-/var/run/docker.sock}:/var/run/docker.sock")
               for v in service["volumes"])
    assert service["environment"]["XNAI_VARIABLES"] == "variables/xnai_compose.py"
    assert service["environment"]["XNAI_FAULT_BACKEND"] == "docker"
    import importlib.util

    spec = importlib.util.spec_from_file_location("xnai_compose", REPO / "variables" / "xnai_compose.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    stack_services = {host for host, _port in module.SERVICE_HOSTS.values()}
    assert set(service["depends_on"]) == stack_services, "depends on exactly the services the suite reaches"
    for value in service["environment"].values():  # secrets come from the caller's environment only
        assert not re.fullmatch(r"[A-Za-z0-9+/=_-]{16,}", str(value)), f"a literal secret-like value: {value}"


def test_progress_plan_lists_suites_longest_first_with_the_expected_wall_time():
    from xnai_qa.plan import describe

    times = {"Kg1": 10.0, "Kg5": 80.0, "Kg4": 60.0, "Rag": 30.0}
    lines = describe(times, processes=2).splitlines()
    assert [line.split()[0] for line in lines[1:5]] == ["Kg5", "Kg4", "Rag", "Kg1"]
    assert "~90 s" in lines[-1]  # lanes: 80 + 10, 60 + 30
    order = "--suite Suites.Kg4\n--suite Suites.Rag\n--suite Suites.Kg1\n#WAIT\n--suite Suites.Kg5\n"
    assert "~140 s" in describe(times, 2, order).splitlines()[-1]  # max(60, 30 + 10), then 80 alone
    assert "~150 s" in describe({**times, "New": 90.0}, 2, order).splitlines()[-1]  # unlisted: last stage
    grouped = "{\n--suite Suites.Kg4\n--suite Suites.Rag\n}\n--suite Suites.Kg1\n#WAIT\n--suite Suites.Kg5\n"
    assert "~170 s" in describe(times, 2, grouped).splitlines()[-1]  # a group runs in one process: 60 + 30
    assert describe({}) == ""


def test_a_suite_missing_from_the_ordering_file_stops_the_run_naming_the_file(tmp_path):
    from xnai_qa import plan

    (tmp_path / "01__listed.robot").write_text("*** Test Cases ***\n")
    (tmp_path / "02__new_suite.robot").write_text("*** Test Cases ***\n")
    order = tmp_path / "pabot-order.txt"
    order.write_text("--suite Suites.Listed\n")
    assert plan.unlisted(tmp_path, order.read_text()) == ["New Suite"]
    assert plan.check(order) == 2
    order.write_text("{\n--suite Suites.Listed\n--suite Suites.New Suite\n}\n")
    assert plan.check(order) == 0


def test_the_planned_wall_time_uses_the_last_run_only_in_its_own_profile(tmp_path):
    """A fast run's suite times say nothing about a production run (minutes of load per profile): the
    plan then takes the profile's typical times; a subset of suites is planned as that subset."""
    from robot.api import ExecutionResult
    from xnai_qa import plan

    suite = tmp_path / "suites"
    suite.mkdir()
    (suite / "__init__.robot").write_text("*** Settings ***\nMetadata    Profile    fast\n")
    (suite / "01__quick.robot").write_text("*** Test Cases ***\nT\n    No Operation\n")
    output = tmp_path / "output.xml"
    import robot

    robot.run(str(suite), output=str(output), log="NONE", report="NONE", stdout=None, console="none")
    top = ExecutionResult(str(output)).suite
    assert top.metadata["Profile"] == "fast"
    assert plan.last_durations(output, "fast") == {"Quick": top.suites[0].elapsed_time.total_seconds()}
    assert plan.last_durations(output, "production") == {}

    order = "--suite Suites.Kg1 Service Integration\n#WAIT\n{\n--suite Suites.Kg5 Load Targets\n}\n"
    wall, source = plan.planned_wall(output, "production", 2, order, {"Kg5 Load Targets"})
    assert wall == plan.TYPICAL_S["production"]["Kg5 Load Targets"] + plan.START_S
    assert source == "typical production suite times on a 2-core machine"
    fast, _ = plan.planned_wall(tmp_path / "none.xml", "fast", 2, order)
    assert fast < wall / 10, "the fast profile's plan is minutes, the production one's an hour and more"

    assert plan.selected_suites(["--suite", "Suites.Kg1 Service Integration", "--include", "x"]) == {
        "Kg1 Service Integration"}
    assert plan.selected_suites(["--suite", "Kg*"]) is None  # a pattern: not planned as a subset
    assert plan.selected_suites([]) is None


def test_the_plan_reads_the_profile_a_variables_file_gives(tmp_path, monkeypatch):
    from xnai_qa import plan

    monkeypatch.setenv("XNAI_PROFILE", "production")
    assert plan.profile_of(REPO / "variables" / "xnai_host.py") == "production"
    monkeypatch.delenv("XNAI_PROFILE")
    assert plan.profile_of(REPO / "variables" / "testbed.py") == "fast"
    (tmp_path / "broken.py").write_text("raise SystemExit(3)\n")
    assert plan.profile_of(tmp_path / "broken.py") == "fast"
