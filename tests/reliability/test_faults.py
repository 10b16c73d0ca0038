"""Faults injected into a running stack: the example project under gunicorn (2 workers)
on a PostgreSQL cluster of its own (so it can be stopped) and a Redis of its own.

- PostgreSQL stopped and started again under load: every answer is a normal one or a
  503 problem+json with ``Retry-After``, none hangs, and the same gunicorn workers serve
  again once the database is back; commits retried with their key make one order each.
- A gunicorn worker killed with SIGKILL in the middle of a commit (held inside the
  transaction by a ``pg_sleep`` trigger): the session stays open with no order, and the
  retried commit makes exactly one order with every line.
- Redis down: commits still answer 201 at once; the directives they wrote are
  delivered once Redis, a worker and the reaper are back."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from omniman.testing import stack
from tests.ports import free_port
from tests.require import need

from .conftest import PORTS, Answer, Http

pytestmark = [pytest.mark.postgres, pytest.mark.celery]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "example_project"


def _pg_bindirs() -> list[Path]:
    """Where PostgreSQL's server programs may be, whatever version is installed:
    ``pg_config --bindir``, then Debian's /usr/lib/postgresql/<version>/bin (newest
    first), then the PATH (found by ``shutil.which``)."""
    dirs = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            found = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            dirs.append(Path(found.stdout.strip()))
        except (OSError, subprocess.SubprocessError):
            pass
    versions = Path("/usr/lib/postgresql").glob("*/bin")
    dirs += sorted(versions, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0, reverse=True)
    return dirs


def pg_bin(name: str) -> str | None:
    for bindir in _pg_bindirs():
        if (bindir / name).exists():
            return str(bindir / name)
    return shutil.which(name)


def until(predicate: Any, why: str, timeout: float = 60) -> None:
    """Poll ``predicate`` (an observable state) until it holds; fail with ``why``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(why)
        time.sleep(0.05)


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port} after {timeout} s")


