"""The ``shop`` channel's line pricing: a coupon op, the coupon's discount and a 10 %
tax on top. Registered when omniman autodiscovers ``cafe.omniman_handlers``, which
imports this module.

Both modifiers read no line (``lines=False``): they price from the subtotal, so a
modify on ``shop`` reads only the lines its ops name, as on the other channels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from omniman.exceptions import OpRejected
from omniman.money import percent_q
from omniman.ops import Adjustment, OpView
from omniman.registry import registry

# code -> the share of the subtotal it takes off
COUPONS = {"WELCOME10": "0.1"}
TAX_RATE = "0.1"


@registry.op("apply_coupon", fields={"code": str})
def apply_coupon(view: OpView, fields: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Apply a coupon code (WELCOME10: 10 % off the subtotal)."""
    if fields["code"] not in COUPONS:
        raise OpRejected(f"unknown coupon; one of: {', '.join(COUPONS)}.", field="code", code="unknown_coupon")
    return [{"op": "set_data", "path": "coupon", "value": fields["code"]}]


@registry.modifier("cafe.coupon", lines=False)
def coupon(view: Mapping[str, Any]) -> Sequence[Adjustment]:
    """−round-half-even(subtotal × rate) for the session's coupon, if any."""
    code = view["data"].get("coupon")
    if code not in COUPONS:
        return []
    return [Adjustment(code, f"Coupon {code}", -percent_q(view["subtotal_q"], COUPONS[code]), kind="discount")]


@registry.modifier("cafe.tax", lines=False)
def tax(view: Mapping[str, Any]) -> Sequence[Adjustment]:
    """10 % of the discounted subtotal, rounded half to even once."""
    base = view["subtotal_q"] + view["discounts_q"]
    return [Adjustment("tax", "Tax 10%", percent_q(base, TAX_RATE), kind="tax")]
