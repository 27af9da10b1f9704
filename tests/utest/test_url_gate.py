"""The one address gate: a corpus of tricky URLs, redirects, and the clients that must not get around it.

Nothing here leaves the machine, even with a broken gate: a spy on ``socket.socket.connect`` records
every attempt and refuses any but loopback (the tests assert none was made), DNS names are resolved by
a stand-in ``getaddrinfo``, and the foreign address is a documentation one (RFC 5737).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from xnai_qa import load, safehttp, targetconfig
from xnai_qa.targetconfig import TargetConfigError

FOREIGN = "192.0.2.10"  # TEST-NET-1 (RFC 5737): documentation only, never a real host

# DNS names this corpus uses, and what a resolver would answer for them.
FAKE_DNS = {
    "evil.example": ["192.0.2.10"],
    "mixed.example": ["127.0.0.1", "192.0.2.10"],
    "db.internal": ["127.0.0.1"],
}

REFUSED = [
    ("http://10.0.0.5:80/", "a private address"),
    ("http://10.0.0.5\\@127.0.0.1:24000/", "a backslash: requests connects to 10.0.0.5, urllib reads 127.0.0.1"),
    ("http://user:pw@127.0.0.1/", "user info"),
    ("http://127.0.0.1:80@10.0.0.5/", "user info that looks like a host"),
    ("http://[::ffff:10.0.0.1]/", "an IPv4-mapped IPv6 address"),
    ("http://[::]/", "the IPv6 unspecified address"),
    ("http://0.0.0.0/", "the IPv4 unspecified address"),
    ("http://167772165/", "10.0.0.5 written as one decimal number"),
    ("http://012.0.0.5/", "10.0.0.5 with an octal first byte"),
    ("http://0x0a000005/", "10.0.0.5 in hex"),
    ("http://evil.example/", "a name that resolves elsewhere"),
    ("http://mixed.example/", "a name with one loopback and one foreign address"),
    ("http://no-such-host.invalid/", "a name that does not resolve"),
    ("http://%31%32%37.0.0.1/", "a percent-encoded host"),
    ("http:///path", "no host"),
    ("http://127.0.0.1 /", "a space"),
    ("http://127.0.0.1\t/", "a tab"),
    ("http://127.0.0.1\n.evil.example/", "a newline"),
]

ACCEPTED = [
    "http://127.0.0.1:8000/xnai/api/v1/health",
    "http://[::1]:8000/",
    "http://localhost:8000/",
    "http://LOCALHOST:8000/",
    "http://2130706433:8000/",  # 127.0.0.1 as one number: it does resolve to loopback, and connects there
    "http://0177.0.0.1:8000/",  # 127.0.0.1 with an octal first byte
    "http://127.1:8000/",
    "http://db.internal:5432/",
    "http://[::ffff:127.0.0.1]:8000/",  # IPv4-mapped loopback
    "unix:///var/run/docker.sock",
]


@pytest.fixture(autouse=True)
def fake_dns(monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if isinstance(host, str) and host.lower() in FAKE_DNS:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, 0)) for addr in FAKE_DNS[host.lower()]]
        if isinstance(host, str) and host.endswith(".invalid"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture(autouse=True)
def connects(monkeypatch):
    """Every address a socket of this process tries to connect to (any but loopback is refused)."""
    seen: list = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def refuse_foreign(address):  # a broken gate must fail these tests, never reach another machine
        seen.append(address)
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "::1"):
            raise ConnectionRefusedError(f"test spy: refused {address}")

    def connect(self, address):
        refuse_foreign(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        refuse_foreign(address)
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


@pytest.mark.parametrize(("url", "why"), REFUSED, ids=[why for _, why in REFUSED])
def test_the_gate_refuses(url, why):
    with pytest.raises(TargetConfigError):
        targetconfig.check_url(url, [])


@pytest.mark.parametrize("url", ACCEPTED)
def test_the_gate_lets_loopback_through(url):
    targetconfig.check_url(url, [])


def test_a_host_listed_in_allowed_hosts_passes():
    assert targetconfig.check_url("http://10.0.0.5:8000/", ["10.0.0.5"]) == "10.0.0.5"
    with pytest.raises(TargetConfigError, match="ALLOWED_HOSTS"):
        targetconfig.check_url("http://10.0.0.6:8000/", ["10.0.0.5"])


def test_every_url_variable_is_checked_at_start():
    variables = {"ALLOWED_HOSTS": [], "GATEWAY_URL": "http://10.0.0.5\\@127.0.0.1:1", "MONITOR_URL": "http://evil.example/",
                 "DOCKER_URL": "tcp://10.0.0.5:2375", "RAG_API_URL": "http://127.0.0.1:1",
                 "SERVICES": {"rag_api": {"host": "127.0.0.1", "port": 1, "health_url": "http://167772165/health"}}}
    problems = "\n".join(targetconfig.url_problems(variables))
    for name in ("${GATEWAY_URL}", "${MONITOR_URL}", "${DOCKER_URL}", "${SERVICES}['rag_api'][health_url]"):
        assert name in problems
    assert "${RAG_API_URL}" not in problems


# ------------------------------------------------------------- redirects --
class _Redirector(BaseHTTPRequestHandler):
    def do_GET(self):
        port = self.server.server_address[1]
        targets = {"/to-foreign": f"http://{FOREIGN}/x", "/to-foreign-relative": f"//{FOREIGN}/x",
                   "/to-backslash": f"http://{FOREIGN}\\@127.0.0.1:{port}/ok", "/to-local": f"http://127.0.0.1:{port}/ok",
                   "/to-number": f"http://2130706433:{port}/ok"}
        if self.path in targets:
            self.send_response(302)
            self.send_header("Location", targets[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _foreign(seen):
    return [addr for addr in seen if isinstance(addr, tuple) and addr[0] != "127.0.0.1"]


@pytest.mark.parametrize("path", ["/to-foreign", "/to-foreign-relative", "/to-backslash"])
def test_a_redirect_to_another_host_is_refused_before_connecting(server, connects, path):
    with pytest.raises(safehttp.RequestRefused, match="not sent") as err:
        safehttp.request("GET", server + path, [], timeout=5)
    assert FOREIGN in str(err.value)
    assert isinstance(err.value, requests.RequestException)  # the libraries' handlers report it as a failed request
    assert connects, "the first request did connect (to loopback)"
    assert _foreign(connects) == []


@pytest.mark.parametrize("path", ["/to-local", "/to-number"])
def test_a_redirect_within_loopback_is_followed(server, path):
    resp = safehttp.request("GET", server + path, [], timeout=5)
    assert resp.status_code == 200
    assert resp.text == "ok"
    assert resp.history[0].status_code == 302


def test_a_url_the_gate_refuses_is_never_connected(connects):
    with pytest.raises(safehttp.RequestRefused):
        safehttp.request("GET", f"http://{FOREIGN}\\@127.0.0.1:1/", [], timeout=1)
    assert connects == []


def test_a_guarded_requests_library_style_session_refuses_a_foreign_redirect(server, connects):
    with requests.Session() as session:
        safehttp.guard(session, [])
        assert session.get(server + "/to-local", timeout=5).status_code == 200
        with pytest.raises(safehttp.RequestRefused):
            session.get(server + "/to-foreign", timeout=5)
    assert _foreign(connects) == []


def test_a_refused_request_names_the_host_and_the_fix():
    with pytest.raises(safehttp.RequestRefused, match=r"host '192\.0\.2\.10' is not loopback.*ALLOWED_HOSTS"):
        safehttp.request("GET", f"http://{FOREIGN}/", [], timeout=1)


def test_the_load_client_counts_a_redirect_and_does_not_follow_it(server, connects):
    spec = load.RequestSpec(server + "/to-foreign", "GET", None, {}, 5.0, (200,))

    async def one() -> str | None:
        sender = load._AiohttpSender(spec, 1)
        try:
            return await sender.send()
        finally:
            await sender.session.close()

    assert asyncio.run(one()) == "status 302"
    assert _foreign(connects) == []


def test_a_proxy_in_the_environment_is_not_used(server, connects, monkeypatch):
    """The connection goes to the host the gate checked, not to a proxy (another host)."""
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://{FOREIGN}:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert safehttp.request("GET", server + "/to-local", [], timeout=5).status_code == 200
    assert _foreign(connects) == []