@dataclass
class Cluster:
    """A throwaway PostgreSQL cluster: initdb into a temp dir, pg_ctl to stop and start."""

    datadir: Path
    port: int

    def _run(self, *args: str) -> None:
        cmd = [pg_bin("pg_ctl"), "-D", str(self.datadir), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=40 -c client_connection_check_interval=500"
        )
        self._run("-o", options, "-l", str(self.datadir / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("-m", mode, "-w", "stop")

    def url(self, db: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def sql(self, query: str, *params: Any, db: str = "omniman") -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url(db), autocommit=True) as conn:
            cur = conn.execute(query, params or None)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    need(pg_bin("initdb") and pg_bin("pg_ctl"), "PostgreSQL's initdb and pg_ctl are not installed")
    datadir = Path(tempfile.mkdtemp(prefix="omniman-rel-pg-"))
    if os.geteuid() == 0:
        shutil.chown(datadir, "postgres", "postgres")
    init = [pg_bin("initdb"), "-D", str(datadir), "-A", "trust", "-U", "postgres", "--no-sync"]
    if os.geteuid() == 0:
        init = ["runuser", "-u", "postgres", "--", *init]
    subprocess.run(init, check=True, capture_output=True, timeout=120)
    pg = Cluster(datadir, free_port(*PORTS))
    pg.start()
    try:
        pg.sql("CREATE DATABASE omniman", db="postgres")
        yield pg
    finally:
        try:
            pg.stop("immediate")
        finally:
            shutil.rmtree(datadir, ignore_errors=True)


@dataclass
class Redis:
    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_port(self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    need(bool(shutil.which("redis-server")), "redis-server is not installed")
    server = Redis(free_port(*PORTS), tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def stack_env(cluster: Cluster, redis: Redis) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_", "OMNIMAN_"))}
    env.update({
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(EXAMPLE)]),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "tests.reliability.stack",
        "DATABASE_URL": cluster.url("omniman"),
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/0",
        "SECRET_KEY": "reliability-tests-not-secret",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
    })
    env.pop("REDIS_URL", None)
    return env


class Stack(stack.Stack):
    """The example project under gunicorn (2 workers, 4 threads each)."""

    port = 0
    token = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.port = free_port(*PORTS)
        self.gunicorn(self.port, EXAMPLE, "--workers", "2", "--threads", "4", "--timeout", "60",
                      "--graceful-timeout", "5")

    def workers(self) -> set[int]:
        pid = self.procs["gunicorn"].pid
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {int(pid) for pid in children}

    def client(self) -> Http:
        return Http(self.url, self.token)


@pytest.fixture(scope="module")
def stack(cluster: Cluster, redis: Redis, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    need(shutil.which("gunicorn") is not None or _has_module("gunicorn"), "gunicorn is not installed")
    st = Stack(ROOT, EXAMPLE / "manage.py", tmp_path_factory.mktemp("stack"), stack_env(cluster, redis))
    st.manage("migrate", "--noinput")
    # One process for the rest of the set-up (each manage.py start costs seconds).
    out = st.manage("shell", "-c", (
        "import io\n"
        "from django.core.management import call_command\n"
        "from omniman.models import Channel\n"
        "call_command('omniman_seed', stdout=io.StringIO())\n"
        "c = Channel.objects.get(code='ifood')\n"
        "c.config = {**c.config, 'post_commit_directives': ['reliability.ping']}\n"
        "c.full_clean(); c.save()\n"
        "token = io.StringIO()\n"
        "call_command('omniman_token', 'reliability', '--operator', stdout=token)\n"
        "print('TOKEN=' + token.getvalue().strip())\n"
    ))
    st.token = out.stdout.split("TOKEN=")[1].strip()
    st.start()
    try:
        yield st
    finally:
        st.stop()


def _has_module(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is not None


def open_with_lines(api: Http, channel: str, key: str, lines: int) -> None:
    assert api.post("/api/sessions/", {"channel_code": channel, "session_key": key}).status == 201
    ops = [{"op": "add_line", "sku": f"SKU-{i}", "qty": i + 1, "unit_price_q": 100 + i} for i in range(lines)]
    answer = api.post(f"/api/sessions/{key}/modify/", {"channel_code": channel, "ops": ops})
    assert answer.status == 200, answer.raw


def assert_one_full_order(cluster: Cluster, key: str, lines: int, channel: str = "pos") -> None:
    rows = cluster.sql(
        "SELECT o.id, o.total_q, s.state, s.order_ref = o.ref FROM omniman_order o "
        "JOIN omniman_session s ON s.id = o.session_id JOIN omniman_channel c ON c.id = s.channel_id "
        "WHERE c.code = %s AND s.session_key = %s", channel, key,
    )
    assert len(rows) == 1, (key, rows)
    order_id, total_q, state, same_ref = rows[0]
    assert state == "committed" and same_ref
    items = cluster.sql("SELECT count(*), coalesce(sum(line_total_q), 0) FROM omniman_orderitem WHERE order_id = %s",
                        order_id)
    assert items == [(lines, total_q)], (key, items, total_q)


# -- PostgreSQL restarted under load --------------------------------------------


def test_postgresql_restarted_under_load_is_503_then_recovers(stack: Stack, cluster: Cluster) -> None:
    api = stack.client()
    sessions = [f"PGR-{i}" for i in range(12)]
    for key in sessions:
        open_with_lines(api, "pos", key, 3)
    workers = stack.workers()
    answers: list[tuple[str, Answer | Exception]] = []
    stop = threading.Event()

    def load(n: int) -> None:
        i = 0
        while not stop.is_set():
            i += 1
            key = sessions[(n * 7 + i) % len(sessions)]
            try:
                if i % 3 == 0:
                    answer = api.get(f"/api/sessions/{key}/?channel_code=pos", timeout=20)
                elif i % 3 == 1:
                    ops = [{"op": "set_data", "path": f"n.t{n}", "value": i}]
                    answer = api.post(f"/api/sessions/{key}/modify/", {"channel_code": "pos", "ops": ops}, timeout=20)
                else:
                    answer = api.get("/api/health/", timeout=20)
            except Exception as exc:  # a hang or a dropped connection: reported below
                answer = exc
            answers.append((key, answer))
            time.sleep(0.02)

    def answered(after: int, n: int, status: int | None = None) -> bool:
        got = [a for _, a in answers[after:] if status is None or getattr(a, "status", None) == status]
        return len(got) >= n

    threads = [threading.Thread(target=load, args=(n,), daemon=True) for n in range(4)]
    for t in threads:
        t.start()
    # Each phase lasts until its answers are seen, not for a guessed time.
    until(lambda: answered(0, 8, 200), "the load never got answers")
    cluster.stop("fast")  # every connection is cut, and new ones are refused
    down_from = len(answers)
    until(lambda: answered(down_from, 8, 503), "no 503 while the database was down")
    # Commits while the database is down are 503 too; the client retries them later.
    during = [api.post(f"/api/sessions/{key}/commit/", {"channel_code": "pos", "idempotency_key": f"C-{key}"},
                       timeout=20) for key in sessions[:4]]
    down_to = len(answers)
    cluster.start()
    until(lambda: answered(down_to, 8, 200) and getattr(answers[-1][1], "status", None) == 200,
          "the load never recovered")
    stop.set()
    for t in threads:
        t.join(30)

    failures = [(key, a) for key, a in answers if isinstance(a, Exception)]
    assert not failures, failures[:5]
    statuses = [a.status for _, a in answers if isinstance(a, Answer)]
    assert 503 in statuses[down_from:down_to], statuses  # the outage was felt
    for _, a in answers + [("commit", a) for a in during]:
        assert isinstance(a, Answer)
        assert a.status in (200, 503), (a.status, a.raw[:500])
        assert a.elapsed < 15, a.elapsed  # never a hang
        if a.status == 503:
            assert a.headers["content-type"] == "application/problem+json"
            assert a.json()["code"] == "unavailable" and int(a.headers["retry-after"]) > 0
    assert [a.status for a in during] == [503] * 4
    # Recovered, by the same workers: nobody restarted the app.
    assert statuses[-1] == 200 and stack.workers() == workers
    assert api.get("/api/health/").status == 200
    # Every commit, retried with its key, makes exactly one order with all its lines.
    for key in sessions:
        body = {"channel_code": "pos", "idempotency_key": f"C-{key}"}
        first, again = api.post(f"/api/sessions/{key}/commit/", body), api.post(f"/api/sessions/{key}/commit/", body)
        assert first.status == again.status == 201 and first.raw == again.raw, first.raw
        assert_one_full_order(cluster, key, 3)


# -- a worker killed in the middle of a commit -----------------------------------

SLOW_COMMIT = """
CREATE OR REPLACE FUNCTION reliability_slow_commit() RETURNS trigger AS $$
BEGIN PERFORM pg_sleep(30); RETURN NEW; END $$ LANGUAGE plpgsql;
CREATE TRIGGER reliability_slow_commit BEFORE UPDATE ON omniman_session FOR EACH ROW
WHEN (NEW.state = 'committed' AND NEW.session_key = 'KILL-1') EXECUTE FUNCTION reliability_slow_commit();
"""


def _worker_of_backend(workers: set[int], client_port: int) -> int:
    """The gunicorn worker whose database connection uses ``client_port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == client_port:
            inodes.add(fields[9])
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


def test_a_worker_killed_mid_commit_leaves_no_partial_write(stack: Stack, cluster: Cluster) -> None:
    api = stack.client()
    open_with_lines(api, "pos", "KILL-1", 5)
    for statement in SLOW_COMMIT.strip().split(";\n"):
        cluster.sql(statement)
    body = {"channel_code": "pos", "idempotency_key": "KILL-COMMIT"}
    outcome: list[Any] = []

    def commit() -> None:
        try:
            outcome.append(api.post("/api/sessions/KILL-1/commit/", body, timeout=60))
        except Exception as exc:
            outcome.append(exc)

    workers = stack.workers()
    thread = threading.Thread(target=commit, daemon=True)
    try:
        thread.start()
        # Wait until the commit is inside its transaction, after the order and its items
        # were written, sleeping in the trigger.
        deadline, backend = time.monotonic() + 20, []
        while not backend and time.monotonic() < deadline:
            backend = cluster.sql("SELECT pid, client_port FROM pg_stat_activity WHERE wait_event = 'PgSleep'")
            time.sleep(0.05)
        assert backend, "the commit never reached the trigger"
        pid, client_port = backend[0]
        assert cluster.sql("SELECT count(*) FROM pg_locks WHERE pid = %s AND relation::regclass::text = "
                           "'omniman_order' AND mode = 'RowExclusiveLock'", pid) == [(1,)]  # it wrote an order
        victim = _worker_of_backend(workers, client_port)
        os.kill(victim, signal.SIGKILL)
        thread.join(30)
        assert len(outcome) == 1 and isinstance(outcome[0], Exception), outcome  # the client saw the connection drop
        # PostgreSQL notices the lost client and rolls the transaction back.
        deadline = time.monotonic() + 20
        while cluster.sql("SELECT 1 FROM pg_stat_activity WHERE pid = %s", pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        cluster.sql("DROP TRIGGER IF EXISTS reliability_slow_commit ON omniman_session")
    assert cluster.sql("SELECT state, order_ref FROM omniman_session WHERE session_key = 'KILL-1'") == [("open", "")]
    assert cluster.sql("SELECT count(*) FROM omniman_order WHERE session_key = 'KILL-1'") == [(0,)]
    assert cluster.sql("SELECT count(*) FROM omniman_orderitem i LEFT JOIN omniman_order o ON o.id = i.order_id "
                       "WHERE o.id IS NULL") == [(0,)]
    assert cluster.sql("SELECT count(*) FROM omniman_idempotencykey WHERE key = 'KILL-COMMIT'") == [(0,)]
    # gunicorn replaced the worker; the key is free again and the commit goes through once.
    deadline = time.monotonic() + 30
    while len(stack.workers()) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert victim not in stack.workers() and len(stack.workers()) == 2
    first, again = api.post("/api/sessions/KILL-1/commit/", body), api.post("/api/sessions/KILL-1/commit/", body)
    assert first.status == again.status == 201 and first.raw == again.raw, first.raw
    assert first.json()["items_count"] == 5
    assert_one_full_order(cluster, "KILL-1", 5)


# -- Redis down -------------------------------------------------------------------


def test_commits_succeed_with_redis_down_and_directives_are_delivered_later(
    stack: Stack, cluster: Cluster, redis: Redis
) -> None:
    api = stack.client()
    keys = [f"RD-{i}" for i in range(5)]
    for key in keys:
        open_with_lines(api, "ifood", key, 2)
    redis.stop()
    answers = [api.post(f"/api/sessions/{key}/commit/", {"channel_code": "ifood"}, timeout=30) for key in keys]
    assert [a.status for a in answers] == [201] * 5, [a.raw for a in answers]
    assert max(a.elapsed for a in answers) < 10  # the broker being down does not stall commits
    refs = {a.json()["order_ref"] for a in answers}
    rows = cluster.sql("SELECT payload->>'order_ref', status, attempts FROM omniman_directive "
                       "WHERE topic = 'reliability.ping'")
    assert {r[0] for r in rows} == refs and {(r[1], r[2]) for r in rows} == {("queued", 0)}

    redis.start()
    # A worker with beat inside it: beat runs the reaper, which sends what the commits could not.
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--workdir", str(EXAMPLE), "-A", "config", "worker", "--beat",
         "--schedule", str(stack.workdir / "beat-schedule"), "-Q", "omniman,celery", "--pool", "solo",
         "--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"],
        cwd=ROOT, env=stack.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            done = api.get("/api/directives/?status=done&topic=reliability.ping").json()["results"]
            if {d["payload"]["order_ref"] for d in done} == refs:
                break
            time.sleep(0.5)
        else:
            raise AssertionError(f"directives not delivered: {cluster.sql('SELECT * FROM omniman_directive')}")
    finally:
        worker.terminate()
        worker.wait(30)
    assert all(d["attempts"] == 1 for d in done)  # each ran once
    for key in keys:
        assert_one_full_order(cluster, key, 2, channel="ifood")


@pytest.mark.slow
def test_commits_retried_through_five_postgresql_restarts_make_one_order_each(stack: Stack, cluster: Cluster) -> None:
    """Soak: 8 clients commit 40 sessions, each retrying on 503 or a dropped connection
    with its key, while the database is stopped and started five times."""
    api = stack.client()
    keys = [f"SOAK-{i}" for i in range(40)]
    for key in keys:
        open_with_lines(api, "pos", key, 4)
    results: dict[str, set[bytes]] = {key: set() for key in keys}
    bad: list[Any] = []

    def client(n: int) -> None:
        for key in keys[n::8]:
            body = {"channel_code": "pos", "idempotency_key": f"C-{key}"}
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    answer = api.post(f"/api/sessions/{key}/commit/", body, timeout=20)
                except OSError:
                    time.sleep(0.2)
                    continue
                if answer.status == 201:
                    results[key].add(answer.raw)
                    break
                if answer.status != 503:
                    bad.append((key, answer.status, answer.raw))
                    break
                time.sleep(float(answer.headers["retry-after"]) / 4)
            time.sleep(0.3)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(8)]
    for t in threads:
        t.start()
    for _ in range(5):
        time.sleep(0.8)
        cluster.stop("immediate")
        time.sleep(1.5)
        cluster.start()
    for t in threads:
        t.join(180)
    assert not bad, bad[:5]
    assert all(len(bodies) == 1 for bodies in results.values()), results
    for key in keys:
        assert_one_full_order(cluster, key, 4)


def test_the_server_log_never_shows_a_token(stack: Stack) -> None:
    """After every request of this module (and a few failing ones), gunicorn's output,
    where the app logs at INFO, holds no token."""
    api = stack.client()
    api.post("/api/sessions/NOPE/commit/", {"channel_code": "pos"})
    api.post("/api/sessions/", b"{not json")
    api.get("/api/directives/", token=stack.token[::-1])
    log = (stack.workdir / "gunicorn.log").read_text(errors="replace")
    assert "order committed" in log  # the app does log there
    assert stack.token not in log and stack.token[::-1] not in log
