#!/usr/bin/env python
"""Run the café as production runs it, smoke-test it end to end, and stop it.

    python example_project/prod/run_stack.py            # start, smoke-test, stop
    python example_project/prod/run_stack.py --keep     # ... and keep serving until Ctrl-C

Everything runs on loopback: gunicorn serving ``config.wsgi:application``, a Celery
worker (started without -Q: it takes the settings' default queue) and Celery beat (the directive
reaper), against PostgreSQL (its own database, created when missing) and Redis
(cache and broker). The smoke test goes through HTTP only, on the ``web`` channel:
a modify → the stock check run by the worker → commit with an idempotency key →
``payment.capture`` and ``notification.order_committed`` done by the worker.

Environment: ``PROD_DATABASE_URL`` (default
``postgres://postgres@127.0.0.1:5432/omniman_example``), ``PROD_REDIS_URL`` (default
``redis://127.0.0.1:6379``; the broker uses database 14, the cache 15), ``PROD_PORT``
(default 8380).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from omniman.testing.stack import Stack, StackError

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent
ROOT = EXAMPLE.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/omniman_example"
DEFAULT_REDIS = "redis://127.0.0.1:6379"


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def ensure_database(url: str, *, fresh: bool = False) -> None:
    """Create the database named in ``url`` when it does not exist (``fresh``: drop it first)."""
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if fresh:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
            say(f"created database {name}")


def http(method: str, url: str, body: Any = None, token: str = "") -> tuple[int, dict[str, str], Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, raw, headers = resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        status, raw, headers = err.code, err.read(), dict(err.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw[:200]
    return status, headers, parsed


def expect(status: int, wanted: int, body: Any, what: str) -> None:
    if status != wanted:
        raise SystemExit(f"{what}: expected {wanted}, got {status}: {body}")


def smoke(stack: Stack, base_url: str, token: str) -> None:
    api = base_url + "/api"
    key = "SMOKE-" + secrets.token_hex(4).upper()

    status, _, body = http("GET", api + "/health/")
    expect(status, 200, body, "health")
    status, _, body = http("GET", base_url + "/static/admin/css/base.css")
    expect(status, 200, body, "static files through WhiteNoise")

    status, _, body = http("POST", api + "/sessions/", {"channel_code": "web", "session_key": key}, token)
    expect(status, 201, body, "create a web session")
    ops = [{"op": "add_line", "sku": "COFFEE", "qty": 2}, {"op": "add_line", "sku": "CROISSANT", "qty": 1}]
    status, _, body = http("POST", f"{api}/sessions/{key}/modify/", {"channel_code": "web", "ops": ops, "rev": 0}, token)
    expect(status, 200, body, "modify")
    say(f"session {key}: rev {body['rev']}, total_q {body['total_q']} (priced by the catalog)")
    if body["total_q"] != 2 * 500 + 750:
        raise SystemExit(f"unexpected total {body['total_q']}")

    def stock_checked() -> Any:
        _, _, s = http("GET", f"{api}/sessions/{key}/?channel_code=web", token=token)
        check = (s or {}).get("checks", {}).get("stock")
        return check if check and check["rev"] == 1 else None

    check: Any = stack.wait_until("the stock check (run by the Celery worker)", stock_checked, log="worker")
    if not check["ok"]:
        raise SystemExit(f"stock check failed: {check}")
    say("stock check: ok for rev 1 (written by the worker)")

    commit = {"channel_code": "web", "idempotency_key": "SMOKE-COMMIT-" + key}
    status, _, first = http("POST", f"{api}/sessions/{key}/commit/", commit, token)
    expect(status, 201, first, "commit")
    ref = first["order_ref"]
    status, headers, again = http("POST", f"{api}/sessions/{key}/commit/", commit, token)
    expect(status, 201, again, "commit replay")
    if again != first or headers.get("Idempotent-Replayed") != "true":
        raise SystemExit(f"the replay differs: {again} {headers}")
    say(f"commit: order {ref}, total_q {first['total_q']}; the replay answered the same")

    def directives_done() -> Any:
        statuses = {}
        for topic in ("payment.capture", "notification.order_committed"):
            _, _, page = http("GET", f"{api}/directives/?topic={topic}", token=token)
            mine = [d for d in (page or {}).get("results", []) if d["payload"].get("order_ref") == ref]
            if len(mine) != 1 or mine[0]["status"] != "done":
                return None
            statuses[topic] = mine[0]
        return statuses

    done: Any = stack.wait_until("payment.capture and notification.order_committed", directives_done,
                                 log="worker")
    for topic, directive in done.items():
        say(f"directive {topic} #{directive['id']}: {directive['status']} after {directive['attempts']} attempt(s)")

    stack.wait_until("beat to send the reaper", lambda: "omniman.reap_directives" in stack.log("worker"),
                     timeout=30, log="worker")
    say("beat: the reaper ran in the worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep serving after the smoke test, until Ctrl-C")
    parser.add_argument("--fresh", action="store_true", help="drop and recreate the database first")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    args = parser.parse_args()

    database_url = os.environ.get("PROD_DATABASE_URL", DEFAULT_DB)
    redis = os.environ.get("PROD_REDIS_URL", DEFAULT_REDIS).rstrip("/")
    port = int(os.environ.get("PROD_PORT", "8380"))
    workdir = Path(tempfile.mkdtemp(prefix="omniman-stack-"))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))},
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": f"{redis}/14",
        "REDIS_URL": f"{redis}/15",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "STATIC_ROOT": str(workdir / "static"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")])),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("OMNIMAN_SILK", None)

    say(f"logs in {workdir}")
    ensure_database(database_url, fresh=args.fresh)
    stack = Stack(ROOT, EXAMPLE / "manage.py", workdir, env, say=say)
    url = f"http://127.0.0.1:{port}"
    try:
        for command in (["migrate", "--noinput"], ["collectstatic", "--noinput"], ["omniman_seed"]):
            stack.manage(*command, timeout=300)
        token = stack.manage("omniman_token", "smoke", "--channels", "web", "--operator").stdout.strip()
        stack.spawn(
            "worker", sys.executable, "-m", "celery", "--workdir", str(EXAMPLE), "-A", "config", "worker",
            "--concurrency", "2", "--loglevel", "INFO", "--without-gossip",
            "--without-mingle", "--hostname", f"omniman-example-{port}@%h",
        )
        stack.spawn(
            "beat", sys.executable, "-m", "celery", "--workdir", str(EXAMPLE), "-A", "config", "beat",
            "--loglevel", "INFO", "--schedule", str(workdir / "beat-schedule"),
        )
        stack.gunicorn(
            port, EXAMPLE, "--workers", str(args.workers), "--worker-class", "gthread", "--threads", "4",
            "--timeout", "60", "--graceful-timeout", "10",
        )
        say(f"serving {url}/ (gunicorn, {args.workers} workers)")
        smoke(stack, url, token)
        say("smoke test passed")
        if args.keep:
            say(f"serving at {url}/ until Ctrl-C (user demo / demo)")
            while True:
                stack.check_alive()
                time.sleep(1)
    except KeyboardInterrupt:
        pass
    except StackError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        stack.stop()
    # Reached only when the smoke test passed: the logs are not needed any more.
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
