"""The example as production serves it, against the minimal DRF project (issue 19), and a
priced-options modify on the example's ``shop`` channel against a plain one (issue 17).

The minimal project runs twice: as the issue describes it (parameters bound on the
client, nothing prepared: the goal's baseline), and with psycopg's server-side binding
and prepared statements, which the example's production settings turn on, so that the
report also shows the gap without that setting's share.

Both servers run at once, each gunicorn with 2 sync workers on PostgreSQL, ``DEBUG=0``
and kept database connections: the example as ``config.wsgi:application`` with its full
middleware, the baseline as ``bench.drfmin.wsgi:application``. Each scenario runs
alternating rounds (A B, then B A, ...) of the same length with 8 connections; a
figure is the median of the per-round ratios."""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import env, loadgen
from bench.server import Gunicorn
from bench.stats import interleave, paired_ratio

CONNECTIONS = 8
WORKERS = 2
EXAMPLE_DB, DRFMIN_DB = "omniman_bench_prod", "omniman_bench_drfmin"
N_SESSIONS = 1000
EXAMPLE = env.ROOT / "example_project"


def example_env(db: str) -> dict[str, str]:
    """The example's production environment, Celery and silk off (neither is on a
    modify's or a read's path: no post-commit directive on ``pos`` and ``shop``)."""
    e = {k: v for k, v in os.environ.items()
         if k not in ("CELERY_BROKER_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "OMNIMAN_SILK")}
    e.update({"DATABASE_URL": env.pg_url(db), "DEBUG": "0", "SECRET_KEY": "omniman-bench-not-secret",
              "ALLOWED_HOSTS": "127.0.0.1,localhost", "LOG_LEVEL": "WARNING"})
    return e


def setup_example(db: str, static_root: str) -> tuple[dict[str, str], str, dict[str, int]]:
    """Migrate, seed, collect the static files (WhiteNoise indexes them at start, as in
    production), make the sessions and the token; returns the environment, the token and
    the statements of each request."""
    env.recreate_db(db)
    e = {**example_env(db), "STATIC_ROOT": static_root}
    manage = [sys.executable, str(EXAMPLE / "manage.py")]
    subprocess.run([*manage, "migrate", "-v", "0", "--noinput"], cwd=env.ROOT, env=e, check=True)
    subprocess.run([*manage, "collectstatic", "-v", "0", "--noinput"], cwd=env.ROOT, env=e, check=True)
    subprocess.run([*manage, "omniman_seed"], cwd=env.ROOT, env=e, check=True, stdout=subprocess.DEVNULL)
    token = subprocess.run([*manage, "omniman_token", "bench", "--channels", "pos,shop"], cwd=env.ROOT, env=e,
                           check=True, stdout=subprocess.PIPE).stdout.decode().strip().splitlines()[-1]
    proc = subprocess.run([sys.executable, "-m", "bench.example_fixtures", str(N_SESSIONS), token], cwd=env.ROOT,
                          check=True, stdout=subprocess.PIPE,
                          env={**e, "DJANGO_SETTINGS_MODULE": "config.settings",
                               "PYTHONPATH": f"{env.ROOT}{os.pathsep}{EXAMPLE}"})
    return e, token, orjson.loads(proc.stdout.decode().strip().splitlines()[-1])["statements"]


def setup_drfmin(db: str) -> tuple[dict[str, str], str, dict[str, int]]:
    env.drop_db(db)
    env._psql(f'CREATE DATABASE "{db}"')
    e = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    e.update({"BENCH_DATABASE_URL": env.pg_url(db), "DJANGO_SETTINGS_MODULE": "bench.drfmin.settings",
              "PYTHONPATH": str(env.ROOT)})
    proc = subprocess.run([sys.executable, "-m", "bench.drfmin.setup", "--sessions", str(N_SESSIONS)],
                          cwd=env.ROOT, env=e, stdout=subprocess.PIPE, check=True)
    res = orjson.loads(proc.stdout.decode().strip().splitlines()[-1])
    return e, res["token"], res["statements"]


Maker = Callable[[int, int], bytes]


def _rand(seed: str) -> Callable[[int, int], int]:
    """A random session index per (connection, request), the same on both sides."""
    def pick(t: int, i: int) -> int:
        return random.Random(f"{seed}-{t}-{i}").randrange(N_SESSIONS)
    return pick


def drf_cases(tokens: dict[str, str], etags: dict[str, dict[str, str]]) -> dict[str, tuple[Maker, Maker]]:
    """name → (example request maker, minimal DRF request maker)."""
    req = loadgen.request
    ex, mn = tokens["example"], tokens["drfmin"]
    pick = _rand("spread")

    def body(ops: list[dict[str, Any]]) -> bytes:
        return orjson.dumps({"channel_code": "pos", "ops": ops})

    add = [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]

    def set_qty(i: int) -> bytes:
        return body([{"op": "set_qty", "line_id": "L1", "qty": 1 + i % 3}])

    def inm(side: str, base: str, token: str) -> Maker:
        def make(t: int, i: int) -> bytes:
            k = f"H-{1 + pick(t, i) % 100}"
            return req("GET", f"{base}/{k}/?channel_code=pos", token=token,
                       headers={"If-None-Match": etags[side][k]})
        return make

    return {
        "add_line_spread": (
            lambda t, i: req("POST", f"/api/sessions/H-{pick(t, i)}/modify/", token=ex, body=body(add)),
            lambda t, i: req("POST", f"/min/sessions/H-{pick(t, i)}/modify/", token=mn, body=body(add)),
        ),
        "set_qty_hot": (
            lambda t, i: req("POST", "/api/sessions/H-0/modify/", token=ex, body=set_qty(i)),
            lambda t, i: req("POST", "/min/sessions/H-0/modify/", token=mn, body=set_qty(i)),
        ),
        "get": (
            lambda t, i: req("GET", f"/api/sessions/H-{pick(t, i)}/?channel_code=pos", token=ex),
            lambda t, i: req("GET", f"/min/sessions/H-{pick(t, i)}/?channel_code=pos", token=mn),
        ),
        "get_304": (inm("example", "/api/sessions", ex), inm("drfmin", "/min/sessions", mn)),
    }


def fetch_etags(port: int, base: str, token: str) -> dict[str, str]:
    conn = loadgen.Conn(port)
    out = {}
    try:
        for n in range(1, 101):
            status, headers, body = conn.send(loadgen.request("GET", f"{base}/H-{n}/?channel_code=pos", token=token))
            if status != 200 or not headers.get("etag"):
                raise RuntimeError(f"{base}/H-{n}/: {status} {body[:200]!r}")
            out[f"H-{n}"] = headers["etag"]
    finally:
        conn.close()
    return out


def options_cases(token: str) -> dict[str, Maker]:
    """Issue 17: one add_line per request on a random one of 1,000 sessions of each channel."""
    req = loadgen.request
    pick = _rand("options")

    def modify(prefix: str, channel: str, op: dict[str, Any]) -> Maker:
        raw = orjson.dumps({"channel_code": channel, "ops": [op]})
        return lambda t, i: req("POST", f"/api/sessions/{prefix}-{pick(t, i)}/modify/", token=token, body=raw)

    return {
        "pos_plain": modify("H", "pos", {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}),
        "shop_plain": modify("S", "shop", {"op": "add_line", "sku": "CAPPUCCINO", "qty": 1}),
        "shop_options": modify("S", "shop", {"op": "add_line", "sku": "CAPPUCCINO", "qty": 1, "options": [
            {"code": "OAT"}, {"code": "SHOT", "qty": 2}]}),
    }


def measure(variants: dict[str, tuple[Gunicorn, Maker]], *, rounds: int, seconds: float) -> dict[str, Any]:
    def go(server: Gunicorn, make: Maker) -> Callable[[int], dict[str, Any]]:
        def one(_: int) -> dict[str, Any]:
            cpu0 = server.cpu_seconds()
            res = loadgen.run(server.port, make, seconds=seconds, connections=CONNECTIONS)
            cpu = server.cpu_seconds() - cpu0
            res["server_cpu_us_per_req"] = cpu / res["requests"] * 1e6 if res["requests"] else None
            return res
        return one

    for server, make in variants.values():  # warm up: imports, connections, caches
        loadgen.run(server.port, make, seconds=min(1.0, seconds / 2), connections=CONNECTIONS)
    runs = interleave({name: go(*v) for name, v in variants.items()}, rounds)
    out: dict[str, Any] = {"runs": runs}
    for name, rs in runs.items():
        out[name] = {
            "rps_median": sorted(r["rps"] for r in rs)[len(rs) // 2],
            "p99_ms_median": sorted(r["p99_ms"] for r in rs)[len(rs) // 2],
            "failures": sum(r["failures"] for r in rs),
            "server_cpu_us_per_req": sorted(r["server_cpu_us_per_req"] or 0 for r in rs)[len(rs) // 2],
            "loadgen_cpu_us_per_req": sorted(r["loadgen_cpu_us_per_req"] or 0 for r in rs)[len(rs) // 2],
        }
    every = [r for rs in runs.values() for r in rs]
    out["loadgen_vs_server_cpu"] = max((r["loadgen_cpu_us_per_req"] or 0) / (r["server_cpu_us_per_req"] or 1)
                                       for r in every)
    out["loadgen_cpu_share_max"] = max(r["loadgen_cpu_share"] or 0 for r in every)
    return out


def run_prod(args: argparse.Namespace) -> dict[str, Any]:
    rounds, seconds = (3, 2.0) if args.quick else (3, 10.0)
    env.log("prod: setting up the example and the minimal DRF project")
    static = tempfile.TemporaryDirectory(prefix="omniman_bench_static_")
    ex_env, ex_token, ex_sql = setup_example(EXAMPLE_DB, static.name)
    mn_env, mn_token, mn_sql = setup_drfmin(DRFMIN_DB)
    out: dict[str, Any] = {
        "statements": {"example": ex_sql, "drfmin": mn_sql,
                       "note": "per request, BEGIN and COMMIT included (Django's test client)"},
        "connections": CONNECTIONS, "rounds": rounds, "seconds": seconds,
        "servers": {"example": f"gunicorn config.wsgi:application, {WORKERS} sync workers, PostgreSQL, DEBUG=0, "
                               "CONN_MAX_AGE=60, the example's full middleware",
                    "drfmin": f"gunicorn bench.drfmin.wsgi:application, {WORKERS} sync workers, PostgreSQL, "
                              "CONN_MAX_AGE=60, SecurityMiddleware and CommonMiddleware",
                    "drfmin_prepared": "the same, with server-side binding and prepared statements "
                                       "(BENCH_PG_PREPARED=1), as the example has them"},
        "goal": {"rps_ratio": 1.0, "p99_ratio": 1.2},
        "vs_drfmin": {}, "options": {},
    }
    ex_port, mn_port, mp_port = env.PORT_BASE + 40, env.PORT_BASE + 41, env.PORT_BASE + 43
    with Gunicorn(ex_port, "config.wsgi:application", ex_env, worker_class="sync", workers=WORKERS,
                  chdir=EXAMPLE) as ex, \
            Gunicorn(mn_port, "bench.drfmin.wsgi:application", mn_env, worker_class="sync", workers=WORKERS) as mn, \
            Gunicorn(mp_port, "bench.drfmin.wsgi:application", {**mn_env, "BENCH_PG_PREPARED": "1"},
                     worker_class="sync", workers=WORKERS) as mp:
        tokens = {"example": ex_token, "drfmin": mn_token}
        etags: dict[str, dict[str, str]] = {}
        cases = drf_cases(tokens, etags)
        if getattr(args, "prod_only", None):
            cases = {k: v for k, v in cases.items() if k in args.prod_only}
        for name, (make_ex, make_mn) in cases.items():
            if name == "get_304":
                etags["example"] = fetch_etags(ex.port, "/api/sessions", ex_token)
                etags["drfmin"] = fetch_etags(mn.port, "/min/sessions", mn_token)
            res = measure({"example": (ex, make_ex), "drfmin": (mn, make_mn), "drfmin_prepared": (mp, make_mn)},
                          rounds=rounds, seconds=seconds)
            rs = res["runs"]
            for base, suffix in (("drfmin", ""), ("drfmin_prepared", "_prepared")):
                res[f"rps_ratio{suffix}"] = paired_ratio([r["rps"] for r in rs["example"]],
                                                         [r["rps"] for r in rs[base]])
                res[f"p99_ratio{suffix}"] = paired_ratio([r["p99_ms"] for r in rs["example"]],
                                                         [r["p99_ms"] for r in rs[base]])
            out["vs_drfmin"][name] = res
            env.log(f"prod {name}: req/s x{res['rps_ratio']['median']:.2f} p99 x{res['p99_ratio']['median']:.2f} "
                    f"({res['example']['rps_median']:.0f} vs {res['drfmin']['rps_median']:.0f} req/s); against "
                    f"it with prepared statements x{res['rps_ratio_prepared']['median']:.2f} p99 "
                    f"x{res['p99_ratio_prepared']['median']:.2f}")
        if not getattr(args, "prod_only", None) or "options" in args.prod_only:
            oc = options_cases(ex_token)
            res = measure({k: (ex, m) for k, m in oc.items()}, rounds=rounds, seconds=seconds)
            rs = res["runs"]
            for side in ("shop_options", "shop_plain"):
                res[f"{side}_vs_pos_plain"] = {
                    "rps_ratio": paired_ratio([r["rps"] for r in rs[side]], [r["rps"] for r in rs["pos_plain"]]),
                    "p99_ratio": paired_ratio([r["p99_ms"] for r in rs[side]],
                                              [r["p99_ms"] for r in rs["pos_plain"]]),
                }
            out["options"] = res
            env.log("prod options: shop_options/pos_plain req/s "
                    f"x{res['shop_options_vs_pos_plain']['rps_ratio']['median']:.2f}, shop_plain/pos_plain "
                    f"x{res['shop_plain_vs_pos_plain']['rps_ratio']['median']:.2f}")
    env.drop_db(EXAMPLE_DB)
    env.drop_db(DRFMIN_DB)
    static.cleanup()
    return out



def warm_up(port: int, make: Maker, *, requests: int) -> None:
    """Drive the server until it has answered ``requests`` requests (gunicorn's port opens
    before its workers have imported the project)."""
    done = 0
    while done < requests:
        done += loadgen.run(port, make, seconds=1.0, connections=CONNECTIONS)["requests"]


def run_prod_profile(args: argparse.Namespace) -> dict[str, Any]:
    """pyinstrument on each gunicorn worker (``bench/gunicorn_pyinstrument.py``) while the
    load generator drives one scenario, the example and the minimal DRF project in turn;
    the text profiles go to ``bench/results/prod-profile/``."""
    import shutil

    from bench import profsummary

    seconds = 5.0 if args.quick else 30.0
    outdir = env.results_dir(args.quick) / "prod-profile"
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    static = tempfile.TemporaryDirectory(prefix="omniman_bench_static_")
    tmp_sessions = tempfile.TemporaryDirectory(prefix="omniman_bench_pyisessions_")
    ex_env, ex_token, _ = setup_example(EXAMPLE_DB, static.name)
    mn_env, mn_token, _ = setup_drfmin(DRFMIN_DB)
    config = env.ROOT / "bench" / "gunicorn_pyinstrument.py"
    etags: dict[str, dict[str, str]] = {}
    cases = drf_cases({"example": ex_token, "drfmin": mn_token}, etags)
    if getattr(args, "prod_only", None):
        cases = {k: v for k, v in cases.items() if k in args.prod_only}
    out: dict[str, Any] = {"seconds": seconds, "dir": str(outdir.relative_to(env.ROOT)), "cases": {}}
    port = env.PORT_BASE + 42
    for name, makers in cases.items():
        for side, make, app, e, chdir, base, token in (
            ("example", makers[0], "config.wsgi:application", ex_env, EXAMPLE, "/api/sessions", ex_token),
            ("drfmin", makers[1], "bench.drfmin.wsgi:application", mn_env, None, "/min/sessions", mn_token),
        ):
            pe = {**e, "BENCH_PROFILE_DIR": str(outdir), "BENCH_PROFILE_NAME": f"{name}-{side}",
                  "BENCH_PROFILE_SKIP": "10"}
            with Gunicorn(port, app, pe, worker_class="sync", workers=WORKERS, chdir=chdir, config=config,
                          stop_timeout=150) as srv:
                if name == "get_304":
                    etags[side] = fetch_etags(srv.port, base, token)
                warm_up(srv.port, make, requests=60)  # both workers booted, past the skipped requests
                res = loadgen.run(srv.port, make, seconds=seconds, connections=CONNECTIONS)
            sessions = sorted(outdir.glob(f"{name}-{side}-*.pyisession"))
            files = [profsummary.render(p, outdir, strip=(sys.prefix, str(env.ROOT))) for p in sessions]
            for p in sessions:  # large: only the text and the summary are kept
                p.rename(Path(tmp_sessions.name) / p.name)
            out["cases"][f"{name}-{side}"] = {
                "requests": res["requests"], "rps": res["rps"], "failures": res["failures"],
                "file": ", ".join(str(f.relative_to(env.ROOT)) for f in files)}
            env.log(f"prod-profile {name} {side}: {res['requests']} requests, {len(files)} profiles")
    out["summary"] = profsummary.summarize_dir(Path(tmp_sessions.name))
    (outdir / "summary.txt").write_text(profsummary.text(out["summary"]) + "\n")
    tmp_sessions.cleanup()
    env.drop_db(EXAMPLE_DB)
    env.drop_db(DRFMIN_DB)
    static.cleanup()
    return out
