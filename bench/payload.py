"""The payload scenario: what the API's answers weigh, plain and gzipped, and what rendering costs.

    python -m bench.payload [--quick]     # DJANGO_SETTINGS_MODULE=bench.settings, a migrated database

In process with Django's test client (SQLite in the bench): 100 committed sessions of
two lines and their 100 orders. It measures a 100-row page of ``sessions/`` and of
``orders/`` and the order stream's latest 50, plain and through
``omniman_api.middleware.GZipMiddleware`` (the largest of five runs, as the random
padding against BREACH varies the size), the time to gzip one ``sessions/`` page, and
the time to render a 500-line session with omniman's ``ORJSONRenderer`` against DRF's
``JSONRenderer`` (interleaved, min and median). Prints one JSON line."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from rest_framework.authtoken.models import Token  # noqa: E402
from rest_framework.renderers import JSONRenderer  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from omniman.models import ChannelGrant  # noqa: E402
from omniman.services import commit_session, create_session, modify_session  # noqa: E402
from omniman.testing import add_line_op, make_channel  # noqa: E402
from omniman_api.middleware import GZipMiddleware  # noqa: E402
from omniman_api.renderers import ORJSONRenderer  # noqa: E402

GZIP = "omniman_api.middleware.GZipMiddleware"
PAGES = {
    "sessions_page_100": "/api/sessions/?channel_code=pos&page_size=100",
    "orders_page_100": "/api/orders/?channel_code=pos&page_size=100",
    "order_stream_latest_50": "/api/orders/stream/?channel_code=pos",
}


def setup() -> APIClient:
    user = get_user_model().objects.create_user("payload")
    for code in ("pos", "big"):  # the 500-line session in a channel of its own, off the pages
        ChannelGrant.objects.create(user=user, channel=make_channel(code))
    for i in range(100):
        key = f"SESS-{i:03d}"
        create_session(channel="pos", session_key=key, handle_type="table", handle_ref=str(i))
        modify_session(channel="pos", session_key=key, ops=[add_line_op(sku="COFFEE"), add_line_op(sku="CAKE")])
        commit_session(channel="pos", session_key=key, idempotency_key=f"payload-{i}")
    create_session(channel="big", session_key="BIG", handle_type="table", handle_ref="big")
    for _ in range(5):
        modify_session(channel="big", session_key="BIG", ops=[add_line_op(sku=f"SKU-{n}") for n in range(100)])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def sizes(client: APIClient) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with override_settings(MIDDLEWARE=[GZIP, *settings.MIDDLEWARE]):
        for name, url in PAGES.items():
            plain = client.get(url, HTTP_ACCEPT_ENCODING="identity")
            assert plain.status_code == 200 and "Content-Encoding" not in plain, (url, plain.status_code)
            packed = []
            for _ in range(5):
                r = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
                assert r["Content-Encoding"] == "gzip", url
                packed.append(len(r.content))
            rows = orjson.loads(plain.content)
            count = len(rows["results"] if isinstance(rows, dict) and "results" in rows else rows)
            out[name] = {"url": url, "rows": count, "plain_bytes": len(plain.content), "gzip_bytes": max(packed),
                         "ratio": round(max(packed) / len(plain.content), 4)}
    return out


def gzip_time(client: APIClient, repeats: int) -> dict[str, Any]:
    """Microseconds for the middleware to compress one 100-row ``sessions/`` page."""
    body = client.get(PAGES["sessions_page_100"]).content
    middleware = GZipMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING="gzip")
    times = []
    for _ in range(repeats):
        response = HttpResponse(body, content_type="application/json")
        t0 = time.perf_counter()
        middleware.process_response(request, response)
        times.append(time.perf_counter() - t0)
    return {"bytes": len(body), "us": {"min": min(times) * 1e6, "median": statistics.median(times) * 1e6},
            "repeats": repeats}


def render_time(client: APIClient, repeats: int) -> dict[str, Any]:
    """One 500-line session's serialized data rendered by each renderer, interleaved."""
    data = client.get("/api/sessions/BIG/?channel_code=big").data
    assert len(data["items"]) == 500, len(data["items"])
    renderers = {"orjson": ORJSONRenderer(), "drf_json": JSONRenderer()}
    times: dict[str, list[float]] = {k: [] for k in renderers}
    for n in range(repeats):
        for name in (list(renderers) if n % 2 else list(reversed(renderers))):
            t0 = time.perf_counter()
            renderers[name].render(data)
            times[name].append(time.perf_counter() - t0)
    us = {k: {"min": min(v) * 1e6, "median": statistics.median(v) * 1e6} for k, v in times.items()}
    return {"lines": 500, "repeats": repeats, "us": us,
            "ratio": {"min": us["drf_json"]["min"] / us["orjson"]["min"],
                      "median": us["drf_json"]["median"] / us["orjson"]["median"]}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    client = setup()
    repeats = 200 if args.quick else 1000
    out = {
        "setup": "Django test client, SQLite, 100 committed sessions of two lines and their 100 orders",
        "sizes": sizes(client),
        "gzip_one_page": gzip_time(client, repeats),
        "render_500_lines": render_time(client, repeats),
    }
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


if __name__ == "__main__":
    main()
