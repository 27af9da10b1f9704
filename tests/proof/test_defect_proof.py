"""The suite's proof of itself: every defect switch makes exactly its named tests fail.

For each switch of ``testbed/defects.py``, the suites holding the tests that claim it (their
``catches:<switch>`` tags, read by ``xnai_qa.claims``) run against a fresh testbed started by the
run itself (``suites/__init__.robot``) with the switch on; within those suites the failing tests
must be exactly the claiming ones, and every other test must pass.  Tests tagged ``slow`` run only
where they claim the switch (``--exclude slowNOTcatches:<switch>``); the clean run covers them all.
A clean run of every suite must pass everything.  The matrix is printed and saved to
``results/defect-matrix.json``.

A switch with a ``reference_test`` (a regression, seen only against a reference)
first runs that test on a clean testbed (it must pass); its saved baselines are
the reference of the run with the switch on (``BASELINE_REFERENCE_DIR``).  Such
switches run after the others, one at a time, so no other run blurs the timings; so does
the proof's own clean run (every timing test is in it).

``XNAI_PROOF_ONLY=name[,name]`` limits the run to some switches (development).
``XNAI_PROOF_CLEAN_OUTPUT=path/output.xml`` takes the clean run from a run of
every suite that already happened against a clean testbed (``./qa test``
runs the suites first and passes their output, so CI runs them once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from robot.api import ExecutionResult, ResultVisitor
from xnai_qa import claims
from xnai_qa.plan import START_S, TYPICAL_S

from testbed import defects

REPO = Path(__file__).resolve().parents[2]
MATRIX: dict[str, dict] = {}
CLAIMS = claims.read()  # switch -> the tests tagged catches:<switch>

pytestmark = [pytest.mark.proof, pytest.mark.timeout(1800)]


class _Outcomes(ResultVisitor):
    def __init__(self):
        self.failed: set[str] = set()
        self.passed: set[str] = set()
        self.skipped: set[str] = set()
        self.messages: list[str] = []

    def visit_suite(self, suite):
        if suite.setup and suite.setup.failed:
            self.messages.append(f"suite setup of {suite.full_name} failed: {suite.setup.message[:500]}")
        super().visit_suite(suite)

    def visit_test(self, test):
        name = test.full_name.split(".", 1)[1]  # drop the top-level "Suites."
        (self.failed if test.failed else self.skipped if test.skipped else self.passed).add(name)
        if test.failed and len(self.messages) < 6:
            self.messages.append(f"{name}: {test.message[:300]}")


WORKERS = int(os.environ.get("XNAI_PROOF_WORKERS", "3"))


def claimed_suites(defect: str) -> list[str]:
    """The suites whose tests a switch claims (suite name = the part of a claim before the first dot)."""
    return sorted({claim.split(".", 1)[0] for claim in CLAIMS.get(defect, ())})


def expected_seconds(defect: str) -> float:
    """A switch's run time from its suites' typical times: the runs start longest first, so the workers
    finish together rather than with one long run started last."""
    return START_S + sum(TYPICAL_S["fast"].get(suite, 30) for suite in claimed_suites(defect))


def run_suites(env: dict, out: Path, defect: str | None):
    env = dict(env)
    env["XNAI_TESTBED_DEFECTS"] = defect or ""
    selection = []
    if defect and not CLAIMS.get(defect):  # without a claim the selection would be every suite
        raise RuntimeError(f"no test claims it: tag the tests that must fail with catches:{defect}")
    if defect:
        selection = [arg for suite in claimed_suites(defect) for arg in ("--suite", suite)]
        selection += ["--exclude", f"slowNOTcatches:{defect}"]  # slow tests run where they claim the switch
        reference = defects.DEFECTS[defect].reference_test
        if reference:  # a regression: first a clean reference run, its baselines handed to the defect run
            ref_out = out.parent / f"{defect}.reference"
            ref = subprocess.run(
                [sys.executable, "-m", "robot", "--outputdir", str(ref_out), "--console", "none", "--log", "NONE",
                 "--report", "NONE", "--test", f"Suites.{reference}", "suites/"],
                cwd=REPO, env={**env, "XNAI_TESTBED_DEFECTS": ""}, capture_output=True, text=True, timeout=600,
                check=False,
            )
            _stop_testbed(env)
            if ref.returncode != 0:  # without a good reference the defect run would fail for the wrong reason
                raise RuntimeError(f"the clean reference run of '{reference}' failed (rc {ref.returncode}); "
                                   f"see {ref_out / 'output.xml'}")
            selection += ["--variable", f"BASELINE_REFERENCE_DIR:{ref_out / 'baselines'}"]
    result = subprocess.run(
        [sys.executable, "-m", "robot", "--outputdir", str(out), "--console", "dotted",
         "--log", "NONE", "--report", "NONE", *selection, "suites/"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200, check=False,
    )
    outcomes = _Outcomes()
    ExecutionResult(str(out / "output.xml")).visit(outcomes)
    (out / "configs.json").write_text(json.dumps(  # the secrets, to check the output for them
        [json.loads(p.read_text()) for p in Path(env["XNAI_TESTBED_HOME"]).glob("run-*/config.json")]))
    _stop_testbed(env)
    return outcomes, result


def _stop_testbed(env: dict) -> None:
    """Stops and removes the run's testbed (the next run of the same worker starts afresh)."""
    for command in ("down", "clean"):
        subprocess.run([sys.executable, "-m", "testbed", command], cwd=REPO, env=env,
                       capture_output=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def proof_runs(tmp_path_factory):
    """Every run (clean + one per defect), several at once, each with its own testbed."""
    from concurrent.futures import ThreadPoolExecutor

    from ..conftest import free_blocks

    only = [n.strip() for n in os.environ.get("XNAI_PROOF_ONLY", "").split(",") if n.strip()]
    unknown = [n for n in only if n not in defects.DEFECTS]
    if unknown:
        raise pytest.UsageError(f"XNAI_PROOF_ONLY names no switch {', '.join(map(repr, unknown))}: give names of "
                                "'python -m testbed defects', separated by commas.")
    clean_output = os.environ.get("XNAI_PROOF_CLEAN_OUTPUT", "")
    names = [*([] if clean_output else [None]), *sorted(only or defects.DEFECTS)]
    root = tmp_path_factory.mktemp("proof")
    bases = free_blocks(len(names))
    jobs = {}
    envs = {name: {**os.environ, "XNAI_TESTBED_HOME": str(root / f"home-{index}"),
                   "XNAI_TESTBED_BASE_PORT": str(bases[index]), "XNAI_PROFILE": "fast"}
            for index, name in enumerate(names)}
    # Regressions are seen in timings against a reference run: they run after the others, one at a
    # time, on a quiet machine (three runs at once would blur the very figures they compare).  So does
    # the proof's own clean run: it holds every timing test, KG-5's baselines and capacity search too.
    alone = [n for n in names if n is None or defects.DEFECTS[n].reference_test]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        for name in sorted((n for n in names if n not in alone), key=expected_seconds, reverse=True):
            jobs[name] = pool.submit(run_suites, envs[name], root / (name or "clean"), name)
        runs = {name: _outcome(job.result) for name, job in jobs.items()}
    for name in alone:
        runs[name] = _outcome(lambda name=name: run_suites(envs[name], root / (name or "clean"), name))
    if clean_output:
        outcomes = _Outcomes()
        ExecutionResult(clean_output).visit(outcomes)
        console = Path(clean_output).with_name("console.txt")
        stdout = console.read_text(errors="replace") if console.exists() else ""
        runs[None] = (outcomes, subprocess.CompletedProcess([], 0, stdout, ""))
        runs["_clean_xml"] = Path(clean_output)
        runs["_config"] = [json.loads(p.read_text()) for p in (REPO / ".testbed").glob("run-*/config.json")]
    else:
        runs["_clean_xml"] = root / "clean" / "output.xml"
        configs = root / "clean" / "configs.json"
        runs["_config"] = json.loads(configs.read_text()) if configs.exists() else []
    return runs


def _outcome(run):
    """One run's result, or the error that stopped it: a run that cannot be made (its clean reference
    run failed, say) fails its own test, not every test of the proof."""
    try:
        return run()
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        return err


def _run(proof_runs, name):
    run = proof_runs[name]
    if isinstance(run, Exception):
        pytest.fail(f"the proof run for {name or 'the clean testbed'} could not be made: {run}")
    return run


def _record(name, expected, outcomes):
    MATRIX[name] = {"suites": claimed_suites(name) if name in defects.DEFECTS else "all",
                    "expected_failures": sorted(expected), "observed_failures": sorted(outcomes.failed),
                    "passed": len(outcomes.passed), "skipped": sorted(outcomes.skipped)}
    results = REPO / "results"
    results.mkdir(exist_ok=True)
    (results / "defect-matrix.json").write_text(json.dumps(MATRIX, indent=2))


def test_clean_testbed_passes_every_test(proof_runs):
    outcomes, result = _run(proof_runs, None)
    _record("(none)", set(), outcomes)
    assert outcomes.passed, result.stdout[-2000:]
    assert not outcomes.failed, f"failed on a clean testbed: {sorted(outcomes.failed)}\n" + "\n".join(outcomes.messages)
    assert not outcomes.skipped, f"skipped on the testbed, which offers everything: {sorted(outcomes.skipped)}"
    output = proof_runs["_clean_xml"].read_text()
    assert proof_runs["_config"], "no testbed config found to check the secrets against"
    for config in proof_runs["_config"]:
        for secret in ("redis_password", "postgres_password", "vikunja_token"):
            assert config[secret] not in output and config[secret] not in result.stdout, f"{secret} leaked"


@pytest.mark.parametrize("defect", sorted(defects.DEFECTS))
def test_defect_is_caught_by_exactly_its_named_tests(defect, proof_runs):
    if defect not in proof_runs:
        pytest.skip(f"not selected by XNAI_PROOF_ONLY={os.environ.get('XNAI_PROOF_ONLY')}")
    outcomes, _result = _run(proof_runs, defect)
    expected = set(CLAIMS.get(defect, ()))
    _record(defect, expected, outcomes)
    print(f"\n{defect}: expected {sorted(expected)}\n{'':{len(defect)}}  observed {sorted(outcomes.failed)}")
    assert outcomes.failed == expected, (
        f"missed: {sorted(expected - outcomes.failed)}; unexpected: {sorted(outcomes.failed - expected)}\n"
        + "\n".join(outcomes.messages)
    )


def teardown_module(_module):
    if MATRIX:
        width = max(len(k) for k in MATRIX)
        lines = ["", "defect matrix (defect: expected failing tests / observed)"]
        for name, row in MATRIX.items():
            verdict = "OK" if row["expected_failures"] == row["observed_failures"] else "MISMATCH"
            lines.append(f"{name:<{width}}  expected {len(row['expected_failures'])}  "
                         f"observed {len(row['observed_failures'])}  {verdict}")
        sys.stdout.write("\n".join(lines) + "\n")
        os.environ.pop("XNAI_TESTBED_DEFECTS", None)
