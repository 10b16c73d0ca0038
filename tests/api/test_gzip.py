"""Large lists go out gzip-compressed when the client accepts it (the example project's
``omniman_api.middleware.GZipMiddleware``), while answers with a strong ETag stay as
they are so that ``If-Match`` keeps working."""

from __future__ import annotations

import gzip

import orjson
import pytest
from django.conf import settings
from django.test import override_settings

from omniman.services import create_session, modify_session
from omniman.testing import add_line_op

from .conftest import add_coffee, data, open_session

pytestmark = pytest.mark.django_db

GZIP = "omniman_api.middleware.GZipMiddleware"
LIST = "/api/sessions/?channel_code=pos&page_size=100"
DETAIL = "/api/sessions/SESS-001/?channel_code=pos"


@pytest.fixture(autouse=True)
def gzip_on():
    with override_settings(MIDDLEWARE=[GZIP, *settings.MIDDLEWARE]):
        yield


@pytest.fixture
def hundred_sessions(pos):
    for i in range(100):
        key = f"SESS-{i:03d}"
        create_session(channel="pos", session_key=key, handle_type="table", handle_ref=str(i))
        modify_session(channel="pos", session_key=key, ops=[add_line_op(sku="COFFEE"), add_line_op(sku="CAKE")])


def test_a_large_list_is_compressed(api, hundred_sessions):
    plain = api.get(LIST)
    packed = api.get(LIST, HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    assert plain.status_code == packed.status_code == 200
    assert "Content-Encoding" not in plain
    assert packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"]
    assert packed["Content-Length"] == str(len(packed.content))
    body = gzip.decompress(packed.content)
    assert orjson.loads(body) == data(plain)
    assert len(data(plain)["results"]) == 100
    # 100 sessions of two lines: about 59 KB of JSON in about 4 KB (see docs/guide/http-api.rst).
    assert len(packed.content) < len(plain.content) / 8, (len(packed.content), len(plain.content))


def test_no_gzip_without_accept_encoding(api, hundred_sessions):
    response = api.get(LIST, HTTP_ACCEPT_ENCODING="identity")
    assert "Content-Encoding" not in response
    assert len(data(response)["results"]) == 100


def test_a_304_has_no_body(api):
    etag = open_session(api)["ETag"]
    response = api.get(DETAIL, HTTP_IF_NONE_MATCH=etag, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 304
    assert response.content == b""
    assert "Content-Encoding" not in response
    assert response["ETag"] == etag


def test_strong_etags_stay_strong_and_if_match_works(api):
    open_session(api)
    for _ in range(30):  # a session large enough for gzip to want it
        add_coffee(api)
    detail = api.get(DETAIL, HTTP_ACCEPT_ENCODING="gzip")
    assert detail.status_code == 200 and len(detail.content) > 1000
    assert "Content-Encoding" not in detail
    etag = detail["ETag"]
    assert etag.startswith('"')  # Django's GZipMiddleware would have made it W/"..."
    modify = api.post(
        "/api/sessions/SESS-001/modify/",
        orjson.dumps({"channel_code": "pos", "ops": [{"op": "merge_lines"}]}),
        content_type="application/json", HTTP_IF_MATCH=etag, HTTP_ACCEPT_ENCODING="gzip",
    )
    assert modify.status_code == 200, modify.content
    assert modify["ETag"].startswith('"') and "Content-Encoding" not in modify


def test_the_schema_is_compressed(anon):
    plain = anon.get("/api/schema/?format=json")
    packed = anon.get("/api/schema/?format=json", HTTP_ACCEPT_ENCODING="gzip")
    assert packed["Content-Encoding"] == "gzip"
    assert orjson.loads(gzip.decompress(packed.content)) == orjson.loads(plain.content)
