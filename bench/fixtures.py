"""Set up a bench database: ``python -m bench.fixtures --sessions N --commit M [--bulk N]``.

Migrates, creates the channel ``pos``, the user ``bench`` with a token and a grant,
``N`` open one-line sessions ``H-i``, ``M`` sessions ``CK-i`` and ``CB-i`` to commit,
and, with ``--bulk``, ``N`` more sessions and orders loaded by SQL (generate_series).
Prints ``{"token": ...}``."""

from __future__ import annotations

import argparse
import os
import sys

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402

from omniman.models import ChannelGrant, Session  # noqa: E402
from omniman.testing import make_channel  # noqa: E402

LINE = {"line_id": "L1", "sku": "COFFEE", "qty": "1", "unit_price_q": 500, "line_total_q": 500, "meta": {}}


def sessions(prefix: str, count: int) -> None:
    ch = make_channel("pos")
    now = timezone.now()
    Session.objects.bulk_create([
        Session(channel=ch, session_key=f"{prefix}-{i}", items=[LINE], total_q=500, next_line=2, rev=1,
                version=1, pricing={"subtotal_q": 500, "adjustments": [], "total_q": 500},
                expires_at=now + timezone.timedelta(days=2))
        for i in range(count)
    ], batch_size=1000)


def bulk(n: int) -> None:
    """``n`` sessions, ``n`` committed orders with one item each and ``n`` finished
    directives, by SQL."""
    ch = make_channel("pos")
    line = orjson.dumps([LINE]).decode()
    pricing = '{"subtotal_q": 500, "adjustments": [], "total_q": 500}'
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO omniman_session (channel_id, session_key, state, rev, version, items, data, pricing,"
            " total_q, checks, issues, next_line, handle_type, handle_ref, order_ref, created_at, updated_at,"
            " expires_at) SELECT %s, 'B-' || g, 'open', 1, 1, %s::jsonb, '{}'::jsonb, %s::jsonb, 500,"
            " '{}'::jsonb, '[]'::jsonb, 2, '', '', '', now() - (%s - g) * interval '1 second',"
            " now(), now() + interval '2 days' FROM generate_series(1, %s) g",
            [ch.pk, line, pricing, n, n],
        )
        c.execute(
            "INSERT INTO omniman_order (ref, channel_id, session_key, handle_type, handle_ref, data, pricing,"
            " total_q, currency, external_ref, status, version, stream_seq, created_at, updated_at)"
            " SELECT 'BULK-' || g, %s, 'OB-' || g, '', '', '{}'::jsonb, %s::jsonb, 500, 'BRL', '', 'new', 0,"
            " g, now() - (%s - g) * interval '1 second', now() FROM generate_series(1, %s) g",
            [ch.pk, pricing, n, n],
        )
        c.execute(
            "INSERT INTO omniman_orderitem (order_id, position, line_id, sku, qty, unit_price_q, line_total_q,"
            " meta) SELECT id, 0, 'L1', 'COFFEE', 1, 500, 500, '{}'::jsonb FROM omniman_order"
            " WHERE ref LIKE 'BULK-%%'"
        )
        c.execute(
            "INSERT INTO omniman_directive (topic, payload, status, attempts, max_attempts, available_at,"
            " last_error, created_at, updated_at) SELECT 'bench.noop', '{}'::jsonb, 'done', 1, 5,"
            " now() - (%s - g) * interval '1 second', '', now(), now() FROM generate_series(1, %s) g",
            [n, n],
        )
    # Vacuumed and frozen now, so that autovacuum does not wake up during the measurement.
    with connection.cursor() as c:
        for table in ("omniman_session", "omniman_order", "omniman_orderitem", "omniman_directive"):
            c.execute(f"VACUUM (FREEZE, ANALYZE) {table}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--commit", type=int, default=0)
    parser.add_argument("--bulk", type=int, default=0)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    ch = make_channel("pos")
    user, _ = get_user_model().objects.get_or_create(username="bench")
    ChannelGrant.objects.get_or_create(user=user, channel=ch)
    token, _ = Token.objects.get_or_create(user=user)
    if args.bulk:
        bulk(args.bulk)
    sessions("H", args.sessions)
    if args.commit:
        sessions("CK", args.commit)
        sessions("CB", args.commit)
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")
    sys.stdout.write(orjson.dumps({"token": token.key}).decode() + "\n")


if __name__ == "__main__":
    main()
