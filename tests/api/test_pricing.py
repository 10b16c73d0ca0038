"""Line pricing over HTTP: options, adjustments and a custom op."""

from __future__ import annotations

import orjson
import pytest

from omniman.models import ChannelGrant
from omniman.testing import make_channel
from tests.app.pricing import registered

from .conftest import data, open_session, problem

pytestmark = pytest.mark.django_db


@pytest.fixture
def shop(user):
    with registered():
        channel = make_channel("shop", pricing_policy="internal", modifiers=["tests.coupon", "tests.tax"])
        ChannelGrant.objects.create(user=user, channel=channel)
        yield channel


def modify(api, ops, key="S"):
    return api.post_json(f"/api/sessions/{key}/modify/", {"channel_code": "shop", "ops": ops})


def test_a_cappuccino_with_oat_milk_two_shots_and_a_coupon(api, shop):
    open_session(api, channel="shop", key="S")
    body = data(modify(api, [
        {"op": "add_line", "sku": "COFFEE", "qty": 1, "options": [{"code": "OAT"}, {"code": "SHOT", "qty": 2}]},
        {"op": "apply_coupon", "code": "WELCOME10"},
    ]))
    (line,) = body["items"]
    assert line["options"] == [{"code": "OAT", "qty": 1, "unit_price_q": 150},
                               {"code": "SHOT", "qty": 2, "unit_price_q": 200}]
    assert (line["line_total_q"], line["adjustments"]) == (1050, [])
    # −round-half-even(105.0) = −105; tax round-half-even(94.5) = 94.
    assert {k: v for k, v in body["pricing"].items() if k != "adjustments"} == {
        "subtotal_q": 1050, "discounts_q": -105, "taxes_q": 94, "fees_q": 0, "total_q": 1039}
    assert [a["kind"] for a in body["pricing"]["adjustments"]] == ["discount", "tax"]
    assert body["total_q"] == 1039 and body["rev"] == 1
    commit = api.post_json("/api/sessions/S/commit/", {"channel_code": "shop"})
    assert commit.status_code == 201 and data(commit)["total_q"] == 1039
    order = data(api.get(f"/api/orders/{data(commit)['order_ref']}/"))
    assert order["items"][0]["options"] == line["options"] and order["pricing"] == body["pricing"]


@pytest.mark.parametrize(("op", "pointer", "code"), [
    ({"op": "apply_coupon", "code": "NOPE"}, "/ops/0/code", "unknown_coupon"),
    ({"op": "apply_coupon"}, "/ops/0/code", "required"),
    ({"op": "apply_coupon", "code": 10}, "/ops/0/code", "invalid_type"),
    ({"op": "add_line", "sku": "COFFEE", "qty": 1, "options": [{"code": "SHOT", "qty": 3}]},
     "/ops/0/options/0/qty", "max_options"),
    ({"op": "add_line", "sku": "CAKE", "qty": 1, "options": [{"code": "OAT"}]}, "/ops/0/options/0/code",
     "unknown_option"),
])
def test_wrong_pricing_input_is_a_validation_error_at_its_pointer(api, shop, op, pointer, code):
    open_session(api, channel="shop", key="S")
    body = problem(modify(api, [op]), 400, "validation_error")
    assert [(e["pointer"], e["code"]) for e in body["errors"]] == [(pointer, code)]


def test_the_unknown_op_error_and_the_schema_list_the_custom_op(api, anon, shop):
    open_session(api, channel="shop", key="S")
    body = problem(modify(api, [{"op": "nope"}]), 400, "validation_error")
    assert "apply_coupon" in body["errors"][0]["detail"] and "set_options" in body["errors"][0]["detail"]
    schema = orjson.loads(anon.get("/api/schema/", HTTP_ACCEPT="application/json").content)
    op = schema["components"]["schemas"]["OpApplyCoupon"]
    assert op["properties"]["op"] == {"type": "string", "enum": ["apply_coupon"]}
    assert op["required"] == ["op", "code"] and op["additionalProperties"] is False
    mapping = schema["components"]["schemas"]["OpInRequest"]["discriminator"]["mapping"]
    assert mapping["apply_coupon"] == "#/components/schemas/OpApplyCoupon"
    assert schema["components"]["schemas"]["OpAddLine"]["properties"]["options"]["maxItems"] == 20
