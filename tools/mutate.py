"""``./qa mutate``: mutation testing of the testbed, with cosmic-ray's mutation operators.

    ./qa mutate --budget 30m                 sample mutants of every module, run each against its suites
    ./qa mutate --budget 10m --module breaker --seed 7
    ./qa mutate --budget 30m --workers 2     two mutants at a time (a 2-core machine: the suites' own pabot width)
    ./qa mutate --list                       the modules, their suites and how many mutants each has

The defect proof shows that each hand-written switch fails its claimed tests; this measures what the
suites catch of defects nobody wrote a switch for.  cosmic-ray (its operators and its mutate-and-test
step) makes one small change at a time in a module whose behaviour the seed specifies; the suites that
can observe that module (``MODULES``, checked by ``tests/proof/test_mutation.py``) run against a testbed
carrying it: a failing run *kills* the mutant, a green one lets it *survive*.

The campaign runs in copies of the project (``results/mutation/tree-<worker>``, each with its testbed on
ports of its own from 18800 up): a killed campaign leaves no mutated file in your checkout.  It first runs
each module's suites unmutated (they must pass: a red baseline kills every mutant and measures nothing),
then samples mutants at random (``--seed``) across the modules until the budget would be exceeded, each
run with ``--exitonfailure`` (a killed mutant
stops at its first failing test) and a timeout of three baselines (a mutant that hangs the testbed is
*timed out*, counted apart).  Mutants in code that only a defect switch runs (the body of an
``if "<switch>" in ...`` branch) are left out: a clean testbed never executes them.

The report (``results/mutation/report.md`` and ``report.json``): per module the mutants generated,
sampled, killed, survived, timed out and equivalent (``tools/mutation-triage.toml`` lists the
equivalent ones with the reason, and what was done about each survivor), the score
``killed / (sampled - equivalent - no mutation)``, and for each survivor its diff and the tests that ran.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRIAGE = ROOT / "tools" / "mutation-triage.toml"
# The campaign's testbeds (XNAI_MUTATE_BASE_PORT moves them: two campaigns at once need two ranges).
CAMPAIGN_BASE_PORT = int(os.environ.get("XNAI_MUTATE_BASE_PORT") or 18800)
WORKER_PORT_STRIDE = 200  # each worker's testbed 200 ports further up (a testbed spans fewer than 100)


@dataclass(frozen=True)
class Module:
    paths: tuple[str, ...]  # its files, under the project root
    suites: tuple[str, ...]  # Robot's suite names that observe it
    what: str  # what the seed specifies of it
    # Suites that observe it too but are not run per mutant, with the reason (their switches' proof covers them).
    not_run: dict[str, str] = field(default_factory=dict)


# Each module of the testbed whose behaviour the seed specifies, with the suites that can observe it
# (tests/proof/test_mutation.py checks: every defect switch written into a module claims tests of these suites only).
KG5_NOT_RUN = {name: "minutes of load per run (a quiet machine); its switches' proof covers it"
               for name in ("Kg5 Performance Baselines", "Kg5 Load Targets")}
# The API's files by route family (testbed/rag_api/app.py says which holds what); breaker.py and rag.py
# are modules of their own.
RAG_API_FILES = ("app", "context", "errors", "store", "queries", "streams", "health", "search", "debug")
MODULES: dict[str, Module] = {
    "breaker": Module(("testbed/rag_api/breaker.py",), ("Kg2 Circuit Breakers", "Kg2 Breaker Timing"),
                      "circuit breakers: counting, thresholds, half-open trials, state in Redis",
                      {"Error Handling": "sees the breaker only with Redis silent, as KG-2's 'The Breaker Keeps "
                                         "Counting In Memory While Redis Is Down' does"}),
    "rag_api": Module(tuple(f"testbed/rag_api/{name}.py" for name in RAG_API_FILES),
                      ("Kg1 Service Integration", "Kg2 Circuit Breakers", "Kg3 Stream Cleanup", "Error Handling",
                       "Rag Integration"),
                      "SSE streaming and its cleanup, cache and query records, request ids, error bodies",
                      KG5_NOT_RUN),
    "monitor": Module(tuple(f"testbed/monitor/{name}.py" for name in ("app", "checks", "recovery")),
                      ("Kg1 Service Integration", "Kg4 Health Monitoring"),
                      "health monitor: detection thresholds, recovery actions, alerts"),
    "rag": Module(("testbed/rag_api/rag.py",), ("Kg1 Service Integration", "Rag Integration"),
                  "retrieval: sources cited, facts found"),
}


def _load_cosmic_ray():
    try:
        from cosmic_ray.commands.init import init  # noqa: PLC0415 - present once ./qa setup ran
        from cosmic_ray.mutating import use_mutation  # noqa: PLC0415
        from cosmic_ray.plugins import get_operator  # noqa: PLC0415
        from cosmic_ray.work_db import WorkDB, use_db  # noqa: PLC0415
    except ImportError as err:
        raise SystemExit(f"mutate: cosmic-ray is not installed ({err}): run ./qa setup, or ./qa mutate.") from None
    return init, use_mutation, get_operator, WorkDB, use_db


Span = tuple[tuple[int, int], tuple[int, int]]  # (line, column) from, to: cosmic-ray's positions


def switch_only_spans(source: str, switches: set[str]) -> list[Span]:
    """The code only a defect switch runs: the body of ``if "<switch>" in ...`` / ``if has_defect(...)`` (the
    ``else`` of ``not in`` / ``not has_defect``), the same branches of a conditional expression, and the
    other conjuncts of ``A and <switch on>`` (with the switch off, A never decides).  The test itself stays
    mutable: turning it around switches the defect on in a clean run, which the suites must notice."""
    spans: list[Span] = []

    def names_switch(node: ast.AST) -> bool:
        return any(isinstance(n, ast.Constant) and n.value in switches for n in ast.walk(node))

    def polarity(test: ast.AST) -> str | None:
        """"on" when the test is true only with a switch on, "off" when only with it off, else None."""
        if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
            inner = polarity(test.operand)
            return {"on": "off", "off": "on"}.get(inner or "")
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and names_switch(test.left):
            return {ast.In: "on", ast.NotIn: "off"}.get(type(test.ops[0]))
        if isinstance(test, ast.Call) and any(names_switch(a) for a in test.args):
            return "on"  # cfg.has_defect("<switch>")
        if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) \
                and any(polarity(v) == "on" for v in test.values):
            return "on"
        return None

    def span(first: ast.stmt | ast.expr, last: ast.stmt | ast.expr) -> Span:
        return (first.lineno, first.col_offset), (last.end_lineno or last.lineno, last.end_col_offset or 0)

    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.If, ast.IfExp)):
            continue
        side = polarity(node.test)
        if isinstance(node, ast.If):
            branch = node.body if side == "on" else node.orelse if side == "off" else []
            if branch:
                spans.append(span(branch[0], branch[-1]))
        elif side:
            value = node.body if side == "on" else node.orelse
            spans.append(span(value, value))
        if side == "on" and isinstance(node.test, ast.BoolOp):
            spans += [span(v, v) for v in node.test.values if polarity(v) != "on"]
    return spans


def annotation_spans(source: str) -> list[Span]:
    """The type annotations of a module with ``from __future__ import annotations``: never evaluated, so a
    mutant of one (``dict | None`` made ``dict / None``) changes nothing (equivalent by construction)."""
    tree = ast.parse(source)
    if not any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names) for node in tree.body):
        return []
    found: list[ast.expr] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            every = [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]
            found += [a.annotation for a in every if a is not None and a.annotation is not None]
            if node.returns is not None:
                found.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno or n.lineno, n.end_col_offset or 0)) for n in found]


# Code only the testbed as containers runs (``self.cfg.container_engine`` set: tools/container_lane.py).
# A campaign runs the suites against the testbed as processes, which never reaches it, so no mutant is made
# of it; its test is the container lane's KG-4 (the monitor restarting a service's container), which
# ./qa test runs once (8 min: a lane per mutant is out of reach).  The functions only that code calls:
CONTAINER_ONLY_FUNCTIONS = ("restart_container",)


def container_only_spans(source: str) -> list[Span]:
    """The body of ``if ... and <x>.container_engine:`` and the functions of CONTAINER_ONLY_FUNCTIONS; the
    test stays mutable (turned around, the testbed as processes calls the engine and the suites notice)."""
    def on_containers(test: ast.expr) -> bool:
        values = test.values if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And) else [test]
        return any(isinstance(v, ast.Attribute) and v.attr == "container_engine" for v in values)

    spans: list[Span] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.If) and on_containers(node.test):
            first, last = node.body[0], node.body[-1]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in CONTAINER_ONLY_FUNCTIONS:
            first = last = node
        else:
            continue
        spans.append(((first.lineno, first.col_offset), (last.end_lineno or last.lineno, last.end_col_offset or 0)))
    return spans


def left_out_spans(source: str) -> list[Span]:
    """What no mutant is made of: code only a defect switch runs, code only the testbed as containers
    runs, and annotations never evaluated."""
    return (switch_only_spans(source, switches_named_in(source)) + container_only_spans(source)
            + annotation_spans(source))


def in_spans(position: tuple[int, int], spans: list[Span]) -> bool:
    return any(start <= tuple(position) < end for start, end in spans)


def switches_named_in(source: str) -> set[str]:
    """The defect switches a module's code names (string constants equal to a switch's name)."""
    sys.path.insert(0, str(ROOT))
    from testbed.defects import DEFECTS  # noqa: PLC0415

    return {node.value for node in ast.walk(ast.parse(source))
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in DEFECTS}


# A survivor's triage: equivalent (no behaviour changes), unspecified (a behaviour neither the seed nor
# the contract specifies: the stand-in model's wording, the testbed's own ranking formula), strengthened
# (a test now kills it: named in the reason), open (a gap not yet closed).
VERDICTS = ("equivalent", "unspecified", "strengthened", "open")


def load_triage(path: Path = TRIAGE) -> dict[tuple[str, str, str], dict]:
    """``{(module, operator, mutated line as written): entry}`` from the triage file: each survivor's
    verdict (``equivalent`` with its reason, or ``strengthened`` naming the test that now kills it)."""
    if not path.exists():
        return {}
    entries = tomllib.loads(path.read_text()).get("mutant", [])
    triage = {}
    for entry in entries:
        missing = {"module", "operator", "line", "verdict", "reason"} - entry.keys()
        if missing or entry["verdict"] not in VERDICTS:
            raise SystemExit(f"mutate: {path}: an entry {entry} lacks {sorted(missing)} or has a verdict other "
                             f"than {' / '.join(VERDICTS)}")
        triage[(entry["module"], entry["operator"], entry["line"].strip())] = entry
    return triage


def triage_entry(triage: dict, module: str, operator: str, line: str) -> dict | None:
    """The triage of a mutant: the entry for its operator on that line, else one for every operator there
    (``operator = "*"``: a line whose whole behaviour is equivalent or unspecified)."""
    return triage.get((module, operator, line.strip())) or triage.get((module, "*", line.strip()))


@dataclass
class Outcome:
    module: str
    operator: str
    line_no: int
    line: str
    status: str  # killed, survived, timeout, no-mutation, incompetent, equivalent
    seconds: float
    diff: str = ""
    failed: list[str] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)


def copy_tree(dest: Path) -> None:
    """The project's files as git knows them (tracked and untracked, not ignored) into ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,  # noqa: S607
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def robot_command(tree: Path, suites: tuple[str, ...], outdir: Path, tests: tuple[str, ...] = ()) -> list[str]:
    selected = [arg for name in suites for arg in ("--suite", f"Suites.{name}")]
    selected += [arg for name in tests for arg in ("--test", name)]
    return [sys.executable, "-m", "robot", "--exitonfailure", "--outputdir", str(outdir), "--log", "NONE",
            "--report", "NONE", "--console", "none", "--pythonpath", f"{tree}:{tree / 'libraries'}",
            *selected, str(tree / "suites")]


