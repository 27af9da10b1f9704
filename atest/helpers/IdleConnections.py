"""A deliberately leaky client for the leak-check acceptance test: it opens connections and keeps them."""

import socket

from robot.api.deco import keyword, library
from robot.libraries.BuiltIn import BuiltIn


@library(scope="TEST")
class IdleConnections:
    def __init__(self):
        self._sockets: list[socket.socket] = []

    @keyword
    def open_idle_connection_to_service(self, service: str) -> None:
        """Opens a TCP connection to ``service`` and keeps it open until the test ends."""
        svc = BuiltIn().get_variable_value("${SERVICES}")[service]
        self._sockets.append(socket.create_connection((svc["host"], svc["port"]), timeout=2))

    def __del__(self):
        for sock in self._sockets:
            sock.close()
