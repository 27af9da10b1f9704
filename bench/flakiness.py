"""Flakiness: the same suites run N times in a row against a clean testbed; every verdict change counts.

    .venv/bin/python bench/flakiness.py [--runs 10] [--suite "Kg2 Circuit Breakers" ...] [--pabot]
                                        [--background-load 0.5]

Each run goes through ``suites/__init__.robot`` (it starts and stops its own testbed, fast profile, in a
private home and port block).  Prints per run the failed tests and at the end every test whose verdict
was not the same in all runs, with the run numbers; writes ``results/bench/flakiness.json``.
``--background-load SHARE`` keeps one other process busy SHARE of one core for the whole bench
(``bench/busy.py``): verdicts must hold on a machine that is not idle.
Target: zero verdict changes.  Exits 1 when a verdict changed or a test failed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from robot.api import ExecutionResult, ResultVisitor

REPO = Path(__file__).resolve().parent.parent


class _Verdicts(ResultVisitor):
    def __init__(self):
        self.verdicts: dict[str, str] = {}
        self.messages: dict[str, str] = {}

    def visit_test(self, test):
        name = test.full_name.split(".", 1)[1]
        self.verdicts[name] = test.status
        if test.failed:
            self.messages[name] = test.message[:500]


def one_run(index: int, suites: list[str], pabot: bool, home: Path, base_port: int) -> tuple[dict, float]:
    out = home / f"run-{index}"
    env = {**os.environ, "XNAI_TESTBED_HOME": str(home / "testbeds"), "XNAI_TESTBED_BASE_PORT": str(base_port),
           "XNAI_PROFILE": "fast", "XNAI_TESTBED_DEFECTS": "",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}  # pabot starts `robot`
    selection = [a for s in suites for a in ("--suite", s)]
    runner = ([str(Path(sys.executable).parent / "pabot"), "--processes", "2", "--pabotlibport", "0",
               "--ordering", str(REPO / "suites" / "pabot-order.txt")] if pabot
              else [sys.executable, "-m", "robot"])
    started = time.perf_counter()
    subprocess.run([*runner, "--outputdir", str(out), "--log", "NONE", "--report", "NONE", "--console", "dotted",  # noqa: S603
                    *selection, "suites/"], cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
                   check=False)
    wall = time.perf_counter() - started
    verdicts = _Verdicts()
    ExecutionResult(str(out / "output.xml")).visit(verdicts)
    for name, message in verdicts.messages.items():  # why it failed, before the temporary output goes
        print(f"    {name}: {message}", flush=True)
    return verdicts.verdicts, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--suite", action="append", default=[], help="a suite name (default: every suite)")
    parser.add_argument("--pabot", action="store_true", help="run each round with pabot (2 processes)")
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("BENCH_BASE_PORT", "19500")))
    parser.add_argument("--background-load", type=float, default=0.0, metavar="SHARE",
                        help="keep one other process busy SHARE (0..1) of one core meanwhile")
    args = parser.parse_args()
    background = None
    if args.background_load:
        background = subprocess.Popen([sys.executable, str(REPO / "bench" / "busy.py"),  # noqa: S603
                                       "--share", str(args.background_load), "--seconds", str(4 * 3600)])
    try:
        return _bench(args)
    finally:
        if background is not None:
            background.terminate()
            background.wait(timeout=10)


def _bench(args) -> int:
    history: dict[str, list[str]] = defaultdict(list)
    walls = []
    with tempfile.TemporaryDirectory(prefix="xnai-flaky-") as tmp:
        for index in range(1, args.runs + 1):
            verdicts, wall = one_run(index, args.suite, args.pabot, Path(tmp), args.base_port)
            walls.append(round(wall, 1))
            for name, status in verdicts.items():
                history[name].append(status)
            failed = sorted(n for n, s in verdicts.items() if s == "FAIL")
            print(f"run {index}/{args.runs}: {len(verdicts)} tests, {len(failed)} failed, {wall:.0f} s"
                  + "".join(f"\n    FAIL {n}" for n in failed), flush=True)
    changed = {n: v for n, v in history.items() if len(set(v)) > 1 or len(v) != args.runs}
    failing = {n: v for n, v in history.items() if "FAIL" in v}
    report = {"runs": args.runs, "suites": args.suite or "all", "pabot": args.pabot, "wall_s": walls,
              "background_load_share_of_one_core": args.background_load,
              "tests": len(history), "verdict_changes": changed, "failing": sorted(failing)}
    out = REPO / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "flakiness.json").write_text(json.dumps(report, indent=2))
    print(f"\n{len(history)} tests x {args.runs} runs: {len(changed)} verdict change(s), "
          f"{len(failing)} test(s) failed at least once; wall per run {walls}")
    for name, seen in changed.items():
        print(f"  {name}: {' '.join(seen)}")
    return 1 if changed or failing else 0


if __name__ == "__main__":
    sys.exit(main())
