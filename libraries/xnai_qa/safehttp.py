"""Every HTTP request of the suite's libraries goes through here.

Each request a session sends, the first and every redirect hop, passes the one address gate
(``targetconfig.check_url``: the URL read strictly, its host loopback or in ``${ALLOWED_HOSTS}``)
*before* a connection is opened: a redirect to another host is refused, not followed.  The gate sits
on ``Session.send``, the method ``requests`` calls for the first request and for each hop of a
redirect, so there is no path around it; and the connection goes to that host, never through a
proxy named by the environment.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import requests

from . import targetconfig


class RequestRefused(requests.exceptions.InvalidURL):
    """A request (or a redirect hop) to an address outside loopback and ``${ALLOWED_HOSTS}``: not sent."""


def guard(session: requests.Session, allowed: Iterable[str] | None) -> requests.Session:
    """Puts the address gate on ``session`` (ours, or one RequestsLibrary created); returns it."""
    hosts = tuple(allowed or ())
    send = session.send

    def guarded_send(request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        try:
            targetconfig.check_url(request.url or "", hosts)
        except targetconfig.TargetConfigError as err:
            raise RequestRefused(f"{request.method} {request.url} not sent (a redirect is checked like the "
                                 f"first request): {err}") from None
        # Straight to the host the gate checked: never through a proxy from HTTP_PROXY/HTTPS_PROXY (requests
        # adds those for each hop, and the proxy is another host).
        kwargs["proxies"] = {}
        return send(request, **kwargs)

    session.send = guarded_send  # type: ignore[method-assign]  # resolve_redirects calls self.send per hop
    return session


def session(allowed: Iterable[str] | None) -> requests.Session:
    """A new ``requests`` session with the gate on (close it, or use it in ``with``)."""
    return guard(requests.Session(), allowed)


def request(method: str, url: str, allowed: Iterable[str] | None, **kwargs: Any) -> requests.Response:
    """One request through a gated session: like ``requests.request``, and refused (``RequestRefused``,
    a ``requests.RequestException``) before any connection when ``url`` or a redirect leaves the
    allowed addresses."""
    with session(allowed) as gated:
        return gated.request(method, url, **kwargs)


def check(url: str, allowed: Iterable[str] | None) -> str:
    """The gate for a keyword: ``targetconfig.check_url``, its refusal a Robot ``Failure`` (the test
    fails naming the variable's host and the fix). Returns the host."""
    from robot.api import Failure  # noqa: PLC0415

    try:
        return targetconfig.check_url(url, tuple(allowed or ()))
    except targetconfig.TargetConfigError as err:
        raise Failure(str(err)) from None
