from __future__ import annotations

import socket
from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.servers.basehttp import WSGIServer


class NoDelayWSGIServer(WSGIServer):
    """Django's development server, with Nagle's algorithm off on each accepted
    connection: an answer's body leaves as soon as it is written."""

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class Command(StaticRunserver):
    help = StaticRunserver.help + " Answers on kept-alive connections leave without delay."
    server_cls = NoDelayWSGIServer
