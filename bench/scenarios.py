"""Scenarios 4 and 5 and the EXPLAIN plans, each in processes of their own."""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench import env


def _module(module: str, e: dict[str, str], *args: str) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=env.ROOT, env=e,
                          stdout=subprocess.PIPE, check=True)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def run_directives(args: argparse.Namespace) -> dict[str, Any]:
    env.recreate_db("omniman_bench_directives")
    e = env.bench_env(db="omniman_bench_directives", BENCH_DIRECTIVES="celery")
    out = _module("bench.dirbench", e, *(["--quick"] if args.quick else []))
    env.drop_db("omniman_bench_directives")
    return out


def run_locust(args: argparse.Namespace) -> dict[str, Any]:
    """The seed workload (create, modify, commit) with locust headless against the example
    project under gunicorn (2 gthread workers) on PostgreSQL, directives in process."""
    from bench.server import Gunicorn

    db = "omniman_bench_example"
    example = env.ROOT / "example_project"
    locustfile = example / "locustfile.py"
    if not locustfile.exists():
        locustfile = env.ROOT / "bench" / "locustfile.py"
    env.recreate_db(db)
    e = {k: v for k, v in os.environ.items() if k not in ("CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")}
    e.update({"DATABASE_URL": env.pg_url(db), "DEBUG": "0", "SECRET_KEY": "omniman-bench-not-secret",
              "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING", "OMNIMAN_SILK": "0"})
    manage = [sys.executable, str(example / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0", "--noinput"], cwd=env.ROOT, env=e, check=True)
    subprocess.run([*manage, "omniman_seed"], cwd=env.ROOT, env=e, check=True, stdout=subprocess.DEVNULL)
    token = subprocess.run([*manage, "omniman_token", "loadtest", "--channels", "pos"], cwd=env.ROOT, env=e,
                           check=True, stdout=subprocess.PIPE).stdout.decode().strip()
    users, seconds = 8, (10 if args.quick else 60)
    port = env.PORT_BASE + 20
    with tempfile.TemporaryDirectory(prefix="omniman_bench_locust_") as tmp, \
            Gunicorn(port, "config.wsgi:application", e, chdir=example):
        prefix = str(Path(tmp) / "run")
        subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", str(users),
             "-r", str(users), "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}", "--csv", prefix,
             "--only-summary", "--loglevel", "WARNING"],
            cwd=env.ROOT, env={**e, "OMNIMAN_TOKEN": token}, check=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        with open(prefix + "_stats.csv", newline="") as fh:
            stats = list(csv.DictReader(fh))
    env.drop_db(db)
    agg = next(r for r in stats if r["Name"] == "Aggregated")
    return {
        "users": users,
        "seconds": seconds,
        "server": "gunicorn config.wsgi, 2 gthread workers, PostgreSQL, directives in process",
        "locustfile": str(locustfile.relative_to(env.ROOT)),
        "requests": int(agg["Request Count"]),
        "failures": int(agg["Failure Count"]),
        "rps": float(agg["Requests/s"]),
        "p50_ms": float(agg["50%"]),
        "p99_ms": float(agg["99%"]),
        "by_name": {r["Name"]: {"requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                                "p50_ms": float(r["50%"]), "p99_ms": float(r["99%"])}
                    for r in stats if r["Name"] != "Aggregated"},
    }


def run_explain(args: argparse.Namespace) -> dict[str, Any]:
    """Plans of the hot queries on the large scale database (loaded when missing)."""
    from bench.http import _rows, setup_db

    large = args.large or (100_000 if args.quick else 1_000_000)
    db = f"omniman_bench_scale_{large}"
    if not (env.db_stamp_ok(db) and _rows(db) >= large):
        env.recreate_db(db)
        setup_db(db, "--sessions", "1000", "--bulk", str(large))
    outdir = env.results_dir(args.quick) / "explain"
    out = _module("bench.explain", env.bench_env(db=db), str(outdir))
    return {"rows": large, "dir": str(outdir.relative_to(env.ROOT)), "queries": out}


def run_profile(args: argparse.Namespace) -> dict[str, Any]:
    """pyinstrument profiles of modify, GET and commit, the API beside the bare view."""
    db = "omniman_bench_profile"
    env.recreate_db(db)
    outdir = env.results_dir(args.quick) / "profile"
    out = _module("bench.profile", env.bench_env(db=db), str(outdir), "50" if args.quick else "200")
    env.drop_db(db)
    return {"dir": str(outdir.relative_to(env.ROOT)), "per_request": out}


def run_silk(args: argparse.Namespace) -> dict[str, Any]:
    """What django-silk costs on a modify: ``example_project/prod/measure_silk.py``
    (two gunicorn servers of the example on SQLite, silk off and on, interleaved)."""
    script = env.ROOT / "example_project" / "prod" / "measure_silk.py"
    requests = 100 if args.quick else 300
    ports = f"{env.PORT_BASE + 30},{env.PORT_BASE + 31}"
    proc = subprocess.run([sys.executable, str(script), "--requests", str(requests), "--ports", ports, "--json"],
                          cwd=env.ROOT, stdout=subprocess.PIPE, check=True)
    out = json.loads(proc.stdout.decode().strip().splitlines()[-1])
    out["command"] = "python example_project/prod/measure_silk.py"
    return out


def run_payload(args: argparse.Namespace) -> dict[str, Any]:
    """Answer sizes plain and gzipped, the gzip time and orjson vs DRF rendering (``bench.payload``)."""
    with tempfile.TemporaryDirectory(prefix="omniman_bench_payload_") as tmp:
        e = env.bench_env(sqlite=str(Path(tmp) / "payload.sqlite3"))
        return _module("bench.payload", e, *(["--quick"] if args.quick else []))
