"""``omniman_seed`` and ``omniman_token``, run as a person runs them."""

from __future__ import annotations

import json
import re

import pytest

from tests.example.harness import ROOT, Example

CATALOG = {
    "COFFEE": (500, True),
    "ESPRESSO": (450, True),
    "CAPPUCCINO": (650, True),
    "CROISSANT": (750, True),
    "CAKE": (1200, True),
    "WATER": (300, True),
    "SOLDOUT": (900, False),
}


STATE = """
import json
from django.contrib.auth.models import User
from cafe.models import Product
from omniman.models import Channel
print(json.dumps({
    "products": {p.sku: [p.price_q, p.in_stock] for p in Product.objects.all()},
    "channels": {c.code: c.config for c in Channel.objects.all()},
    "demo": list(User.objects.filter(username="demo").values_list("is_staff", flat=True)),
}))
"""


def state(example: Example) -> dict:
    return json.loads(example.manage("shell", "-v", "0", "-c", STATE).stdout)


def channel_codes(example: Example, token: str) -> set[str]:
    resp = example.request("GET", "/api/channels/", token=token)
    assert resp.status == 200
    return {c["code"] for c in resp.body["results"]}


def test_seed_is_idempotent_and_repairs_the_demo_data(example: Example) -> None:
    """Seeding again leaves exactly the demo catalog, four channels and one demo user,
    and puts back a demo price that was edited in the admin."""
    before = state(example)
    assert {sku: tuple(v) for sku, v in before["products"].items()} == CATALOG
    assert before["demo"] == [True]
    example.manage("shell", "-c", "from cafe.models import Product; Product.objects.filter(sku='CAKE').update(price_q=1)")
    assert "Seeded 7 products" in example.manage("omniman_seed").stdout
    assert state(example) == before


def test_seeded_channel_configs(example: Example) -> None:
    channels = state(example)["channels"]
    assert sorted(channels) == ["ifood", "pos", "shop", "web"]
    assert channels["web"]["pricing_policy"] == "internal"
    assert channels["web"]["require_if_match"] is True
    assert channels["web"]["checks"] == {"stock": "stock.hold"}
    assert channels["web"]["required_checks_on_commit"] == ["stock"]
    assert channels["web"]["post_commit_directives"] == ["payment.capture", "notification.order_committed"]
    assert channels["web"]["require_paid_for"] == ["completed"]
    assert channels["pos"]["pricing_policy"] == "external"
    assert channels["pos"]["initial_status"] == "new"
    assert channels["pos"]["order_flow"]["new"] == ["preparing", "cancelled"]
    assert channels["pos"]["order_flow"]["completed"] == []
    assert (channels["pos"]["ticket_numbers"], channels["pos"]["business_day_starts_at"]) == ("daily", "04:00")
    assert channels["ifood"]["external_ref_path"] == "external_ref"
    assert all("modifiers" not in c for code, c in channels.items() if code != "shop")
    assert channels["shop"]["pricing_policy"] == "internal"
    assert channels["shop"]["modifiers"] == ["cafe.coupon", "cafe.tax"]
    assert channels["shop"]["tax_inclusive"] is False


def test_demo_user_sees_every_channel_and_is_an_operator(example: Example) -> None:
    token = example.manage("omniman_token", "demo", "--operator").stdout.strip()
    assert channel_codes(example, token) == {"pos", "web", "shop", "ifood"}
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
    assert channel_codes(example, token) == {"pos", "web", "shop", "ifood"}


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


def test_pos_service_worker_is_served_under_the_pos_page(example: Example) -> None:
    """/pos/sw.js (the scope a worker controlling /pos/ needs) answers the static
    cafe/pos-sw.js as JavaScript, revalidated on each load, without a login."""
    answer = example.request("GET", "/pos/sw.js")
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert answer.headers["Cache-Control"] == "no-cache"
    assert answer.body == (ROOT / "example_project/cafe/static/cafe/pos-sw.js").read_text()
