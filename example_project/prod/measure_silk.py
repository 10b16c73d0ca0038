#!/usr/bin/env python
"""Measure what django-silk costs on a modify.

    python example_project/prod/measure_silk.py [--requests 300] [--ports 8530,8531] [--json]

For each mode (silk off, silk on with ``OMNIMAN_SILK=1``) it migrates and seeds a
fresh SQLite database, serves the example with gunicorn (one sync worker, DEBUG
off) and opens a ``pos`` session with one line. Then it times modifies
(``set_qty``, each with its rev) from this process, one request at a time,
alternating between the two servers, after a warm-up. It prints the median and the
95th percentile of each mode and their ratio (``--json``: one JSON line instead).
``python -m bench --only silk`` runs it and keeps its figures with the bench's results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent
ROOT = EXAMPLE.parent
WARMUP = 30


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def post(url: str, body: dict, token: str) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Token {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


class Server:
    """One mode: a freshly seeded SQLite database served by gunicorn, one session with one line."""

    def __init__(self, silk: bool, port: int | None = None) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="omniman-silk-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "CELERY_", "REDIS_"))}
        env.update({
            "DATABASE_URL": f"sqlite:///{self.workdir / 'db.sqlite3'}",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(30),
            "ALLOWED_HOSTS": "127.0.0.1",
            "OMNIMAN_SILK": "1" if silk else "0",
            "PYTHONPATH": str(ROOT),
            "LOG_LEVEL": "WARNING",
        })
        manage = [sys.executable, str(EXAMPLE / "manage.py")]
        for args in (["migrate", "--noinput"], ["omniman_seed"]):
            subprocess.run([*manage, *args], cwd=ROOT, env=env, check=True, capture_output=True)
        self.token = subprocess.run([*manage, "omniman_token", "silk", "--channels", "pos"], cwd=ROOT, env=env,
                                    check=True, capture_output=True, text=True).stdout.strip()
        port = port or free_port()
        gunicorn = Path(sys.executable).parent / "gunicorn"
        self.process = subprocess.Popen(
            [str(gunicorn if gunicorn.exists() else "gunicorn"), "--chdir", str(EXAMPLE), "config.wsgi:application",
             "--bind", f"127.0.0.1:{port}", "--workers", "1"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        self.base = f"http://127.0.0.1:{port}/api"
        for _ in range(300):
            try:
                urllib.request.urlopen(self.base + "/health/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        session = post(self.base + "/sessions/", {"channel_code": "pos"}, self.token)
        self.key = session["session_key"]
        session = post(f"{self.base}/sessions/{self.key}/modify/", {"channel_code": "pos", "rev": 0, "ops": [
            {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]}, self.token)
        self.line_id, self.rev = session["items"][0]["line_id"], session["rev"]

    def modify(self) -> float:
        body = {"channel_code": "pos", "rev": self.rev,
                "ops": [{"op": "set_qty", "line_id": self.line_id, "qty": 1 + self.rev % 2}]}
        started = time.perf_counter()
        self.rev = post(f"{self.base}/sessions/{self.key}/modify/", body, self.token)["rev"]
        return time.perf_counter() - started

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--ports", default="", help="two ports for the servers (default: free ones)")
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    ports = [int(p) for p in args.ports.split(",")] if args.ports else [0, 0]
    servers = {False: Server(silk=False, port=ports[0]), True: Server(silk=True, port=ports[1])}
    timings: dict[bool, list[float]] = {False: [], True: []}
    try:
        # Interleaved, the order swapped each round, so that the neighbours' load
        # falls on both modes alike.
        for n in range(WARMUP + args.requests):
            for silk in ((False, True) if n % 2 else (True, False)):
                elapsed = servers[silk].modify()
                if n >= WARMUP:
                    timings[silk].append(elapsed)
    finally:
        for server in servers.values():
            server.stop()
    results = {}
    for silk, values in timings.items():
        q = statistics.quantiles(values, n=20)
        results[silk] = (statistics.median(values) * 1000, q[18] * 1000)
    off, on = results[False], results[True]
    if args.json:
        print(json.dumps({
            "requests": args.requests, "warmup": WARMUP,
            "setup": "modify (set_qty), interleaved, gunicorn 1 sync worker, SQLite, DEBUG off",
            "off_ms": {"median": off[0], "p95": off[1]}, "on_ms": {"median": on[0], "p95": on[1]},
            "ratio": {"median": on[0] / off[0], "p95": on[1] / off[1]},
        }))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print(f"modify (set_qty), {args.requests} requests per mode, interleaved, gunicorn 1 sync worker, SQLite")
    print(f"silk off: median {off[0]:.2f} ms, p95 {off[1]:.2f} ms")
    print(f"silk on:  median {on[0]:.2f} ms, p95 {on[1]:.2f} ms")
    print(f"overhead: median x{on[0] / off[0]:.2f} (+{on[0] - off[0]:.2f} ms), p95 x{on[1] / off[1]:.2f}")


if __name__ == "__main__":
    main()
