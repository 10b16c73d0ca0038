"""Scenario 1: modify and commit called in process, against raw ORM lock-and-update.

Run by ``python -m bench`` in a subprocess per database; prints one JSON document."""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from bench.baseline import rows  # noqa: E402
from bench.stats import interleave, ratio, summary  # noqa: E402
from omniman.models import Channel, Session  # noqa: E402
from omniman.services import commit_session, create_session, modify_session  # noqa: E402
from omniman.testing import add_line_op, make_channel  # noqa: E402


def line_template(n: int) -> list[dict[str, Any]]:
    """``n`` lines exactly as the kernel stores them (made by the kernel once)."""
    key = f"TPL-{n}-{time.monotonic_ns()}"
    create_session(channel="pos", session_key=key)
    left = n
    while left:
        chunk = min(left, 100)
        modify_session(channel="pos", session_key=key, ops=[add_line_op(f"SKU{i % 7}", 1, 500 + i)
                                                            for i in range(chunk)])
        left -= chunk
    return list(Session.objects.get(session_key=key).items)


def make_sessions(prefix: str, count: int, items: list[dict[str, Any]]) -> list[str]:
    from bench.fixtures import sessions

    return [row.session_key for row in sessions(prefix, count, items)]


def raw_modify(ch: Channel, key: str, ops: list[dict[str, Any]]) -> None:
    """The baseline: lock the same row, change the same lines, write the same columns."""
    rows.lock_update(ch, key, ops)


def raw_commit(ch: Channel, key: str) -> None:
    rows.commit(ch, key)


def timed(fn: Any, calls: list[Any]) -> float:
    """Mean µs per call over one batch."""
    start = time.perf_counter_ns()
    for call in calls:
        fn(call)
    return (time.perf_counter_ns() - start) / 1000 / len(calls)


def count_queries(fn: Any) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def set_qty_ops(n_ops: int, i: int) -> list[dict[str, Any]]:
    return [{"op": "set_qty", "line_id": f"L{j + 1}", "qty": 1 + (i + j) % 3} for j in range(n_ops)]


def run(quick: bool) -> dict[str, Any]:
    call_command("migrate", verbosity=0)
    ch = make_channel("pos")
    repeats, batch = (3, 8) if quick else (7, 25)
    out: dict[str, Any] = {"vendor": connection.vendor, "repeats": repeats, "batch": batch, "cases": {}}
    templates = {n: line_template(n) for n in (1, 20, 200, 500)}

    # -- modify: (ops, lines) --------------------------------------------
    for name, n_ops, n_lines in [("modify_1op", 1, 1), ("modify_20ops", 20, 20),
                                 ("modify_1op_500lines", 1, 500)]:
        k_key, b_key = make_sessions(f"{name}-k", 1, templates[n_lines])[0], make_sessions(
            f"{name}-b", 1, templates[n_lines])[0]
        counter = {"k": 0, "b": 0}

        def kernel(_: int, key: str = k_key, n: int = n_ops, counter: dict = counter) -> float:
            def one(i: int) -> None:
                modify_session(channel=ch, session_key=key, ops=set_qty_ops(n, i))
            counter["k"] += batch
            return timed(one, list(range(counter["k"], counter["k"] + batch)))

        def base(_: int, key: str = b_key, n: int = n_ops, counter: dict = counter) -> float:
            def one(i: int) -> None:
                raw_modify(ch, key, set_qty_ops(n, i))
            counter["b"] += batch
            return timed(one, list(range(counter["b"], counter["b"] + batch)))

        kernel(0), base(0)  # warm up
        res = interleave({"kernel": kernel, "baseline": base}, repeats)
        out["cases"][name] = {
            "us": {k: summary(v) for k, v in res.items()},
            "ratio": ratio(res["kernel"], res["baseline"]),
            "queries": {
                "kernel": count_queries(lambda key=k_key, n=n_ops: modify_session(
                    channel=ch, session_key=key, ops=set_qty_ops(n, 1))),
                "baseline": count_queries(lambda key=b_key, n=n_ops: raw_modify(ch, key, set_qty_ops(n, 1))),
            },
            "raw": res,
        }
        print(f"  {connection.vendor} {name}: ratio {out['cases'][name]['ratio']}", file=sys.stderr)

    # -- commit: lines ----------------------------------------------------
    for n_lines in (1, 20, 200):
        name = f"commit_{n_lines}lines"
        needed = batch * (repeats + 1) + 1
        k_keys = make_sessions(f"{name}-k", needed, templates[n_lines])
        b_keys = make_sessions(f"{name}-b", needed, templates[n_lines])

        def kcommit(r: int, keys: list[str] = k_keys) -> float:
            return timed(lambda key: commit_session(channel=ch, session_key=key), keys[r * batch:(r + 1) * batch])

        def bcommit(r: int, keys: list[str] = b_keys) -> float:
            return timed(lambda key: raw_commit(ch, key), keys[r * batch:(r + 1) * batch])

        res = interleave({"kernel": kcommit, "baseline": bcommit}, repeats + 1)
        res = {k: v[1:] for k, v in res.items()}  # the first round warms up
        out["cases"][name] = {
            "us": {k: summary(v) for k, v in res.items()},
            "ratio": ratio(res["kernel"], res["baseline"]),
            "queries": {
                "kernel": count_queries(lambda keys=k_keys: commit_session(channel=ch, session_key=keys[-1])),
                "baseline": count_queries(lambda keys=b_keys: raw_commit(ch, keys[-1])),
            },
            "raw": res,
        }
        print(f"  {connection.vendor} {name}: ratio {out['cases'][name]['ratio']}", file=sys.stderr)

    # -- scale of a modify with the session's size ------------------------
    k1, k500 = out["cases"]["modify_1op"]["us"]["kernel"], out["cases"]["modify_1op_500lines"]["us"]["kernel"]
    b1, b500 = out["cases"]["modify_1op"]["us"]["baseline"], out["cases"]["modify_1op_500lines"]["us"]["baseline"]
    out["modify_500_vs_1_lines"] = {
        "kernel": k500["median"] / k1["median"],
        "baseline": b500["median"] / b1["median"],
        "goal": 1.2,
    }
    if settings.HAS_API:
        out["api_queries"] = api_queries(templates)
    return out


