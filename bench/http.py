"""Scenarios 2 and 3: the HTTP API under gunicorn against bare DRF views (same run,
interleaved), and the cost of the same requests on 1 k vs 1 M rows."""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import orjson

from bench import env, loadgen
from bench.server import Gunicorn
from bench.stats import interleave, ratio

APP = "bench.baseline.wsgi:application"
CONNECTIONS = 8


def setup_db(name: str, *args: str) -> str:
    """Create, migrate and fill ``name``; returns the API token."""
    e = env.bench_env(db=name)
    proc = subprocess.run([sys.executable, "-m", "bench.fixtures", *args], cwd=env.ROOT, env=e,
                          stdout=subprocess.PIPE, check=True)
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])["token"]


def api_available(port: int) -> bool:
    conn = loadgen.Conn(port)
    try:
        status, _, _ = conn.send(loadgen.request("GET", "/api/health/"))
        return status == 200
    except Exception:
        return False
    finally:
        conn.close()


def _body(obj: Any) -> bytes:
    return orjson.dumps(obj)


def cases(token: str, port: int, n_sessions: int,
          counters: tuple[itertools.count, itertools.count]) -> dict[str, tuple[Callable, Callable]]:
    """name → (omniman request maker, bare request maker). ``counters`` hand out the
    sessions to commit (``CK-i``, ``CB-i``), each once across every server kind."""
    req = loadgen.request
    key = lambda t, i: f"H-{(t * 7919 + i * 104729) % n_sessions}"  # noqa: E731
    qty = lambda i: 1 + i % 3  # noqa: E731

    def op(i: int) -> list[dict[str, Any]]:
        return [{"op": "set_qty", "line_id": "L1", "qty": qty(i)}]

    ck, cb = counters
    etags: dict[str, str] = {}
    bare_etags: dict[str, str] = {}

    def fetch_etags() -> None:
        conn = loadgen.Conn(port)
        for n in range(100):
            k = f"H-{n}"
            _, h, _ = conn.send(req("GET", f"/api/sessions/{k}/?channel_code=pos", token=token))
            etags[k] = h.get("etag", "")
            _, h, _ = conn.send(req("GET", f"/bare/sessions/{k}/?channel_code=pos", token=token))
            bare_etags[k] = h.get("etag", "")
        conn.close()

    def inm(t: int, i: int, bare: bool) -> bytes:
        if not etags:
            raise RuntimeError("etags not fetched")
        k = f"H-{(t * 13 + i) % 100}"
        base = "/bare/sessions" if bare else "/api/sessions"
        tag = (bare_etags if bare else etags)[k]
        return req("GET", f"{base}/{k}/?channel_code=pos", token=token, headers={"If-None-Match": tag})

    return {
        "modify_spread": (
            lambda t, i: req("POST", f"/api/sessions/{key(t, i)}/modify/", token=token,
                             body=_body({"channel_code": "pos", "ops": op(i)})),
            lambda t, i: req("POST", "/bare/modify/", token=token,
                             body=_body({"channel_code": "pos", "session_key": key(t, i), "ops": op(i)})),
        ),
        "modify_hot": (
            lambda t, i: req("POST", "/api/sessions/H-0/modify/", token=token,
                             body=_body({"channel_code": "pos", "ops": op(i)})),
            lambda t, i: req("POST", "/bare/modify/", token=token,
                             body=_body({"channel_code": "pos", "session_key": "H-0", "ops": op(i)})),
        ),
        "get": (
            lambda t, i: req("GET", f"/api/sessions/{key(t, i)}/?channel_code=pos", token=token),
            lambda t, i: req("GET", f"/bare/sessions/{key(t, i)}/?channel_code=pos", token=token),
        ),
        "get_if_none_match": (
            lambda t, i: inm(t, i, False),
            lambda t, i: inm(t, i, True),
        ),
        "create": (
            lambda t, i: req("POST", "/api/sessions/", token=token, body=b'{"channel_code": "pos"}'),
            lambda t, i: req("POST", "/bare/sessions/", token=token, body=b'{"channel_code": "pos"}'),
        ),
        "commit": (
            lambda t, i: req("POST", f"/api/sessions/CK-{next(ck)}/commit/", token=token,
                             body=b'{"channel_code": "pos"}'),
            lambda t, i: req("POST", f"/bare/sessions/CB-{next(cb)}/commit/", token=token,
                             body=b'{"channel_code": "pos"}'),
        ),
        "_fetch_etags": (fetch_etags, fetch_etags),
    }


