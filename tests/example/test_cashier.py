"""The POS page's cashier cookie and offline modes, over plain HTTP (no browser)."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.parse
import urllib.request

from tests.example.harness import Example


def _csrf(jar: http.cookiejar.CookieJar) -> str:
    return next(c.value for c in jar if c.name == "csrftoken")


def _cookies(jar: http.cookiejar.CookieJar) -> dict[str, str]:
    return {c.name: c.value for c in jar}


def test_the_cashier_cookie_follows_the_sign_in_and_the_page_says_how_each_channel_sells_offline(
    example: Example,
) -> None:
    """Signing in sets ``cafe_user`` (readable by the page's scripts), signing out clears
    it; a token client gets no such cookie; the POS page names each channel's offline
    mode: pos exact, shop an estimate, web online only."""
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    browser.open(example.url + "/login/?next=/pos/", timeout=30).read()
    assert "cafe_user" not in _cookies(jar)
    form = {"username": "demo", "password": "demo", "csrfmiddlewaretoken": _csrf(jar), "next": "/pos/"}
    page = browser.open(
        urllib.request.Request(
            example.url + "/login/?next=/pos/", data=urllib.parse.urlencode(form).encode(),
            headers={"Referer": example.url + "/login/"},
        ),
        timeout=30,
    ).read().decode()
    assert _cookies(jar)["cafe_user"] == "demo"
    assert not next(c for c in jar if c.name == "cafe_user").has_nonstandard_attr("HttpOnly")
    found = re.search(r'<script id="offline-modes" type="application/json">(.*?)</script>', page, re.S)
    assert found, page[:2000]
    assert json.loads(found.group(1)) == {"pos": "exact", "web": "online", "shop": "estimate", "ifood": "exact"}

    token = example.manage("omniman_token", "demo").stdout.strip()
    health = example.request("GET", "/api/channels/", token=token)
    assert health.status == 200
    assert "cafe_user" not in health.headers.get("Set-Cookie", "")

    browser.open(
        urllib.request.Request(
            example.url + "/logout/", data=urllib.parse.urlencode({"csrfmiddlewaretoken": _csrf(jar)}).encode(),
            headers={"Referer": example.url + "/pos/"},
        ),
        timeout=30,
    ).read()
    assert "cafe_user" not in _cookies(jar)
