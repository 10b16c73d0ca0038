"""Sessions in the example project's database, made by the kernel once and copied:
``python -m bench.example_fixtures N TOKEN`` with the example's settings
(``DJANGO_SETTINGS_MODULE=config.settings``, ``example_project`` on the path), after
``migrate`` and ``omniman_seed``.

Makes ``N`` sessions ``H-i`` on ``pos`` with one COFFEE line (client-priced) and ``N``
sessions ``S-i`` on ``shop`` with one CAPPUCCINO line with oat milk and a shot
(priced by the catalog, the coupon and the tax). Every row is a copy of one the kernel
wrote, so each is exactly what a client's requests would have left. Prints the SQL
statements of each measured request as JSON."""

from __future__ import annotations

import sys
from typing import Any

import django
import orjson

django.setup()

from omniman.models import Session, SessionLine  # noqa: E402
from omniman.services import create_session, modify_session  # noqa: E402

TEMPLATES = {
    "pos": ("H", {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}),
    "shop": ("S", {"op": "add_line", "sku": "CAPPUCCINO", "qty": 1,
                   "options": [{"code": "OAT"}, {"code": "SHOT", "qty": 1}]}),
}


def fields(obj: Any) -> dict[str, Any]:
    return {f.attname: getattr(obj, f.attname) for f in type(obj)._meta.concrete_fields if not f.primary_key}


def copies(channel: str, prefix: str, op: dict, count: int) -> None:
    create_session(channel=channel, session_key=f"{prefix}-0")
    modify_session(channel=channel, session_key=f"{prefix}-0", ops=[op])
    template = Session.objects.get(channel__code=channel, session_key=f"{prefix}-0")
    lines = list(SessionLine.objects.filter(session=template))
    rows = Session.objects.bulk_create(
        [Session(**{**fields(template), "session_key": f"{prefix}-{i}"}) for i in range(1, count)],
        batch_size=1000)
    SessionLine.objects.bulk_create(
        [SessionLine(**{**fields(line), "session_id": row.pk}) for row in rows for line in lines],
        batch_size=2000)


def statements(token: str, count: int) -> dict[str, int]:
    """SQL statements of each measured request (Django's test client, the real token;
    BEGIN and COMMIT are not counted), on the last sessions so as not to move the others."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Token {token}")
    last = f"H-{count - 1}"
    calls = {
        "add_line": lambda: client.post(f"/api/sessions/{last}/modify/", content_type="application/json", data={
            "channel_code": "pos", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]}),
        "set_qty": lambda: client.post(f"/api/sessions/{last}/modify/", content_type="application/json", data={
            "channel_code": "pos", "ops": [{"op": "set_qty", "line_id": "L1", "qty": 2}]}),
        "get_304": lambda: client.get(f"/api/sessions/H-{count - 2}/?channel_code=pos", HTTP_IF_NONE_MATCH=etag),
        "get": lambda: client.get(f"/api/sessions/{last}/?channel_code=pos"),
        "shop_options": lambda: client.post(f"/api/sessions/S-{count - 1}/modify/", content_type="application/json",
                                            data={"channel_code": "shop", "ops": [TEMPLATES["shop"][1]]}),
    }
    etag = client.get(f"/api/sessions/H-{count - 2}/?channel_code=pos").headers["ETag"]
    out = {}
    for name, call in calls.items():
        with CaptureQueriesContext(connection) as ctx:
            resp = call()
        if resp.status_code != (304 if name == "get_304" else 200):
            raise RuntimeError(f"{name}: {resp.status_code} {resp.content[:300]!r}")
        out[name] = len(ctx.captured_queries)
    return out


def main() -> None:
    count, token = int(sys.argv[1]), sys.argv[2]
    for channel, (prefix, op) in TEMPLATES.items():
        copies(channel, prefix, op, count)
    from django.db import connection

    with connection.cursor() as c:
        c.execute("ANALYZE")
    sys.stdout.write(orjson.dumps({"statements": statements(token, count)}).decode() + "\n")


if __name__ == "__main__":
    main()
