"""Fill the minimal DRF project's database: ``python -m bench.drfmin.setup --sessions N``.

Creates the tables (``migrate --run-syncdb``), the user ``bench`` with a token and
``N`` sessions ``H-i`` on channel ``pos`` with one COFFEE line each; prints ``{"token": ...}``."""

from __future__ import annotations

import argparse
import os
import sys

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.drfmin.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from bench.drfmin.models import Cart  # noqa: E402

LINE = {"line_id": "L1", "sku": "COFFEE", "qty": 1, "unit_price_q": 500, "line_total_q": 500}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    args = parser.parse_args()
    call_command("migrate", verbosity=0, run_syncdb=True)
    user, _ = get_user_model().objects.get_or_create(username="bench")
    token, _ = Token.objects.get_or_create(user=user)
    Cart.objects.bulk_create([Cart(channel="pos", key=f"H-{i}", lines=[LINE], next_line=2, total_q=500)
                              for i in range(args.sessions)], batch_size=1000)
    with connection.cursor() as c:
        c.execute("ANALYZE")
    sys.stdout.write(orjson.dumps({"token": token.key, "statements": statements(token.key, args.sessions)}).decode()
                     + "\n")


def statements(token: str, count: int) -> dict[str, int]:
    """SQL statements of each measured request, counted as ``bench.example_fixtures`` does."""
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    last = f"H-{count - 1}"
    calls = {
        "add_line": lambda: client.post(f"/min/sessions/{last}/modify/", content_type="application/json", data={
            "channel_code": "pos", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]}),
        "set_qty": lambda: client.post(f"/min/sessions/{last}/modify/", content_type="application/json", data={
            "channel_code": "pos", "ops": [{"op": "set_qty", "line_id": "L1", "qty": 2}]}),
        "get_304": lambda: client.get(f"/min/sessions/H-{count - 2}/?channel_code=pos", HTTP_IF_NONE_MATCH=etag),
        "get": lambda: client.get(f"/min/sessions/{last}/?channel_code=pos"),
    }
    etag = client.get(f"/min/sessions/H-{count - 2}/?channel_code=pos").headers["ETag"]
    out = {}
    for name, call in calls.items():
        with CaptureQueriesContext(connection) as ctx:
            resp = call()
        if resp.status_code != (304 if name == "get_304" else 200):
            raise RuntimeError(f"{name}: {resp.status_code} {resp.content[:300]!r}")
        out[name] = len(ctx.captured_queries)
    return out


if __name__ == "__main__":
    main()
