"""Set up a bench database: ``python -m bench.fixtures --sessions N --commit M [--bulk N]``.

Migrates, creates the channel ``pos``, the user ``bench`` with a token and a grant,
``N`` open one-line sessions ``H-i``, ``M`` sessions ``CK-i`` and ``CB-i`` to commit,
and, with ``--bulk``, ``N`` more sessions and orders loaded by SQL (generate_series);
with ``--channels C --per-channel K``, channels ``c0`` to ``c{C-1}`` and ``solo``,
each with ``K`` sessions ``K-i`` to commit.
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

from omniman.models import ChannelGrant, Session, SessionLine  # noqa: E402
from omniman.testing import make_channel  # noqa: E402

LINE = {"line_id": "L1", "sku": "COFFEE", "qty": "1", "unit_price_q": 500, "line_total_q": 500, "meta": {}}


def sessions(prefix: str, count: int, items: list[dict] | None = None, channel: str = "pos") -> list[Session]:
    """``count`` open sessions ``{prefix}-i`` of ``channel`` with ``items`` (one COFFEE
    line by default)."""
    ch = make_channel(channel)
    items = items or [LINE]
    total = sum(line["line_total_q"] for line in items)
    now = timezone.now()
    rows = Session.objects.bulk_create([
        Session(channel=ch, session_key=f"{prefix}-{i}", total_q=total, subtotal_q=total,
                line_count=len(items), next_line=len(items) + 1, next_position=len(items), rev=1, version=1,
                pricing={"subtotal_q": total, "adjustments": [], "total_q": total},
                expires_at=now + timezone.timedelta(days=2))
        for i in range(count)
    ], batch_size=1000)
    SessionLine.objects.bulk_create([
        SessionLine(session=s, position=pos, line_id=line["line_id"], sku=line["sku"], qty=line["qty"],
                    unit_price_q=line["unit_price_q"], line_total_q=line["line_total_q"], meta=line["meta"])
        for s in rows for pos, line in enumerate(items)
    ], batch_size=2000)
    return rows


def bulk(n: int) -> None:
    """``n`` sessions, ``n`` committed orders with one item each and ``n`` finished
    directives, by SQL."""
    ch = make_channel("pos")
    pricing = '{"subtotal_q": 500, "adjustments": [], "total_q": 500}'
    with connection.cursor() as c:
        c.execute(
            "INSERT INTO omniman_session (channel_id, session_key, state, rev, version, data, pricing,"
            " line_count, subtotal_q, total_q, checks, issues, next_line, next_position, handle_type,"
            " handle_ref, order_ref, created_at, updated_at, expires_at)"
            " SELECT %s, 'B-' || g, 'open', 1, 1, '{}'::jsonb, %s::jsonb, 1, 500, 500,"
            " '{}'::jsonb, '[]'::jsonb, 2, 1, '', '', '', now() - (%s - g) * interval '1 second',"
            " now(), now() + interval '2 days' FROM generate_series(1, %s) g",
            [ch.pk, pricing, n, n],
        )
        c.execute(
            "INSERT INTO omniman_sessionline (session_id, line_id, position, sku, qty, unit_price_q,"
            " line_total_q, meta) SELECT id, 'L1', 0, 'COFFEE', '1', 500, 500, '{}'::jsonb"
            " FROM omniman_session WHERE session_key LIKE 'B-%%'"
        )
        c.execute(
            "INSERT INTO omniman_order (ref, channel_id, session_key, handle_type, handle_ref, data, pricing,"
            " total_q, currency, external_ref, status, version, channel_seq, created_at, updated_at)"
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
        for table in ("omniman_session", "omniman_sessionline", "omniman_order", "omniman_orderitem",
                      "omniman_directive"):
            c.execute(f"VACUUM (FREEZE, ANALYZE) {table}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--commit", type=int, default=0)
    parser.add_argument("--bulk", type=int, default=0)
    parser.add_argument("--channels", type=int, default=0,
                        help="channels c0, c1... and one more, solo, granted to bench")
    parser.add_argument("--per-channel", type=int, default=0,
                        help="sessions K-i to commit in each of the --channels channels, and in solo")
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
    for code in ([f"c{n}" for n in range(args.channels)] + ["solo"]) if args.channels else []:
        ChannelGrant.objects.get_or_create(user=user, channel=make_channel(code))
        sessions("K", args.per_channel, channel=code)
    if connection.vendor == "postgresql":
        with connection.cursor() as c:
            c.execute("ANALYZE")
    sys.stdout.write(orjson.dumps({"token": token.key}).decode() + "\n")


if __name__ == "__main__":
    main()