def api_queries(templates: dict[int, list[dict[str, Any]]]) -> dict[str, int]:
    """SQL statements per API request, through Django's test client (token auth)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from omniman.models import ChannelGrant

    user, _ = get_user_model().objects.get_or_create(username="bench")
    ChannelGrant.objects.get_or_create(user=user, channel=Channel.objects.get(code="pos"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    big = make_sessions("API-200", 1, templates[200])[0]
    small = make_sessions("API-1", 2, templates[1])
    client.get("/api/health/")  # warm caches (channel config, grants) as a running server has them
    client.get(f"/api/sessions/{small[1]}/?channel_code=pos")
    etag = client.get(f"/api/sessions/{small[0]}/?channel_code=pos").headers.get("ETag", "")
    modify = {"channel_code": "pos", "ops": [{"op": "set_qty", "line_id": "L1", "qty": 2}]}
    calls = {
        "POST sessions/": lambda: client.post("/api/sessions/", {"channel_code": "pos"}, format="json"),
        "GET sessions/{key}/": lambda: client.get(f"/api/sessions/{small[0]}/?channel_code=pos"),
        "GET sessions/{key}/ If-None-Match": lambda: client.get(
            f"/api/sessions/{small[0]}/?channel_code=pos", HTTP_IF_NONE_MATCH=etag),
        "POST modify/ (1 line)": lambda: client.post(f"/api/sessions/{small[0]}/modify/", modify, format="json"),
        "POST modify/ (200 lines)": lambda: client.post(f"/api/sessions/{big}/modify/", modify, format="json"),
        "POST commit/ (1 line)": lambda: client.post(
            f"/api/sessions/{small[1]}/commit/", {"channel_code": "pos", "idempotency_key": "Q1"}, format="json"),
        "POST commit/ (200 lines)": lambda: client.post(
            f"/api/sessions/{big}/commit/", {"channel_code": "pos", "idempotency_key": "Q2"}, format="json"),
        "GET orders/": lambda: client.get("/api/orders/"),
        "GET sessions/": lambda: client.get("/api/sessions/"),
    }
    out = {}
    for name, fn in calls.items():
        with CaptureQueriesContext(connection) as ctx:
            resp = fn()
        if resp.status_code >= 400:
            raise RuntimeError(f"{name}: {resp.status_code} {resp.content[:300]!r}")
        out[name] = len(ctx.captured_queries)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.stdout.write(orjson.dumps(run(args.quick)).decode() + "\n")


if __name__ == "__main__":
    main()
