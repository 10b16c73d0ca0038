"""Line pricing for the tests: a coupon op, a coupon and a tax modifier, a per-line
discount modifier, and a fixture-friendly way to register and forget them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from omniman.exceptions import OpRejected
from omniman.money import percent_q
from omniman.ops import Adjustment, OpView
from omniman.registry import define_op, registry

COUPONS = {"WELCOME10": "0.1"}


def apply_coupon(view: OpView, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Apply a coupon code to the session."""
    if fields["code"] not in COUPONS:
        raise OpRejected("unknown coupon.", field="code", code="unknown_coupon")
    return [{"op": "set_data", "path": "coupon", "value": fields["code"]}]


COUPON_OP = define_op("apply_coupon", apply_coupon, fields={"code": str})


def coupon(view: Mapping[str, Any]) -> Sequence[Adjustment]:
    code = view["data"].get("coupon")
    if code not in COUPONS:
        return []
    return [Adjustment(code, f"Coupon {code}", -percent_q(view["subtotal_q"], COUPONS[code]), kind="discount")]


def tax(view: Mapping[str, Any]) -> Sequence[Adjustment]:
    return [Adjustment("tax", "Tax 10%", percent_q(view["subtotal_q"] + view["discounts_q"], "0.1"), kind="tax")]


def line_promo(view: Mapping[str, Any]) -> Sequence[Adjustment]:
    """50 off every COFFEE line: a line adjustment."""
    return [Adjustment("promo", "Coffee promo", -50, kind="discount", line_id=line["line_id"])
            for line in view["items"] if line["sku"] == "COFFEE"]


@contextmanager
def registered() -> Iterator[None]:
    """Register the op and the modifiers for a test, and forget them afterwards."""
    registry.register_op(COUPON_OP)
    registry.register_modifier("tests.coupon", coupon, lines=False)
    registry.register_modifier("tests.tax", tax, lines=False)
    registry.register_modifier("tests.line_promo", line_promo)
    try:
        yield
    finally:
        registry.custom_ops.pop("apply_coupon", None)
        for name in ("tests.coupon", "tests.tax", "tests.line_promo"):
            registry.modifiers.pop(name, None)
            registry.modifiers_without_lines.discard(name)
