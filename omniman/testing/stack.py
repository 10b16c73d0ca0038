"""Run a host project as processes, for tests and smoke checks: ``manage.py``
commands, and servers (runserver, gunicorn, a Celery worker, beat) each in its own
process group with its own log file, waited for over HTTP and stopped together.

Standard library only: a script may import it before Django is configured."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO


class StackError(AssertionError):
    """A process of the stack failed, exited or did not answer in time."""


def free_port(first: int, last: int, *, shuffled: bool = False) -> int:
    """A port in [first, last] that nothing on 127.0.0.1 is bound to: the first one,
    or a random one with ``shuffled`` (parallel runs then rarely try the same)."""
    ports = list(range(first, last + 1))
    if shuffled:
        random.shuffle(ports)
    for port in ports:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{last}")


def wait_until(what: str, probe: Callable[[], object], *, alive: Callable[[], None] = lambda: None,
               timeout: float = 60) -> object:
    """``probe()``'s first true value (an ``OSError`` counts as false: not listening
    yet), polled every 0.2 s; ``alive()`` raises when what should answer has died. A
    ``StackError`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive()
        try:
            value = probe()
        except OSError:  # urllib's URLError included
            value = None
        if value:
            return value
        time.sleep(0.2)
    raise StackError(f"timed out after {timeout} s waiting for {what}")


def wait_http(url: str, *, alive: Callable[[], None] = lambda: None, timeout: float = 60) -> None:
    """Until ``url`` answers 200 (see :func:`wait_until`)."""

    def answers() -> bool:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)

    wait_until(url, answers, alive=alive, timeout=timeout)


class Stack:
    """The processes of one host project: ``manage.py`` runs in ``root`` with
    ``env``; servers write ``<workdir>/<name>.log``. ``say`` reports each start and
    stop (a script prints them; tests stay quiet)."""

    def __init__(
        self,
        root: Path,
        manage_py: Path,
        workdir: Path,
        env: dict[str, str],
        *,
        say: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.root = root
        self.manage_py = manage_py
        self.workdir = workdir
        self.env = env
        self.say = say
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}

    def manage(self, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """``manage.py *args`` to its end; with ``check``, a failure is a ``StackError``."""
        result = subprocess.run(
            [sys.executable, str(self.manage_py), *args],
            cwd=self.root, env=self.env, capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode:
            raise StackError(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def spawn(self, name: str, *cmd: str) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group (stopping it stops its children),
        its output appended to ``<name>.log``."""
        log = self._logs[name] = (self.workdir / f"{name}.log").open("ab")
        proc = self.procs[name] = subprocess.Popen(
            cmd, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.say(f"started {name} (pid {proc.pid})")
        return proc

    def gunicorn(self, port: int, app_dir: Path, *options: str, name: str = "gunicorn") -> None:
        """gunicorn serving ``config.wsgi:application`` from ``app_dir``, answering
        ``/api/health/`` before this returns."""
        self.spawn(name, sys.executable, "-m", "gunicorn", "--chdir", str(app_dir), "config.wsgi:application",
                   "--bind", f"127.0.0.1:{port}", *options)
        self.wait_http(f"http://127.0.0.1:{port}/api/health/")

    def log(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def check_alive(self) -> None:
        """A ``StackError`` with the end of its log when a process has exited."""
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}:\n{self.log(name)[-4000:]}")

    def wait_until(self, what: str, probe: Callable[[], object], *, timeout: float = 60,
                   log: str | None = None) -> object:
        """``probe()``'s first true value, polled while every process lives; a
        ``StackError`` after ``timeout`` seconds (with the end of ``log``'s log)."""
        try:
            return wait_until(what, probe, alive=self.check_alive, timeout=timeout)
        except StackError as exc:
            if log is None:
                raise
            tail = "\n".join(self.log(log).splitlines()[-30:])
            raise StackError(f"{exc}; {log}'s log ends with:\n{tail}") from None

    def wait_http(self, url: str, *, timeout: float = 60) -> None:
        """Until ``url`` answers 200 (see :func:`wait_http`)."""
        try:
            wait_http(url, alive=self.check_alive, timeout=timeout)
        except StackError as exc:
            logs = "\n".join(f"--- {name}\n{self.log(name)[-4000:]}" for name in self.procs)
            raise StackError(f"{exc}\n{logs}") from None

    def stop(self, *, timeout: float = 20) -> None:
        """SIGTERM to every process group, newest first; SIGKILL after ``timeout``."""
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            self.say(f"stopped {name}")
        for log in self._logs.values():
            log.close()
        self.procs.clear()
        self._logs.clear()
