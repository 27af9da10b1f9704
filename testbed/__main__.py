"""``python -m testbed up | down | status | defects``: the reference XNAi stack.

Examples::

    python -m testbed up                         # fast profile, no defects, base port 18000
    python -m testbed up --defect slow-health    # break one behaviour on purpose
    python -m testbed status
    python -m testbed down
    XNAI_TESTBED_BASE_PORT=19000 python -m testbed up   # a second, independent testbed
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from xnai_contract import PROFILES

from . import config as cfgmod
from . import defects as defect_registry
from . import supervisor


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m testbed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--base-port", type=int, help="first port of the testbed (env XNAI_TESTBED_BASE_PORT, default 18000)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start every service (no-op if already running)")
    up.add_argument("--defect", action="append", default=[], metavar="NAME",
                    help="switch a defect on (repeatable; env XNAI_TESTBED_DEFECTS)")
    up.add_argument("--profile", choices=sorted(PROFILES),
                    help="timing profile (env XNAI_PROFILE, default fast)")
    up.add_argument("--debug-endpoints", action="store_true",
                    help="enable the RAG API's /_debug routes (env XNAI_TESTBED_DEBUG=1)")
    up.add_argument("--owner", default="manual", help=argparse.SUPPRESS)
    up.add_argument("--watch-pid", type=int, help=argparse.SUPPRESS)  # a robot run: down when it dies
    watch = sub.add_parser("watch", help=argparse.SUPPRESS)
    watch.add_argument("--pid", type=int, required=True)
    watch.add_argument("--started-at", type=float, required=True)
    sub.add_parser("down", help="stop every service (not an error when nothing runs)")
    st = sub.add_parser("status", help="one line per service")
    st.add_argument("--json", action="store_true")
    sub.add_parser("defects", help="list the defect switches and what each breaks")
    sub.add_parser("clean", help="delete the run folder and data of a stopped testbed")
    svc = sub.add_parser("service", help="act on one service: stop, kill, start, restart, pause, resume, pid")
    svc.add_argument("action", choices=["stop", "kill", "start", "restart", "pause", "resume", "pid"])
    svc.add_argument("name")
    svc.add_argument("--grace", type=float, default=supervisor.STOP_GRACE_S,
                     help="seconds between SIGTERM and SIGKILL for stop/restart")
    left = sub.add_parser("leftovers", help="find testbed processes left running (by their marker, not state.json)")
    left.add_argument("--snapshot", metavar="FILE", help="write the testbeds running now (before a test run)")
    left.add_argument("--check", metavar="FILE",
                      help="stop and list every testbed that runs now but not in FILE's snapshot; exit 1 if any")
    serve = sub.add_parser("serve", help="run one service in the foreground, as a container does "
                                         "(docker/compose.testbed.yml; the config must exist)")
    serve.add_argument("name")
    sub.add_parser("owner", help=argparse.SUPPRESS)
    sub.add_parser("describe", help="the testbed's config as JSON, secrets included (for variables/testbed.py)")
    return parser


def _leftovers(args) -> int:
    """``leftovers --snapshot F`` before a test run, ``--check F`` after it: a testbed the run started
    and left running is stopped, listed, and makes the check fail (testbeds that ran before stay)."""
    running = supervisor.marked_processes()
    if args.snapshot:
        Path(args.snapshot).write_text(json.dumps(sorted(running)))
        return 0
    before = set(json.loads(Path(args.check).read_text())) if args.check and Path(args.check).exists() else set()
    # A testbed started by hand while the run went on is the user's: neither stopped nor reported.
    left = {run: procs for run, procs in running.items()
            if run not in before and supervisor.owner_of(Path(run)) != "manual"}
    for run, procs in sorted(left.items()):
        print(f"testbed left running: {run} ({len(procs)} processes, pids "
              f"{', '.join(str(p.pid) for p in procs[:6])}{' ...' if len(procs) > 6 else ''}); stopping it")
        supervisor.stop_processes(procs)
    return 1 if left else 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    cfg: cfgmod.TestbedConfig | None  # created by up, read back by the other commands
    try:
        if args.base_port is not None:
            os.environ["XNAI_TESTBED_BASE_PORT"] = str(args.base_port)
        if args.command == "defects":
            for d in defect_registry.DEFECTS.values():
                print(f"{d.name}\n    breaks:    {d.breaks}")
            print("\nThe tests that catch each switch: ./qa defects")
            return 0
        if args.command == "leftovers":
            return _leftovers(args)
        if args.command == "serve":
            path = cfgmod.run_dir_for(cfgmod.base_port_from_env()) / "config.json"
            if not path.exists():
                print(f"testbed serve: no {path}: the lane writes it before the containers start "
                      "(tools/container_lane.py)", file=sys.stderr)
                return 2
            from .container import serve  # noqa: PLC0415 - the container's command only

            return serve(cfgmod.TestbedConfig.from_file(path), args.name)
        if args.command == "describe":
            cfg = cfgmod.load_or_create()
            data = json.loads(cfg.to_json())
            data["ports"] = cfg.ports
            print(json.dumps(data))
            return 0
        if args.command == "up":
            if args.defect:
                merged = [*filter(None, os.environ.get("XNAI_TESTBED_DEFECTS", "").split(",")), *args.defect]
                os.environ["XNAI_TESTBED_DEFECTS"] = ",".join(merged)
            if args.profile:
                os.environ["XNAI_PROFILE"] = args.profile
            if args.debug_endpoints:
                os.environ["XNAI_TESTBED_DEBUG"] = "1"
            cfg = cfgmod.load_or_create()
            if any(r.alive for r in supervisor.status(cfg)):
                # Asked for other settings than it runs with: say so rather than silently ignore them
                # (or repair a testbed with settings its live services do not have).
                asked = []
                if os.environ.get("XNAI_PROFILE") and os.environ["XNAI_PROFILE"] != cfg.profile:
                    asked.append(f"profile {os.environ['XNAI_PROFILE']} (it runs {cfg.profile})")
                if os.environ.get("XNAI_TESTBED_DEFECTS") and sorted(cfgmod.defects_from_env()) != sorted(cfg.defects):
                    asked.append(f"defects {', '.join(cfgmod.defects_from_env())} (it runs with "
                                 f"{', '.join(cfg.defects) or 'none'})")
                if asked:
                    print(f"testbed: already running in {cfg.run_dir}, not with the {' and '.join(asked)} asked for: "
                          "run 'python -m testbed down' first", file=sys.stderr)
                    return 2
            if supervisor.is_running(cfg):
                print(f"testbed already running in {cfg.run_dir} (gateway http://127.0.0.1:{cfg.port('gateway')})")
                return 0
            cfg = cfgmod.load_or_create(apply_env=True)
            started = supervisor.up(cfg, owner=args.owner)
            if not started:
                print(f"testbed already running in {cfg.run_dir}")
                return 0
            if isinstance(started, list):
                print(f"testbed repaired: started {', '.join(started)} again in {cfg.run_dir} "
                      f"(owner {supervisor.owner(cfg)}, left as it was)")
                return 0
            if args.watch_pid:
                supervisor.start_watchdog(cfg, args.watch_pid)
            defects = ", ".join(cfg.defects) or "none"
            print(f"testbed up: gateway http://127.0.0.1:{cfg.port('gateway')}  profile {cfg.profile}  "
                  f"defects {defects}  run folder {cfg.run_dir}")
            return 0
        cfg = cfgmod.load_saved()
        if args.command == "watch":
            return supervisor.watch(cfg, args.pid, args.started_at) if cfg is not None else 0
        if cfg is None:
            if args.command == "status":
                print("testbed not running (no run folder yet)")
                return 3
            if args.command == "owner":
                return 3
            if args.command == "service":
                print(f"testbed: no testbed runs here (no run folder for base port {cfgmod.base_port_from_env()}): "
                      f"nothing to {args.action}", file=sys.stderr)
                return 3
            print("testbed not running; nothing to stop" if args.command == "down" else "nothing to clean")
            return 0
        if args.command == "clean":
            if supervisor.is_running(cfg) or any(r.alive for r in supervisor.status(cfg)):
                print("testbed: still running; run 'python -m testbed down' first", file=sys.stderr)
                return 2
            removed = supervisor.clean(cfg)  # refuses, too, while any marked process lives
            print("removed: " + ", ".join(removed))
            return 0
        if args.command == "service":
            if args.action == "pid":
                pid = supervisor.service_pid(cfg, args.name)
                print(pid or "")
                return 0 if pid else 3
            if args.grace < 0:
                raise ValueError(f"--grace {args.grace}: use a number of seconds >= 0")
            print(f"{args.name}: {supervisor.service_action(cfg, args.action, args.name, args.grace)}")
            return 0
        if args.command == "down":
            stopped = supervisor.down(cfg)
            print("stopped: " + ", ".join(stopped) if stopped else "testbed not running; nothing to stop")
            return 0
        if args.command == "owner":
            print(supervisor.owner(cfg) or "")
            return 0 if supervisor.is_running(cfg) else 3
        rows = supervisor.status(cfg)
        faults = supervisor.faults_in_place(cfg)
        if args.json:
            print(json.dumps({"run_dir": cfg.run_dir, "profile": cfg.profile, "defects": cfg.defects,
                              "services": [r.__dict__ for r in rows], "faults": faults}, indent=2))
        else:
            for r in rows:
                word = "paused" if r.paused else "running" if r.alive else "stopped"
                note = "" if r.recorded else "  (found by its marker: state.json does not record it)"
                print(f"{r.name:10} port {r.port:<6} {word:8} pid {r.pid or '-'}{note}")
            for fault in faults:
                print(f"fault in place: {fault}")
            if not faults:
                print("no fault in place (fault ledger and fault proxy)")
        return 0 if all(r.alive for r in rows) else 3
    except (supervisor.TestbedError, ValueError) as err:
        print(f"testbed: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
