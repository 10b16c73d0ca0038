"""Place one order on the ``web`` channel over HTTP, as a web shop's backend would:
create a session, add two lines, wait for the worker's stock check, commit.

    python example_project/prod/web_order.py

Reads ``PORT`` (default 8000) and ``TOKEN`` (from ``omniman_token``) from the
environment; only the standard library."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.request
import uuid

BASE = f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/api"
AUTH = {"Authorization": f"Token {os.environ['TOKEN']}", "Content-Type": "application/json"}


def call(method: str, path: str, body: object = None, **headers: str) -> tuple[dict, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(BASE + path, data, {**AUTH, **headers}, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response), response.headers["ETag"]


key = f"WEB-{uuid.uuid4().hex[:8].upper()}"
session, etag = call("POST", "/sessions/", {"channel_code": "web", "session_key": key})
# The web channel wants If-Match on every write, and prices from the catalog.
ops = [{"op": "add_line", "sku": "COFFEE", "qty": 2}, {"op": "add_line", "sku": "CROISSANT", "qty": 1}]
session, etag = call("POST", f"/sessions/{key}/modify/", {"channel_code": "web", "ops": ops}, **{"If-Match": etag})
print(f"session: rev {session['rev']}, total_q {session['total_q']}")

# A Celery worker runs the stock check (stock.hold) after the modify; commit waits for it.
deadline = time.monotonic() + 60
while (check := session["checks"].get("stock")) is None or check["rev"] != session["rev"]:
    if time.monotonic() > deadline:
        sys.exit("no stock check after 60 s: is a Celery worker running?")
    time.sleep(0.5)
    session, etag = call("GET", f"/sessions/{key}/?channel_code=web")
print(f"stock check: {'ok' if check['ok'] else 'failed'} for rev {check['rev']}")

order, _ = call("POST", f"/sessions/{key}/commit/", {"channel_code": "web"},
                **{"If-Match": etag, "Idempotency-Key": f"{key}-COMMIT"})
print(f"order {order['order_ref']} committed, total_q {order['total_q']}")
