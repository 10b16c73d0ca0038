"""``omniman_seed`` and ``omniman_token``, run as a person runs them."""

from __future__ import annotations

import json
import re

import pytest

from tests.example.harness import Example

CATALOG = {
    "COFFEE": (500, True),
    "ESPRESSO": (450, True),
    "CAPPUCCINO": (650, True),
    "CROISSANT": (750, True),
    "CAKE": (1200, True),
    "WATER": (300, True),
    "SOLDOUT": (900, False),
}


def products(example: Example) -> dict[str, tuple[int, bool]]:
    rows = json.loads(example.manage("dumpdata", "cafe.product").stdout)
    return {r["fields"]["sku"]: (r["fields"]["price_q"], r["fields"]["in_stock"]) for r in rows}


def channel_codes(example: Example, token: str) -> set[str]:
    resp = example.request("GET", "/api/channels/", token=token)
    assert resp.status == 200
    return {c["code"] for c in resp.body["results"]}


def test_seed_creates_the_catalog_and_is_idempotent(example: Example) -> None:
    """Seeding twice leaves exactly SPEC's catalog, three channels and one demo user."""
    assert products(example) == CATALOG
    out = example.manage("omniman_seed").stdout
    assert "Seeded 7 products" in out
    assert products(example) == CATALOG
    channels = json.loads(example.manage("dumpdata", "omniman.channel").stdout)
    assert sorted(c["fields"]["code"] for c in channels) == ["ifood", "pos", "web"]
    users = json.loads(example.manage("dumpdata", "auth.user").stdout)
    assert [u["fields"]["username"] for u in users].count("demo") == 1


def test_seed_repairs_a_changed_product(example: Example) -> None:
    """A product edited in the admin gets its demo price back on the next seed."""
    example.manage("shell", "-c", "from cafe.models import Product; Product.objects.filter(sku='CAKE').update(price_q=1)")
    assert products(example)["CAKE"][0] == 1
    example.manage("omniman_seed")
    assert products(example)["CAKE"] == (1200, True)


def test_demo_user_sees_every_channel_and_is_an_operator(example: Example) -> None:
    token = example.manage("omniman_token", "demo", "--operator").stdout.strip()
    assert channel_codes(example, token) == {"pos", "web", "ifood"}
    assert example.request("GET", "/api/directives/", token=token).status == 200


def test_token_prints_only_the_token_and_the_same_one_on_rerun(example: Example) -> None:
    first = example.manage("omniman_token", "terminal-1", "--channels", "pos")
    assert re.fullmatch(r"[0-9a-f]{40}\n", first.stdout)
    again = example.manage("omniman_token", "terminal-1", "--channels", "pos")
    assert again.stdout == first.stdout


def test_token_grants_exactly_the_channels_given(example: Example) -> None:
    """--channels narrows what the user sees: another channel's session is a 404."""
    token = example.manage("omniman_token", "till", "--channels", "pos,ifood").stdout.strip()
    assert channel_codes(example, token) == {"pos", "ifood"}
    example.manage("omniman_token", "till", "--channels", "pos")
    assert channel_codes(example, token) == {"pos"}
    created = example.request("POST", "/api/sessions/", {"channel_code": "pos", "session_key": "TILL-1"}, token=token)
    assert created.status == 201
    other = example.request("GET", "/api/sessions/TILL-1/?channel_code=ifood", token=token)
    assert other.status == 404
    # Without --channels: every channel.
    example.manage("omniman_token", "till")
    assert channel_codes(example, token) == {"pos", "web", "ifood"}


def test_operator_flag_opens_the_directives(example: Example) -> None:
    token = example.manage("omniman_token", "ops-person", "--channels", "pos").stdout.strip()
    assert example.request("GET", "/api/directives/", token=token).status == 403
    example.manage("omniman_token", "ops-person", "--channels", "pos", "--operator")
    assert example.request("GET", "/api/directives/", token=token).status == 200
    example.manage("omniman_token", "ops-person", "--channels", "pos")
    assert example.request("GET", "/api/directives/", token=token).status == 403


def test_token_refuses_an_unknown_channel(example: Example) -> None:
    result = example.manage("omniman_token", "someone", "--channels", "pos,nope", check=False)
    assert result.returncode != 0
    assert "Unknown channels: nope" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("path", ["/", "/login/", "/api/health/", "/api/schema/"])
def test_public_pages_answer(example: Example, path: str) -> None:
    assert example.request("GET", path).status == 200
