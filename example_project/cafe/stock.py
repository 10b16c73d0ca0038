"""The café's stock hold, run by the handlers in ``omniman_handlers.py``.

A session of a channel whose ``stock`` check is ``stock.hold`` reserves what its
lines need as the check runs: the units leave ``Product.stock`` (the units free to
sell) for the session's ``StockHold`` row. Then exactly one of:

- the commit enqueues ``stock.consume`` (the order's first status hook): the hold
  becomes the order's, set to the order's quantities (a channel without the check,
  or an import, has no row yet: it is made here and the units are taken now);
- the session is abandoned or expires: ``stock.release`` (a session-end hook) gives
  back a row that is still ``held``, and touches no other;
- later, the order is cancelled: ``stock.return`` (a status hook) gives back what
  the order took, whether ``stock.consume`` has run yet or not.

Every step locks the row, then the products in sku order, and changes the row's
state once, so running it again (directives are delivered at least once) changes
nothing. For every product: ``stock`` + held + consumed = the units put in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import F

from cafe.models import Product, StockHold

Quantities = dict[str, Decimal]


def quantities_of(lines: Iterable[Mapping[str, Any]]) -> Quantities:
    """sku -> total quantity of ``lines`` (session lines or order items)."""
    wanted: Quantities = {}
    for line in lines:
        wanted[line["sku"]] = wanted.get(line["sku"], Decimal(0)) + Decimal(str(line["qty"]))
    return wanted


def _stored(quantities: Mapping[str, Decimal]) -> dict[str, str]:
    return {sku: str(qty) for sku, qty in sorted(quantities.items()) if qty}


def _loaded(row: StockHold | None) -> Quantities:
    return {sku: Decimal(qty) for sku, qty in row.quantities.items()} if row is not None else {}


def _take(taken: Mapping[str, Decimal], given: Mapping[str, Decimal] | None = None) -> None:
    """Take ``taken`` out of the free stock and give ``given`` back (counted products
    only; unknown skus and products without a count are left alone)."""
    given = given or {}
    for sku in sorted(set(taken) | set(given)):
        delta = taken.get(sku, Decimal(0)) - given.get(sku, Decimal(0))
        if delta:
            Product.objects.filter(sku=sku, stock__isnull=False).update(stock=F("stock") - delta)


def _lock(channel_code: str, session_key: str) -> StockHold | None:
    return StockHold.objects.select_for_update().filter(channel_code=channel_code, session_key=session_key).first()


def hold(channel_code: str, session_key: str, wanted: Quantities) -> list[str]:
    """Set the session's hold to ``wanted``, less what cannot be had; returns the skus
    that cannot (unknown, sold out, or more than is free plus what the session holds
    already). The caller holds the session's lock and has checked that it is open."""
    assert transaction.get_connection().in_atomic_block
    row = _lock(channel_code, session_key)
    if row is not None and row.state != StockHold.State.HELD:
        return []
    had = _loaded(row)
    products = {p.sku: p for p in Product.objects.select_for_update().filter(sku__in=wanted).order_by("sku")}
    unavailable = sorted(
        sku for sku, qty in wanted.items()
        if sku not in products
        or not products[sku].in_stock
        or (products[sku].stock is not None and qty > products[sku].stock + had.get(sku, Decimal(0)))
    )
    held = {sku: qty for sku, qty in wanted.items() if sku not in unavailable}
    _take(held, had)
    if row is None:
        StockHold.objects.create(channel_code=channel_code, session_key=session_key, quantities=_stored(held))
    elif _stored(held) != row.quantities:
        row.quantities = _stored(held)
        row.save(update_fields=["quantities", "updated_at"])
    return unavailable


def consume(channel_code: str, session_key: str, order_ref: str, used: Quantities) -> None:
    """The order ``order_ref`` made from the session uses ``used``: its hold becomes
    the order's at those quantities, or the units are taken now when it held none."""
    with transaction.atomic():
        row, created = StockHold.objects.select_for_update().get_or_create(
            channel_code=channel_code, session_key=session_key,
            defaults={"state": StockHold.State.CONSUMED, "quantities": _stored(used), "order_ref": order_ref},
        )
        if created:
            _take(used)
        elif row.state == StockHold.State.HELD:
            _take(used, _loaded(row))
            row.state, row.quantities, row.order_ref = StockHold.State.CONSUMED, _stored(used), order_ref
            row.save(update_fields=["state", "quantities", "order_ref", "updated_at"])
        # consumed: done before; cancelled: the order was cancelled first and gave back
        # what it held, so there is nothing to take.


def release(channel_code: str, session_key: str) -> bool:
    """The session ended without an order: give back its hold if it is still held."""
    with transaction.atomic():
        row = _lock(channel_code, session_key)
        if row is None or row.state != StockHold.State.HELD:
            return False
        _take({}, _loaded(row))
        row.state = StockHold.State.RELEASED
        row.save(update_fields=["state", "updated_at"])
        return True


def give_back(channel_code: str, session_key: str, order_ref: str, used: Quantities) -> None:
    """The order was cancelled: give back what it took (or still held, when
    ``stock.consume`` has not run yet, which then takes nothing)."""
    with transaction.atomic():
        row, created = StockHold.objects.select_for_update().get_or_create(
            channel_code=channel_code, session_key=session_key,
            defaults={"state": StockHold.State.CANCELLED, "quantities": _stored(used), "order_ref": order_ref},
        )
        if created or row.state not in (StockHold.State.HELD, StockHold.State.CONSUMED):
            return
        _take({}, _loaded(row))
        row.state, row.order_ref = StockHold.State.CANCELLED, order_ref
        row.save(update_fields=["state", "order_ref", "updated_at"])
