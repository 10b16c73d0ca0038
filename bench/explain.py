"""EXPLAIN (ANALYZE, BUFFERS) of the hot queries, captured from real API calls.

Run against the large scale database: ``python -m bench.explain OUTDIR``. Each request's
statements are captured with CaptureQueriesContext and every SELECT / UPDATE among them
(and the line upsert) is explained inside a transaction that is rolled back."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from omniman.directives import runner  # noqa: E402
from omniman.services.directive_outbox import enqueue_many  # noqa: E402

BIG_TABLES = ("omniman_session", "omniman_order", "omniman_orderitem", "omniman_directive")


def explain(sql: str) -> str:
    with transaction.atomic(), connection.cursor() as c:
        c.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in c.fetchall())
        transaction.set_rollback(True)
    return plan


def capture(fn: Any) -> list[str]:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return [q["sql"] for q in ctx.captured_queries]


def seq_scans(plan: str) -> list[str]:
    return [t for t in BIG_TABLES if re.search(rf"Seq Scan on {t}\b", plan)]


def main() -> None:
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    user = get_user_model().objects.get(username="bench")
    client = APIClient()
    client.force_authenticate(user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {user.auth_token.key}")
    key = "H-500"

    def walk(path: str, pages: int) -> str:
        for _ in range(pages):
            nxt = client.get(path).json()["next"]
            parts = urlsplit(nxt)
            path = parts.path + "?" + parts.query
        return path

    deep = walk("/api/orders/?page_size=100", 100)
    stream = client.get("/api/orders/stream/").json()
    after = stream.get("cursor", "")
    requests: dict[str, Any] = {
        "session_lock_modify": lambda: client.post(
            f"/api/sessions/{key}/modify/",
            {"channel_code": "pos", "ops": [{"op": "set_qty", "line_id": "L1", "qty": 2}]}, format="json"),
        "session_get": lambda: client.get(f"/api/sessions/{key}/?channel_code=pos"),
        "orders_page1": lambda: client.get("/api/orders/?page_size=100"),
        "orders_depth_10000": lambda: client.get(deep),
        "sessions_page1": lambda: client.get("/api/sessions/"),
        "orders_stream": lambda: client.get(f"/api/orders/stream/?after={after}"),
    }

    def claim() -> None:
        with transaction.atomic():
            row = enqueue_many([("bench.noop", {"run": "explain"})])[0]
            with CaptureQueriesContext(connection) as ctx:
                runner.claim(row.pk)
            claim.sql = [q["sql"] for q in ctx.captured_queries]  # type: ignore[attr-defined]
            transaction.set_rollback(True)

    summary: dict[str, Any] = {}
    captured: dict[str, list[str]] = {}
    for name, fn in requests.items():
        captured[name] = capture(fn)
    claim()
    captured["directive_claim"] = claim.sql  # type: ignore[attr-defined]
    for name, statements in captured.items():
        parts = []
        scans: list[str] = []
        for sql in statements:
            head = sql.lstrip().split(" ", 1)[0].upper()
            if head not in ("SELECT", "UPDATE", "WITH", "INSERT"):
                parts.append(f"-- {sql}\n(not explained)\n")
                continue
            plan = explain(sql)
            scans += seq_scans(plan)
            parts.append(f"-- {sql}\n{plan}\n")
        (outdir / f"{name}.txt").write_text("\n".join(parts))
        summary[name] = {"statements": len(statements), "seq_scans_on_big_tables": sorted(set(scans))}
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


if __name__ == "__main__":
    main()
