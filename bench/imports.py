"""The imports scenario: one call against create, modify and commit (issue 18).

    python -m bench.imports [--quick]     # DJANGO_SETTINGS_MODULE=bench.settings

In process with Django's test client and token authentication, on the database the
environment points at (``python -m bench --only imports`` runs it on SQLite and on
PostgreSQL). An order of 1 line and one of 50 lines is written two ways, interleaved
(A B, then B A): the **one call**, ``POST sessions/`` with the lines as ``ops``,
``"commit": true`` and an idempotency key; and the **three calls** an importer makes
without it: a keyed ``POST sessions/``, ``POST modify/`` of the same lines with the
``rev`` it was given, a keyed ``POST commit/``. A round times a batch of orders each
way (mean per order); the figure is the median of the per-round ratios, one call over
three (below 1: the one call is faster). Also the SQL statements per order each way.
Prints one JSON line."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from bench.stats import interleave, paired_ratio, ratio, summary  # noqa: E402
from omniman.models import ChannelGrant, Order  # noqa: E402
from omniman.testing import add_line_op, make_channel  # noqa: E402

LINES = (1, 50)
_seq = itertools.count()


def lines(n: int) -> list[dict[str, Any]]:
    return [add_line_op(f"SKU-{i % 7}", 1 + i % 3, 500 + i) for i in range(n)]


def _ok(resp: Any, status: int, what: str) -> Any:
    if resp.status_code != status:
        raise RuntimeError(f"{what}: {resp.status_code} {resp.content[:300]!r}")
    return resp


def one_call(client: APIClient, ops: list[dict[str, Any]]) -> None:
    """``POST sessions/`` with the ops, ``commit`` and a key: the import."""
    _ok(client.post("/api/sessions/", {"channel_code": "pos", "ops": ops, "commit": True,
                                       "idempotency_key": f"imp-{next(_seq)}"}, format="json"), 201, "import")


def three_calls(client: APIClient, ops: list[dict[str, Any]]) -> None:
    """A keyed create, a modify with the rev it saw, a keyed commit."""
    n = next(_seq)
    created = _ok(client.post("/api/sessions/", {"channel_code": "pos", "idempotency_key": f"new-{n}"},
                              format="json"), 201, "create").json()
    key = created["session_key"]
    _ok(client.post(f"/api/sessions/{key}/modify/", {"channel_code": "pos", "rev": created["rev"], "ops": ops},
                    format="json"), 200, "modify")
    _ok(client.post(f"/api/sessions/{key}/commit/", {"channel_code": "pos", "idempotency_key": f"commit-{n}"},
                    format="json"), 201, "commit")


def timed(fn: Callable[[], None], batch: int) -> float:
    """Mean µs per order over one batch."""
    start = time.perf_counter_ns()
    for _ in range(batch):
        fn()
    return (time.perf_counter_ns() - start) / 1000 / batch


def count_queries(fn: Callable[[], None]) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def setup() -> APIClient:
    call_command("migrate", verbosity=0)
    user = get_user_model().objects.create_user("importer")
    ChannelGrant.objects.create(user=user, channel=make_channel("pos"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    client.get("/api/health/")  # warm the caches a running server has
    return client


def run(quick: bool) -> dict[str, Any]:
    client = setup()
    repeats, batch = (3, 5) if quick else (9, 15)
    out: dict[str, Any] = {"vendor": connection.vendor, "repeats": repeats, "batch": batch, "cases": {}}
    for n in LINES:
        ops = lines(n)
        variants = {
            "one_call": lambda _r, ops=ops: timed(lambda: one_call(client, ops), batch),
            "three_calls": lambda _r, ops=ops: timed(lambda: three_calls(client, ops), batch),
        }
        for fn in variants.values():  # warm up
            fn(0)
        res = interleave(variants, repeats)
        case = {
            "lines": n,
            "us": {k: summary(v) for k, v in res.items()},
            "ratio": ratio(res["one_call"], res["three_calls"]),
            "paired_ratio": paired_ratio(res["one_call"], res["three_calls"]),
            "queries": {
                "one_call": count_queries(lambda ops=ops: one_call(client, ops)),
                "three_calls": count_queries(lambda ops=ops: three_calls(client, ops)),
            },
            "raw": res,
        }
        out["cases"][f"import_{n}_line{'s' if n > 1 else ''}"] = case
        print(f"  {connection.vendor} {n} lines: x{case['paired_ratio']['median']:.2f}", file=sys.stderr)
    out["orders"] = Order.objects.count()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    sys.stdout.write(orjson.dumps(run(args.quick)).decode() + "\n")


if __name__ == "__main__":
    main()
