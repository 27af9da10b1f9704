"""Connect tripwire: every Python process of a test run refuses, and records, a connection to any
address but loopback.

``./qa test`` puts this folder first on ``PYTHONPATH`` with ``XNAI_TRIPWIRE`` naming a JSON-lines file;
Python imports ``sitecustomize`` at start-up, so robot, pabot's workers, pytest and every testbed
service they start carry it. A refused attempt is written to the file (pid, command, address, the
calling frames) and fails with ``ConnectionRefusedError``; ``python tools/tripwire/sitecustomize.py
FILE`` prints the file and exits 1 when it holds any. Without ``XNAI_TRIPWIRE`` nothing is changed.

It guards ``socket.socket.connect``/``connect_ex``, which ``requests``, ``aiohttp``, ``asyncio``,
``redis`` and the raw load client all use; a library that connects from C (libpq under psycopg,
libuv under uvloop) is not seen, and takes its host from the validated variables.
"""

from __future__ import annotations

import os
import sys

_LOG = os.environ.get("XNAI_TRIPWIRE", "")


def _install(log: str) -> None:
    import errno  # noqa: PLC0415
    import ipaddress  # noqa: PLC0415
    import json  # noqa: PLC0415
    import socket  # noqa: PLC0415
    import time  # noqa: PLC0415
    import traceback  # noqa: PLC0415

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    resolve = socket.getaddrinfo

    def loopback_ip(text: str) -> bool:
        ip = ipaddress.ip_address(text.split("%")[0])
        return (getattr(ip, "ipv4_mapped", None) or ip).is_loopback

    def loopback(host: str) -> bool:
        try:
            return loopback_ip(host)
        except ValueError:  # a name: where it resolves to
            try:
                return all(loopback_ip(str(info[4][0])) for info in resolve(host, None))
            except OSError:
                return True  # does not resolve: the connect itself fails, reaching nobody

    def check(sock: socket.socket, address) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
            return
        if loopback(str(address[0])):
            return
        entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "pid": os.getpid(), "argv": sys.argv[:6],
                 "address": [str(part) for part in address[:2]],
                 "stack": traceback.format_stack(limit=8)[:-2]}
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (json.dumps(entry) + "\n").encode())
        finally:
            os.close(fd)
        raise ConnectionRefusedError(errno.ECONNREFUSED, f"tripwire: a connection to {address[0]}:{address[1]} "
                                     "was refused (only loopback is allowed in this run)")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]  # the tripwire: every connect is checked
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def report(path: str) -> int:
    """Prints what the tripwire refused; 1 when it refused anything."""
    import json  # noqa: PLC0415

    try:
        lines = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()]  # noqa: SIM115
    except FileNotFoundError:
        lines = []
    for entry in lines:
        print(f"tripwire: {entry['time']} pid {entry['pid']} ({' '.join(entry['argv'])}) tried "
              f"{':'.join(entry['address'])}\n" + "".join(entry["stack"][-3:]))
    print(f"tripwire: {len(lines)} connection attempt(s) to an address other than loopback")
    return 1 if lines else 0


if _LOG and __name__ != "__main__":
    _install(_LOG)

if __name__ == "__main__":
    sys.exit(report(sys.argv[1]))