def measure_pair(server: Gunicorn, makers: tuple[Callable, Callable], *, repeats: int,
                 seconds: float, with_bare: bool = True) -> dict[str, Any]:
    def variant(make: Callable) -> Callable[[int], dict[str, Any]]:
        def go(_: int) -> dict[str, Any]:
            cpu0 = server.cpu_seconds()
            res = loadgen.run(server.port, make, seconds=seconds, connections=CONNECTIONS)
            cpu = server.cpu_seconds() - cpu0
            res["server_cpu_us_per_req"] = cpu / res["requests"] * 1e6 if res["requests"] else None
            return res
        return go

    variants = {"omniman": variant(makers[0])}
    if with_bare:
        variants["bare"] = variant(makers[1])
    loadgen.run(server.port, makers[0], seconds=0.3, connections=2)  # warm up
    if with_bare:
        loadgen.run(server.port, makers[1], seconds=0.3, connections=2)
    runs = interleave(variants, repeats)
    out: dict[str, Any] = {"runs": runs}
    for name, rs in runs.items():
        out[name] = {
            "rps_median": sorted(r["rps"] for r in rs)[len(rs) // 2],
            "p99_ms_median": sorted(r["p99_ms"] for r in rs)[len(rs) // 2],
            "failures": sum(r["failures"] for r in rs),
        }
    if with_bare:
        om, ba = runs["omniman"], runs["bare"]
        out["rps_ratio"] = ratio([r["rps"] for r in om], [r["rps"] for r in ba])
        out["p99_ratio"] = ratio([r["p99_ms"] for r in om], [r["p99_ms"] for r in ba])
        out["goal"] = {"rps_ratio": 0.8, "p99_ratio": 1.5}
        lg = [r["loadgen_cpu_us_per_req"] or 0 for r in om + ba]
        sv = [r["server_cpu_us_per_req"] or 1 for r in om + ba]
        out["loadgen_vs_server_cpu"] = max(a / b for a, b in zip(lg, sv, strict=True))
    return out


def run_http(args: argparse.Namespace) -> dict[str, Any]:
    repeats, seconds = (2, 1.0) if args.quick else (5, 4.0)
    commit_budget = 2 * (int(repeats * seconds * 600) + 1000)  # both server kinds
    env.recreate_db("omniman_bench_http")
    env.log("http: loading fixtures")
    token = setup_db("omniman_bench_http", "--sessions", "1000", "--commit", str(commit_budget))
    e = env.bench_env(db="omniman_bench_http")
    out: dict[str, Any] = {"connections": CONNECTIONS, "repeats": repeats, "seconds": seconds, "workers": 2}
    kinds = ["gthread"] if args.quick else ["gthread", "sync"]
    counters = (itertools.count(), itertools.count())
    for kind in kinds:
        with Gunicorn(env.PORT_BASE + 1, APP, e, worker_class=kind) as server:
            has_api = api_available(server.port)
            out["api"] = has_api
            all_cases = cases(token, server.port, 1000, counters)
            names = [n for n in all_cases if not n.startswith("_")]
            if kind == "sync" and args.quick:
                names = ["modify_spread"]
            res: dict[str, Any] = {}
            for name in names:
                if name == "get_if_none_match":
                    if not has_api:
                        continue
                    all_cases["_fetch_etags"][0]()
                if not has_api:
                    makers = (all_cases[name][1], all_cases[name][1])
                    res[name] = measure_pair(server, makers, repeats=repeats, seconds=seconds, with_bare=False)
                    res[name]["note"] = "omniman_api missing: bare view alone"
                else:
                    res[name] = measure_pair(server, all_cases[name], repeats=repeats, seconds=seconds)
                env.log(f"http {kind} {name}: "
                        + (f"rps x{res[name]['rps_ratio']['median']:.2f} p99 x{res[name]['p99_ratio']['median']:.2f}"
                           if "rps_ratio" in res[name] else f"{res[name]['omniman']['rps_median']:.0f} req/s"))
            out[kind] = res
    env.drop_db("omniman_bench_http")
    return out


def walk_cursor(port: int, token: str, path: str, pages: int) -> str:
    """Follow ``next`` ``pages`` times; returns the path of the page reached."""
    conn = loadgen.Conn(port)
    try:
        for _ in range(pages):
            status, _, body = conn.send(loadgen.request("GET", path, token=token))
            if status != 200:
                raise RuntimeError(f"{path}: {status} {body[:200]!r}")
            nxt = orjson.loads(body)["next"]
            if not nxt:
                raise RuntimeError("ran out of pages")
            parts = urlsplit(nxt)
            path = parts.path + ("?" + parts.query if parts.query else "")
        return path
    finally:
        conn.close()


def run_scale(args: argparse.Namespace) -> dict[str, Any]:
    large = args.large or (100_000 if args.quick else 1_000_000)
    repeats, seconds = (2, 1.0) if args.quick else (5, 4.0)
    small_db, large_db = "omniman_bench_scale_small", f"omniman_bench_scale_{large}"
    env.recreate_db(small_db)
    tokens = {"small": setup_db(small_db, "--sessions", "1000", "--bulk", "1000")}
    if env.db_stamp_ok(large_db) and _rows(large_db) >= large:
        env.log(f"scale: reusing {large_db}")
        tokens["large"] = setup_db(large_db, "--sessions", "0")
    else:
        env.recreate_db(large_db)
        env.log(f"scale: bulk-loading {large:,} sessions and orders")
        t0 = time.time()
        tokens["large"] = setup_db(large_db, "--sessions", "1000", "--bulk", str(large))
        env.log(f"scale: loaded in {time.time() - t0:.0f} s")
    out: dict[str, Any] = {"small_rows": 1000, "large_rows": large, "repeats": repeats, "seconds": seconds,
                           "note": "" if large >= 1_000_000 else f"quick mode: large = {large:,} rows, not 1M"}
    with Gunicorn(env.PORT_BASE + 2, APP, env.bench_env(db=small_db)) as small, \
            Gunicorn(env.PORT_BASE + 3, APP, env.bench_env(db=large_db)) as big:
        if not api_available(small.port):
            raise RuntimeError("omniman_api is not available")
        req = loadgen.request

        def modify(token: str, offset: int) -> Callable:
            return lambda t, i: req(
                "POST", f"/api/sessions/H-{(t * 7919 + i * 104729) % 1000}/modify/", token=token,
                body=_body({"channel_code": "pos", "ops": [{"op": "set_qty", "line_id": "L1", "qty": 1 + i % 3}]}))

        def get(token: str, path: str) -> Callable:
            return lambda t, i: req("GET", path, token=token)

        deep = walk_cursor(big.port, tokens["large"], "/api/orders/?page_size=100", 100)
        plans = {
            "modify": ((small, modify(tokens["small"], 0)), (big, modify(tokens["large"], 0))),
            "orders_page1": ((small, get(tokens["small"], "/api/orders/")),
                             (big, get(tokens["large"], "/api/orders/"))),
            "sessions_page1": ((small, get(tokens["small"], "/api/sessions/")),
                               (big, get(tokens["large"], "/api/sessions/"))),
            "orders_depth_10000": ((big, get(tokens["large"], "/api/orders/?page_size=100")),
                                   (big, get(tokens["large"], deep))),
        }
        for name, ((s_a, m_a), (s_b, m_b)) in plans.items():
            loadgen.run(s_a.port, m_a, seconds=0.3, connections=2)
            loadgen.run(s_b.port, m_b, seconds=0.3, connections=2)
            runs = interleave({
                "a": lambda _, s=s_a, m=m_a: loadgen.run(s.port, m, seconds=seconds, connections=CONNECTIONS),
                "b": lambda _, s=s_b, m=m_b: loadgen.run(s.port, m, seconds=seconds, connections=CONNECTIONS),
            }, repeats)
            # cost ratio = b's time per request over a's = a's req/s over b's
            cost = ratio([r["rps"] for r in runs["a"]], [r["rps"] for r in runs["b"]])
            p50 = ratio([r["p50_ms"] for r in runs["b"]], [r["p50_ms"] for r in runs["a"]])
            out[name] = {"cost_ratio": cost, "p50_ratio": p50, "goal": 1.2, "runs": runs,
                         "a": "page 1" if name == "orders_depth_10000" else f"{1000:,} rows",
                         "b": "depth 10,000" if name == "orders_depth_10000" else f"{large:,} rows",
                         "failures": sum(r["failures"] for r in runs["a"] + runs["b"])}
            env.log(f"scale {name}: cost x{cost['median']:.2f}")
    env.drop_db(small_db)
    return out


def _rows(db: str) -> int:
    import psycopg

    try:
        with psycopg.connect(env.pg_url(db), autocommit=True) as conn:
            return min(
                conn.execute("SELECT count(*) FROM omniman_order WHERE ref LIKE 'BULK-%%'").fetchone()[0],
                conn.execute("SELECT count(*) FROM omniman_directive").fetchone()[0],
            )
    except Exception:
        return 0
