"""Helpers for tests that need a real broker and a real Celery worker.

They start processes the test owns (a ``redis-server`` on a port of the test's
choosing, ``celery worker`` subprocesses) and stop exactly those, so a suite can
stop "its" Redis without touching a shared one::

    with redis_server(port=8201) as url, celery_worker("myproject.celery_app", env={...}):
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def make_app(name: str, broker_url: str, **settings: Any) -> Any:
    """A Celery app for tests: omniman's recommended settings (:func:`omniman.celery.configure`),
    ``broker_url``, no result backend, then ``settings``."""
    from celery import Celery

    from omniman.celery import configure

    app = Celery(name, broker=broker_url, set_as_current=False)
    app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)
    configure(app)
    app.conf.update(settings)
    return app


@contextlib.contextmanager
def current_app(app: Any) -> Iterator[Any]:
    """Make ``app`` the one ``shared_task`` tasks (``omniman.tasks``) publish with."""
    from celery import _state

    previous = _state.get_current_app()
    default = _state.default_app  # type: ignore[attr-defined]  # celery-types leaves the global out
    import omniman.tasks  # noqa: F401  (registers the shared tasks on every app)

    app.set_current()
    app.set_default()
    try:
        yield app
    finally:
        _state.default_app = default  # type: ignore[attr-defined]  # (see above)
        previous.set_current()


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class RedisServer:
    """A ``redis-server`` owned by the test (no persistence: a restart empties it)."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        if _ping(self.port):
            raise RuntimeError(f"another server already answers on port {self.port}")
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not _ping(self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop it (SIGTERM, then SIGKILL); returns once the port refuses connections."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


@contextlib.contextmanager
def redis_server(port: int) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="omniman-redis-") as workdir:
        server = RedisServer(port=port, workdir=Path(workdir))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@dataclass
class Worker:
    """A ``celery worker`` subprocess in its own process group; ``log`` is its output."""

    process: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def remove_files(self) -> None:
        """Delete the log and beat schedule (keep them when a test failed, to read)."""
        shutil.rmtree(self.log.parent, ignore_errors=True)

    def stop(self, timeout: float = 15.0) -> None:
        """Warm shutdown of the group (SIGTERM), then SIGKILL whatever is left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


def start_worker(
    app: str,
    *,
    env: Mapping[str, str],
    concurrency: int = 2,
    beat: bool = False,
    cwd: str | os.PathLike[str] | None = None,
    loglevel: str = "INFO",
    timeout: float = 60.0,
    workdir: Path | None = None,
) -> Worker:
    """Start ``celery -A app worker`` (prefork, ``concurrency`` processes, with embedded
    beat when ``beat``) and wait until it says it is ready (which it logs at INFO)."""
    if loglevel.upper() not in ("INFO", "DEBUG"):
        raise ValueError("the worker's readiness is read from its INFO log: loglevel must be INFO or DEBUG")
    workdir = workdir or Path(tempfile.mkdtemp(prefix="omniman-worker-"))
    log = workdir / "worker.log"
    name = f"omniman-test-{os.getpid()}-{time.monotonic_ns()}@%h"
    cmd = [
        sys.executable, "-m", "celery", "-A", app, "worker",
        "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", loglevel,
        "--hostname", name, "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    if beat:
        cmd += ["--beat", "--schedule", str(workdir / "beat-schedule")]
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            cmd, env=full_env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    worker = Worker(process=process, log=log)
    deadline = time.monotonic() + timeout
    while " ready." not in worker.output():
        if process.poll() is not None or time.monotonic() > deadline:
            output = worker.output()
            worker.stop()
            worker.remove_files()
            raise RuntimeError(f"celery worker did not start:\n{output[-4000:]}")
        time.sleep(0.1)
    return worker


@contextlib.contextmanager
def celery_worker(app: str, **kwargs: Any) -> Iterator[Worker]:
    worker = start_worker(app, **kwargs)
    try:
        yield worker
    finally:
        worker.stop()
    worker.remove_files()
