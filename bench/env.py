"""What the bench needs around it: PostgreSQL databases, Redis, the machine's description."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PG_BASE = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS_HOST = "127.0.0.1"
# Our own Redis databases: 10 broker, 11 marks, 12 spare.
BROKER_DB, MARKS_DB = 10, 11
PORT_BASE = int(os.environ.get("BENCH_PORT_BASE", "8500"))  # 8500-8599 are the bench's
_redis_port = int(os.environ.get("BENCH_REDIS_PORT", "6379"))


def results_dir(quick: bool) -> Path:
    """Full runs write ``bench/results/`` (committed); quick runs ``bench/results/quick/``."""
    return RESULTS / "quick" if quick else RESULTS


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pg_url(name: str) -> str:
    return f"{PG_BASE}/{name}"


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def ensure_redis() -> str:
    """Redis on loopback: the usual port if it answers, else our own on a bench port."""
    global _redis_port
    if port_open(_redis_port):
        return f"redis://{REDIS_HOST}:{_redis_port}"
    own = PORT_BASE + 99
    if not port_open(own):
        exe = shutil.which("redis-server")
        if exe is None:
            raise SystemExit("Redis is not running on 127.0.0.1:6379 and redis-server is not installed")
        log(f"starting redis-server on port {own}")
        subprocess.run(
            [exe, "--port", str(own), "--bind", REDIS_HOST, "--save", "", "--appendonly", "no",
             "--daemonize", "yes"],
            check=True,
        )
        for _ in range(50):
            if port_open(own):
                break
            time.sleep(0.1)
    _redis_port = own
    return f"redis://{REDIS_HOST}:{own}"


def redis_url(db: int) -> str:
    return f"{ensure_redis()}/{db}"


def _psql(sql: str, db: str = "postgres") -> str:
    import psycopg

    with psycopg.connect(pg_url(db), autocommit=True) as conn:
        cur = conn.execute(sql)
        return "" if cur.description is None else str(cur.fetchone()[0])


def pg_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


TEMPLATE = "omniman_bench_template"


def schema_stamp() -> str:
    """A hash of every migration: a cached database is reused only with the same schema."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("omniman*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def make_template() -> None:
    """One migrated database that every other is copied from (CREATE DATABASE ... TEMPLATE)."""
    _psql(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')
    _psql(f'CREATE DATABASE "{TEMPLATE}"')
    migrate(bench_env(db=TEMPLATE))


def recreate_db(name: str) -> None:
    assert name.startswith("omniman_bench"), name
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if pg_exists(TEMPLATE):
        _psql(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
    else:
        _psql(f'CREATE DATABASE "{name}"')
    _psql(f"COMMENT ON DATABASE \"{name}\" IS 'omniman-bench {schema_stamp()}'")


def db_stamp_ok(name: str) -> bool:
    """``name`` exists and was made with the current migrations."""
    if not pg_exists(name):
        return False
    comment = _psql(f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'")
    return comment == f"omniman-bench {schema_stamp()}"


def drop_db(name: str) -> None:
    assert name.startswith("omniman_bench"), name
    _psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def bench_env(db: str | None = None, sqlite: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a bench subprocess pointed at one database."""
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "bench.settings"
    env["PYTHONPATH"] = str(ROOT)
    env.pop("BENCH_DATABASE_URL", None)
    env.pop("BENCH_SQLITE", None)
    if db:
        env["BENCH_DATABASE_URL"] = pg_url(db)
    if sqlite:
        env["BENCH_SQLITE"] = sqlite
    env["BENCH_BROKER_URL"] = redis_url(BROKER_DB)
    env["BENCH_MARKS_URL"] = redis_url(MARKS_DB)
    env.update(extra)
    return env


def migrate(env: dict[str, str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "django", "migrate", "-v", "0", "--noinput"],
        cwd=ROOT, env=env, check=True,
    )


def machine() -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        pg = _psql("SHOW server_version")
    except Exception as exc:  # pragma: no cover - reported, not fatal
        pg = f"unavailable ({exc.__class__.__name__})"
    try:
        import redis

        rv = redis.Redis.from_url(redis_url(MARKS_DB)).info("server")["redis_version"]
    except Exception:
        rv = "unavailable"
    import django

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "django": django.get_version(),
        "postgresql": pg,
        "redis": rv,
        "loadavg_at_start": [round(x, 2) for x in load],
    }
