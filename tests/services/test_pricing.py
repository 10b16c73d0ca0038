"""Line pricing through the services: options, adjustments and custom ops stored,
committed and kept on the order (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from omniman.exceptions import HandlerError, ValidationError
from omniman.models import Order, Session
from omniman.registry import define_op, registry
from omniman.services import commit_session, create_session, get_session, modify_session
from omniman.testing import make_channel
from tests.app.pricing import registered

pytestmark = pytest.mark.django_db

CAPPUCCINO = {"op": "add_line", "sku": "COFFEE", "qty": 2, "options": [{"code": "OAT"}, {"code": "SHOT", "qty": 2}]}


@pytest.fixture
def shop(db):
    with registered():
        yield make_channel("shop", pricing_policy="internal", modifiers=["tests.coupon", "tests.tax"])


def test_options_and_adjustments_are_stored_and_kept_by_the_order(shop):
    create_session(channel="shop", session_key="S")
    modify_session(channel="shop", session_key="S", ops=[CAPPUCCINO, {"op": "apply_coupon", "code": "WELCOME10"}])
    session = get_session("shop", "S")
    (line,) = session.items
    assert line["options"] == [{"code": "OAT", "qty": 1, "unit_price_q": 150},
                               {"code": "SHOT", "qty": 2, "unit_price_q": 200}]
    assert line["line_total_q"] == 2 * (500 + 150 + 400)  # 2100
    # 10 % off 2100 = −210; tax 10 % of 1890 = 189.
    assert session.pricing == {
        "subtotal_q": 2100, "discounts_q": -210, "taxes_q": 189, "fees_q": 0, "total_q": 2079,
        "adjustments": [
            {"code": "WELCOME10", "label": "Coupon WELCOME10", "kind": "discount", "amount_q": -210},
            {"code": "tax", "label": "Tax 10%", "kind": "tax", "amount_q": 189},
        ],
    }
    assert session.total_q == 2079 and session.data == {"coupon": "WELCOME10"} and session.rev == 1
    result = commit_session(channel="shop", session_key="S")
    order = Order.objects.get(ref=result.order_ref)
    (item,) = order.items.all()
    assert (item.options, item.adjustments) == (line["options"], [])
    assert order.pricing == session.pricing and order.total_q == 2079


def test_a_refused_custom_op_changes_nothing(shop):
    create_session(channel="shop", session_key="S")
    with pytest.raises(ValidationError) as exc:
        modify_session(channel="shop", session_key="S", ops=[CAPPUCCINO, {"op": "apply_coupon", "code": "NOPE"}])
    assert [(e.pointer, e.code) for e in exc.value.errors] == [("/ops/1/code", "unknown_coupon")]
    session = get_session("shop", "S")
    assert (session.rev, session.items, session.total_q) == (0, [], 0)


def test_a_wrong_option_is_refused_at_its_pointer(shop):
    create_session(channel="shop", session_key="S")
    with pytest.raises(ValidationError) as exc:
        modify_session(channel="shop", session_key="S", ops=[
            {"op": "add_line", "sku": "COFFEE", "qty": 1, "options": [{"code": "OAT"}, {"code": "SOY"}]}])
    assert [(e.pointer, e.code) for e in exc.value.errors] == [("/ops/0/options/1/code", "max_options")]


def test_set_options_prices_from_the_line_sku(shop):
    create_session(channel="shop", session_key="S")
    modify_session(channel="shop", session_key="S", ops=[{"op": "add_line", "sku": "COFFEE", "qty": 1}])
    session = modify_session(channel="shop", session_key="S", ops=[
        {"op": "set_options", "line_id": "L1", "options": [{"code": "SOY"}]}])
    assert session.subtotal_q == 650 and get_session("shop", "S").items[0]["options"][0]["unit_price_q"] == 150


def test_line_adjustments_are_stored_on_the_line_and_the_item(db):
    with registered():
        make_channel("promo", modifiers=["tests.line_promo"], tax_inclusive=True)
        create_session(channel="promo", session_key="S")
        modify_session(channel="promo", session_key="S", ops=[
            {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500},
            {"op": "add_line", "sku": "CAKE", "qty": 1, "unit_price_q": 900}])
        session = get_session("promo", "S")
        assert [line["adjustments"] for line in session.items] == [
            [{"code": "promo", "label": "Coffee promo", "kind": "discount", "amount_q": -50}], []]
        assert (session.pricing["discounts_q"], session.pricing["adjustments"], session.total_q) == (-50, [], 1350)
        # Removing the coffee takes its adjustment with it.
        session = modify_session(channel="promo", session_key="S", ops=[{"op": "remove_line", "line_id": "L1"}])
        assert (session.pricing["discounts_q"], session.total_q) == (0, 900)
        modify_session(channel="promo", session_key="S", ops=[
            {"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}])
        order = Order.objects.get(ref=commit_session(channel="promo", session_key="S").order_ref)
        assert [item.adjustments for item in order.items.all()] == [
            [], [{"code": "promo", "label": "Coffee promo", "kind": "discount", "amount_q": -50}]]


def test_tax_inclusive_must_be_a_boolean(db):
    with pytest.raises(DjangoValidationError, match="tax_inclusive"):
        make_channel("bad", tax_inclusive="yes")


def test_a_custom_op_may_not_take_a_built_in_name():
    with pytest.raises(HandlerError, match="clashes with the built-in op"):
        registry.register_op("add_line", lambda view, fields: [])
    with pytest.raises(HandlerError, match="clashes"):
        registry.op("set_options")(lambda view, fields: [])
    assert "add_line" not in registry.custom_ops


CLASHING = define_op("merge_lines", lambda view, fields: [])


@override_settings(OMNIMAN={"OPS": ["tests.services.test_pricing.CLASHING"]})
def test_a_clashing_op_in_settings_stops_the_start():
    with pytest.raises(SystemCheckError, match=r"omniman\.E005"):
        call_command("check")


def test_the_session_row_keeps_the_kinds_of_pricing(shop):
    session = create_session(channel="shop", session_key="S")
    assert Session.objects.get(pk=session.pk).pricing == {
        "subtotal_q": 0, "discounts_q": 0, "taxes_q": 0, "fees_q": 0, "total_q": 0, "adjustments": []}
