"""Wall time of every suite with pabot (2 processes) against plain sequential robot, same machine, same session.

    .venv/bin/python bench/parallel_speedup.py [--rounds 1]

Each run starts its own fresh testbeds (fast profile).  Reports both wall times, the speed-up
(sequential / pabot) and whether the verdicts agree.  Targets (issue 10): pabot within 6 minutes and at
least 1.5x faster than sequential.  Writes ``results/bench/parallel_speedup.json``; exits 1 when a
target is missed or a verdict differs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flakiness import REPO, one_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--base-port", type=int, default=19500)
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="xnai-speedup-") as tmp:
        for index in range(args.rounds):
            pabot, pabot_wall = one_run(2 * index + 1, [], True, Path(tmp), args.base_port)
            robot, robot_wall = one_run(2 * index + 2, [], False, Path(tmp), args.base_port)
            rows.append({"pabot_s": round(pabot_wall, 1), "robot_s": round(robot_wall, 1),
                         "speedup": round(robot_wall / pabot_wall, 2), "same_verdicts": pabot == robot,
                         "tests": len(robot), "failed_pabot": sorted(n for n, s in pabot.items() if s == "FAIL"),
                         "failed_robot": sorted(n for n, s in robot.items() if s == "FAIL")})
            print(json.dumps(rows[-1]), flush=True)
    out = REPO / "results" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "parallel_speedup.json").write_text(json.dumps(rows, indent=2))
    ok = all(r["pabot_s"] <= 360 and r["speedup"] >= 1.5 and r["same_verdicts"] for r in rows)
    print("targets met" if ok else "target missed: pabot <= 360 s, speed-up >= 1.5x, same verdicts")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