def run_robot(command: list[str], cwd: Path, timeout_s: float, worker: int = 0) -> int | None:
    """Exit status of one robot run, or None when it ran past ``timeout_s`` (its process group is killed;
    the testbed it started stops by its watchdog)."""
    import signal  # noqa: PLC0415

    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",  # a mutant's source is never hidden by an old .pyc
           # Ports of its own (slots 8 and up of the testbed's range): a testbed of your own ./qa run, which
           # a robot run would take as running and reuse, is never the one a mutant is judged on.
           "XNAI_TESTBED_BASE_PORT": str(CAMPAIGN_BASE_PORT + WORKER_PORT_STRIDE * worker)}
    proc = subprocess.Popen(command, cwd=cwd, env=env, start_new_session=True,  # noqa: S603
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


def judge(tree: Path, suites: tuple[str, ...], outdir: Path, timeout_s: float,
          worker: int = 0) -> tuple[str, list[str], list[str]]:
    """Runs the suites once: ``(verdict, failed tests, tests that ran)``.  A failure counts only when it
    repeats: the first failing test runs again alone, and a pass there makes the verdict ``flaky`` (a
    test that fails by chance would kill mutants it never noticed)."""
    code = run_robot(robot_command(tree, suites, outdir), tree, timeout_s, worker)
    failed, ran = read_output(outdir / "output.xml")
    if code is None:
        return "timeout", failed, ran
    if code == 0:
        return "passed", failed, ran
    if not failed:  # robot itself could not run (a suite that does not parse, ...): counts as failing
        return "failed", failed, ran
    suite, test = failed[0].split(".", 1)
    again = run_robot(robot_command(tree, (suite,), outdir / "again", (test,)), tree, timeout_s, worker)
    return ("failed" if again != 0 else "flaky"), failed, ran


def read_output(output: Path) -> tuple[list[str], list[str]]:
    """(failed tests, tests that ran) of a robot output.xml."""
    if not output.exists():
        return [], []
    from robot.api import ExecutionResult  # noqa: PLC0415

    tests = list(ExecutionResult(str(output)).suite.all_tests)
    ran = [f"{t.parent.name}.{t.name}" for t in tests if t.status != "SKIP"]
    return [f"{t.parent.name}.{t.name}" for t in tests if t.status == "FAIL"], ran


def parse_budget(text: str) -> float:
    from robot.utils import timestr_to_secs  # noqa: PLC0415

    try:
        return timestr_to_secs(text)
    except ValueError:
        raise SystemExit(f"mutate: --budget {text!r} is not a time: give 30m, 1h, 900s ...") from None


def campaign(budget_s: float, modules: list[str], seed: int, results: Path, workers: int = 1) -> dict:
    init, use_mutation, get_operator, work_db_cls, use_db = _load_cosmic_ray()
    started = time.monotonic()
    trees = [results / f"tree-{w}" for w in range(workers)]
    for tree in trees:  # one copy per worker: each mutates its own files, runs its own testbed
        copy_tree(tree)
    runs = results / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    triage = load_triage()
    rng = random.Random(seed)  # noqa: S311 - a reproducible sample, not a secret
    note = f"seed {seed}, budget {budget_s:.0f} s, {workers} worker{'s' if workers > 1 else ''}"
    print(f"[mutate] campaign over {', '.join(modules)} ({note}); the project copied to {results}/tree-*",
          flush=True)

    baselines: dict[str, float] = {}
    pools: dict[str, list] = {}
    generated: dict[str, int] = {}
    left_out: dict[str, int] = {}
    for name in modules:
        module = MODULES[name]
        paths = [trees[0] / file for file in module.paths]
        skips = {str(path): left_out_spans(path.read_text()) for path in paths}
        with use_db(str(results / f"{name}.sqlite"), work_db_cls.Mode.create) as db:
            db.clear()
            init(paths, db, {})
            items = list(db.pending_work_items)
        generated[name] = len(items)
        kept = [item for item in items
                if not in_spans(item.mutations[0].start_pos, skips[str(item.mutations[0].module_path)])]
        left_out[name] = len(items) - len(kept)
        # In a fixed order before the shuffle (cosmic-ray's job ids are random): one seed, one sample.
        kept.sort(key=lambda item: (str(item.mutations[0].module_path), item.mutations[0].operator_name,
                                    item.mutations[0].occurrence))
        rng.shuffle(kept)
        pools[name] = kept
        t0 = time.monotonic()
        verdict, failed, ran = judge(trees[0], module.suites, runs / f"{name}-baseline", timeout_s=3600)
        baselines[name] = time.monotonic() - t0
        print(f"[mutate] {name}: {len(items)} mutants ({left_out[name]} in switch-only or container-only code or "
              "annotations left out); "
              f"baseline {baselines[name]:.0f} s, {len(ran)} tests, {verdict}", flush=True)
        if verdict == "flaky":
            print(f"[mutate] {name}: {failed[0]} failed once and passed alone: a flaky test; the campaign goes on "
                  "(each mutant's failure must repeat to kill it)", flush=True)
        elif verdict != "passed":
            raise SystemExit(f"mutate: the unmutated {name} suites fail ({', '.join(failed[:3]) or verdict}): "
                             "a red baseline kills every mutant and measures nothing. Fix that first.")

    outcomes: list[Outcome] = []
    lock = threading.Lock()
    order = [name for name in modules if pools[name]]
    turn = [0]

    def next_mutant():
        """The next module in turn whose mutant still fits the budget, and that mutant (or None)."""
        with lock:
            while order:
                name = order[turn[0] % len(order)]
                # A mutant under parallel load takes longer than the quiet baseline: half as long again.
                if time.monotonic() - started + baselines[name] * (1.5 if workers > 1 else 1) > budget_s:
                    order.remove(name)  # this module's next mutant would not fit; a quicker one may
                    continue
                item = pools[name].pop()
                if not pools[name]:
                    order.remove(name)
                else:
                    turn[0] += 1
                return name, item.mutations[0]
            return None

    counter = [0]

    def work(worker: int) -> None:
        tree = trees[worker]
        while (picked := next_mutant()) is not None:
            name, spec = picked
            module = MODULES[name]
            with lock:
                counter[0] += 1
                number = counter[0]
            path = tree / Path(spec.module_path).relative_to(trees[0])
            line_no = spec.start_pos[0]
            line = path.read_text().splitlines()[line_no - 1].strip()
            operator = get_operator(spec.operator_name)(**(spec.operator_args or {}))
            t0 = time.monotonic()
            with use_mutation(path, operator, spec.occurrence) as (original, mutated):  # restored on leaving
                if mutated is None:
                    status, diff = "no-mutation", ""
                    failed: list[str] = []
                    ran: list[str] = []
                else:
                    file = Path(spec.module_path).relative_to(trees[0])
                    diff = "".join(difflib.unified_diff(original.splitlines(True), mutated.splitlines(True),
                                                        f"a/{file}", f"b/{file}", n=2))
                    verdict, failed, ran = judge(tree, module.suites, runs / f"{name}-{number:03d}",
                                                 timeout_s=3 * baselines[name] + 60, worker=worker)
                    status = {"failed": "killed", "passed": "survived"}.get(verdict, verdict)
            seconds = time.monotonic() - t0
            entry = triage_entry(triage, name, spec.operator_name, line)
            if status in ("survived", "flaky") and entry and entry["verdict"] in ("equivalent", "unspecified"):
                status = entry["verdict"]
            with lock:
                outcomes.append(Outcome(name, spec.operator_name, line_no, line, status, round(seconds, 1), diff,
                                        failed, ran))
            print(f"[mutate] {number:3d} {name}:{line_no} {spec.operator_name.split('/')[-1]}: {status} "
                  f"({seconds:.0f} s{', ' + failed[0] if failed else ''})", flush=True)

    threads = [threading.Thread(target=work, args=(w,), name=f"mutate-worker-{w}") for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    report = summarize(outcomes, generated, left_out, baselines, time.monotonic() - started, note, triage)
    write_report(report, results)
    return report


STATUSES = ("killed", "timeout", "survived", "flaky", "equivalent", "unspecified", "no-mutation")


def summarize(outcomes: list[Outcome], generated: dict[str, int], left_out: dict[str, int],
              baselines: dict[str, float], elapsed: float, note: str, triage: dict) -> dict:
    """Per module the counts and the score: (killed + timed out) / (killed + timed out + survived + flaky);
    equivalent and unspecified mutants (the triage file's reasons) and those cosmic-ray could not apply are
    not counted; a flaky one (its failure did not repeat) counts as not killed."""
    modules = {}
    for name, count_generated in generated.items():
        mine = [o for o in outcomes if o.module == name]
        count = {s: sum(1 for o in mine if o.status == s) for s in STATUSES}
        caught = count["killed"] + count["timeout"]
        judged = caught + count["survived"] + count["flaky"]
        modules[name] = {"generated": count_generated, "switch_only_left_out": left_out[name], "sampled": len(mine),
                         **count, "baseline_s": round(baselines[name], 1),
                         "score": round(caught / judged, 3) if judged else None}
    untriaged = [o for o in outcomes if o.status in ("survived", "flaky")
                 and triage_entry(triage, o.module, o.operator, o.line) is None]
    return {"note": note, "elapsed_s": round(elapsed), "modules": modules,
            "outcomes": [o.__dict__ for o in outcomes], "untriaged_survivors": len(untriaged)}


def write_report(report: dict, results: Path) -> None:
    (results / "report.json").write_text(json.dumps(report, indent=1))
    lines = [f"# Mutation campaign ({report['note']}, {report['elapsed_s']} s)", "",
             ("| module | generated | left out (switch-only, container-only, annotations) | sampled | killed | "
              "timed out | survived | flaky | equivalent | unspecified | score |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in report["modules"].items():
        score = f"{m['score']:.0%}" if m["score"] is not None else "-"
        lines.append(f"| {name} | {m['generated']} | {m['switch_only_left_out']} | {m['sampled']} | {m['killed']} | "
                     f"{m['timeout']} | {m['survived']} | {m['flaky']} | {m['equivalent']} | {m['unspecified']} | "
                     f"{score} |")
    lines += ["", ("Score: (killed + timed out) / (killed + timed out + survived + flaky). Equivalent and "
              "unspecified mutants (tools/mutation-triage.toml, each with its reason) and mutants cosmic-ray "
              "could not apply are not counted; a flaky one (its failing test passed when run again) is not "
              f"killed. Survivors not yet in the triage file: {report['untriaged_survivors']}."), ""]
    for o in report["outcomes"]:
        if o["status"] in ("survived", "flaky"):
            lines += [f"## {o['status'].title()}: {o['module']} line {o['line_no']} ({o['operator']})", "",
                      f"Tests that ran ({len(o['ran'])}): {', '.join(o['ran'])}", "", "```diff", o["diff"].strip(),
                      "```", ""]
    (results / "report.md").write_text("\n".join(lines) + "\n")
    print(f"[mutate] report: {results / 'report.md'}", flush=True)
    for name, m in report["modules"].items():
        score = f"{m['score']:.0%}" if m["score"] is not None else "no mutant judged"
        print(f"[mutate] {name}: {m['sampled']} sampled of {m['generated']}: " +
              ", ".join(f"{m[s]} {s}" for s in STATUSES if m[s]) + f"; score {score}")


def list_modules() -> int:
    _load_cosmic_ray()
    from cosmic_ray.commands.init import _all_work_items  # noqa: PLC0415 - init's own enumeration, without a db

    for name, module in MODULES.items():
        for file in module.paths:
            skip = left_out_spans((ROOT / file).read_text())
            items = list(_all_work_items([ROOT / file], {}))
            kept = sum(1 for item in items if not in_spans(item.mutations[0].start_pos, skip))
            print(f"{name:<8} {file:<32} {len(items):>4} mutants, {kept:>4} outside switch-only and "
                  "container-only code and annotations")
        print(f"{'':<8} suites: {', '.join(module.suites)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="30m", help="wall time for the whole campaign (default 30m)")
    parser.add_argument("--module", action="append", choices=sorted(MODULES), help="only these (repeatable)")
    parser.add_argument("--seed", type=int, default=1, help="the sample's random seed (default 1)")
    parser.add_argument("--workers", type=int, default=1, choices=range(1, 5),
                        help="mutants judged at once, each in its own copy with its own testbed (default 1)")
    parser.add_argument("--results", type=Path, default=ROOT / "results" / "mutation")
    parser.add_argument("--list", action="store_true", help="the modules, their suites and mutant counts")
    args = parser.parse_args(argv)
    if args.list:
        return list_modules()
    args.results.mkdir(parents=True, exist_ok=True)
    report = campaign(parse_budget(args.budget), args.module or list(MODULES), args.seed, args.results,
                      args.workers)
    return 0 if report["outcomes"] else 1


if __name__ == "__main__":
    sys.exit(main())
