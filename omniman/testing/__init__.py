"""Factories and helpers that host projects may use in their own tests.

Importable before Django is configured (a script that runs a host project's
processes imports :mod:`omniman.testing.stack`): the factories import the models
when called."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omniman.models import Channel

POS_FLOW = {
    "new": ["preparing", "cancelled"],
    "preparing": ["ready", "cancelled"],
    "ready": ["completed", "cancelled"],
    "completed": [],
    "cancelled": [],
}


def make_channel(code: str = "pos", *, currency: str = "BRL", is_active: bool = True, **config: Any) -> Channel:
    """A channel with the POS defaults (external pricing, open, the café flow)."""
    from omniman.models import Channel  # the app registry is ready by now

    base: dict[str, Any] = {
        "pricing_policy": "external",
        "edit_policy": "open",
        "initial_status": "new",
        "order_flow": POS_FLOW,
    }
    base.update(config)
    channel, _ = Channel.objects.update_or_create(
        code=code, defaults={"name": code.upper(), "currency": currency, "is_active": is_active, "config": base}
    )
    return channel


def add_line_op(sku: str = "COFFEE", qty: Any = 1, unit_price_q: int | None = 500, **extra: Any) -> dict[str, Any]:
    op: dict[str, Any] = {"op": "add_line", "sku": sku, "qty": qty, **extra}
    if unit_price_q is not None:
        op["unit_price_q"] = unit_price_q
    return op
