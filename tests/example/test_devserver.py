"""The example's ``runserver`` (example_project/devserver): Django's development
server, without the 40 ms wait on kept-alive connections that its two writes per
answer meet otherwise (Nagle's algorithm on the server, delayed ACK on the client)."""

from __future__ import annotations

import http.client
import statistics
import time

from tests.example.harness import Example

# The command manage.py runs, and what its server does to a connection it accepts.
PROBE = """
import socket
from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.management import get_commands, load_command_class
app = get_commands()["runserver"]
command = load_command_class(app, "runserver")
server = command.server_cls(("127.0.0.1", 0), None)
client = socket.create_connection(server.server_address)
accepted, _ = server.get_request()
print(app, isinstance(command, StaticRunserver), accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0)
"""


def test_runserver_sends_answers_without_delay(example: Example) -> None:
    """``manage.py runserver`` is the example's command (static files included) and
    turns Nagle's algorithm off on each connection it accepts."""
    assert example.manage("shell", "-v", "0", "-c", PROBE).stdout.split() == ["devserver", "True", "True"]


def test_requests_on_a_kept_alive_connection_take_no_40_ms_each(example: Example) -> None:
    """Thirty requests on one connection, as a browser or the importer's
    ``requests.Session`` sends them: before the fix each one after the first waited
    about 45 ms for the client's delayed ACK; the bound is generous, not a benchmark."""
    host, port = example.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    took = []
    try:
        for _ in range(30):
            started = time.perf_counter()
            connection.request("GET", "/api/health/")
            answer = connection.getresponse()
            answer.read()
            took.append(time.perf_counter() - started)
            assert answer.status == 200 and not answer.will_close
    finally:
        connection.close()
    assert statistics.median(took) < 0.020, sorted(round(t * 1000, 1) for t in took)
