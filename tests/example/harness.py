"""Run the example project the way a person does: ``manage.py`` commands and a real
server in subprocesses, each test module with its own database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omniman.testing import stack
from tests import ports

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_project"
MANAGE = EXAMPLE / "manage.py"


def free_port() -> int:
    """A free port of the example and guide tests' own range (this run's share of it,
    see ``tests/ports.py``), tried in random order."""
    return ports.free_port(8300, 8399)


def example_env(**extra: str) -> dict[str, str]:
    """The environment of a fresh shell, less what the test run set for itself."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "OMNIMAN_"))}
    for name in ("DATABASE_URL", "CELERY_BROKER_URL", "REDIS_URL"):
        env.pop(name, None)
    env["PYTHONPATH"] = str(ROOT)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@contextmanager
def fresh_database(url: str, suffix: str) -> Iterator[str]:
    """A new, empty database beside the one in ``url``, for the ``with`` block; its URL.
    Dropped at the end (and first, should an interrupted run have left it)."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'omniman'}_{suffix}"
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))

    def drop(conn: psycopg.Connection) -> None:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    with psycopg.connect(admin, autocommit=True) as conn:
        drop(conn)
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            drop(conn)


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any


class Example(stack.Stack):
    """One example project instance: its database, its environment, its server
    (``runserver``, logged to ``server.log``)."""

    def __init__(self, workdir: Path, env: dict[str, str], manage_py: Path = MANAGE) -> None:
        super().__init__(ROOT, manage_py, workdir, env)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return super().manage(*args, check=check, timeout=timeout)

    def start(self) -> None:
        self.port = free_port()
        self.spawn("server", sys.executable, str(self.manage_py), "runserver", f"127.0.0.1:{self.port}",
                   "--noreload")
        self.wait_http(f"{self.url}/api/health/")

    def stop(self, *, timeout: float = 10) -> None:
        super().stop(timeout=timeout)

    def request(self, method: str, path: str, body: Any = None, token: str = "", **headers: str) -> Response:
        return http(method, self.url + path, body, token=token, **headers)


def http(method: str, url: str, body: Any = None, token: str = "", timeout: float = 30, **headers: str) -> Response:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Token {token}")
    for name, value in headers.items():
        req.add_header(name.replace("_", "-"), value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw, hdrs = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        status, raw, hdrs = err.code, err.read(), dict(err.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Response(status, hdrs, parsed)


def wait_for(url: str, process: subprocess.Popen[bytes] | None, log: Path, timeout: float = 60) -> None:
    """Until ``url`` answers 200, for a server started without a :class:`Example`:
    an ``AssertionError`` with its log when ``process`` exits or time runs out."""

    def alive() -> None:
        if process is not None and process.poll() is not None:
            raise stack.StackError(f"server exited with {process.returncode}:\n{log.read_text(errors='replace')}")

    try:
        stack.wait_http(url, alive=alive, timeout=timeout)
    except stack.StackError as exc:
        if "timed out" not in str(exc):
            raise
        raise stack.StackError(f"{url} did not answer within {timeout} s:\n{log.read_text(errors='replace')}") from None

