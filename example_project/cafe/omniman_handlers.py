"""The café's directive handlers, found by omniman's handler autodiscovery.

Each one is a model for handler authors (see ``docs/guide/directives.rst``):

* it is **idempotent**: delivery is at-least-once, so a handler may run again for
  the same directive (a retry after an error, a worker killed mid-job). Database
  writes are safe, because omniman runs the handler in one transaction with the
  directive's ``done`` update; anything outside the database is keyed by
  ``ctx.idempotency_key`` (the same on every attempt of a directive);
* it **raises** to be retried with backoff (a gateway timeout), raises
  ``PermanentFailure`` when retrying cannot help (a declined card), and returns
  normally when the work is done;
* it reads what it needs from the database (the payload carries references, not
  copies), and imports models lazily so this module loads before the app registry.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.mail import send_mail

from cafe import pricing  # noqa: F401  (registers the shop channel's op and modifiers)
from omniman.exceptions import PermanentFailure
from omniman.registry import HandlerContext, registry

logger = logging.getLogger(__name__)


# -- stock: a hold from the web channel's check to the order (cafe/stock.py) ------


@registry.handler("stock.hold")
def hold_stock(directive: Any, ctx: HandlerContext) -> None:
    """Reserve what the session's lines need and record the check for the session's
    rev (payload: ``check``, ``channel_code``, ``session_key``, ``rev``).

    ``ok`` is false for a sold-out product, an unknown one, or more units than are
    free (the session's own hold counts as free for it). The units held move from
    ``Product.stock`` to the session's ``StockHold`` row (``cafe/stock.py``), set to
    what this rev needs, so running this twice for one rev changes nothing. The
    session is locked first: an abandon or a commit waits for the hold, and a hold
    that comes after them finds the session closed and holds nothing."""
    from cafe import stock
    from omniman.exceptions import NotFound
    from omniman.services import apply_check_result, get_session
    from omniman.services.locks import lock_session

    p = directive.payload
    try:
        lock_session(p["channel_code"], p["session_key"])
        session = get_session(p["channel_code"], p["session_key"])
    except NotFound:
        ctx.logger.info("stock.hold: session %s is gone; nothing to hold", p["session_key"])
        return
    if session.state != "open" or session.rev != p["rev"]:
        ctx.logger.info("stock.hold: session %s is %s at rev %s", p["session_key"], session.state, session.rev)
        return  # closed: nothing to hold; a newer rev has its own check directive

    wanted = stock.quantities_of(session.items)
    unavailable = stock.hold(p["channel_code"], p["session_key"], wanted)
    held = {sku: str(qty) for sku, qty in wanted.items() if sku not in unavailable}
    issues = [
        {
            "id": f"stock-{sku}",
            "code": "out_of_stock",
            "blocking": True,
            "message": f"{sku} is out of stock.",
            "actions": [
                {"id": "remove", "label": f"Remove {sku}",
                 "ops": [{"op": "remove_line", "line_id": line["line_id"]}
                         for line in session.items if line["sku"] == sku]},
            ],
        }
        for sku in unavailable
    ]
    apply_check_result(
        channel=p["channel_code"],
        session_key=p["session_key"],
        rev=p["rev"],
        code=p.get("check", "stock"),
        ok=not unavailable,
        detail={"held": held, "unavailable": unavailable},
        issues=issues,
    )


def _order_of(directive: Any) -> Any:
    from omniman.models import Order

    order = Order.objects.select_related("channel").filter(ref=directive.payload["order_ref"]).first()
    if order is None:
        raise PermanentFailure(f"order {directive.payload['order_ref']} does not exist")
    return order


@registry.handler("stock.consume")
def consume_stock(directive: Any, ctx: HandlerContext) -> None:
    """An order was committed (the hook of its first status): its session's hold
    becomes the order's, at the order's quantities; an order that held nothing (a
    POS sale, an import) takes its units now."""
    from cafe import stock

    order = _order_of(directive)
    used = stock.quantities_of(order.items.values("sku", "qty"))
    stock.consume(order.channel.code, order.session_key, order.ref, used)


@registry.handler("stock.release")
def release_stock(directive: Any, ctx: HandlerContext) -> None:
    """A session ended without an order (payload ``channel_code``, ``session_key``,
    ``rev``, ``reason``: abandoned or expired): give back its hold, if it holds one."""
    from cafe import stock

    p = directive.payload
    if stock.release(p["channel_code"], p["session_key"]):
        ctx.logger.info("stock.release: session %s %s, hold given back", p["session_key"], p["reason"])


@registry.handler("stock.return")
def return_stock(directive: Any, ctx: HandlerContext) -> None:
    """An order was cancelled: give back what it took."""
    from cafe import stock

    order = _order_of(directive)
    used = stock.quantities_of(order.items.values("sku", "qty"))
    stock.give_back(order.channel.code, order.session_key, order.ref, used)


@registry.handler("kitchen.cancelled")
def tell_the_kitchen(directive: Any, ctx: HandlerContext) -> None:
    """A POS order was cancelled: put it on the kitchen display's list of orders to
    stop making (``cafe/kitchen.py``), with the cashier's reason."""
    from cafe import kitchen

    p = directive.payload
    kitchen.note_cancelled(p["order_ref"], p.get("reason") or "")


# -- payment: a fake gateway with an idempotency key -------------------------------


class FakeGateway:
    """Stands in for a payment provider. Like Stripe or Adyen, it remembers each
    idempotency key and answers a repeated request with the first charge instead of
    charging twice. Charges live in the Django cache (Redis in production settings)."""

    #: Amounts above this are declined (to demo ``PermanentFailure``).
    LIMIT_Q = 10_000_000

    def capture(self, *, amount_q: int, currency: str, reference: str, idempotency_key: str) -> dict[str, Any]:
        key = f"cafe:fake-gateway:{idempotency_key}"
        if amount_q > self.LIMIT_Q:
            return {"status": "declined", "reason": "amount over the demo limit"}
        charge = {
            "id": f"ch_{uuid.uuid4().hex[:16]}",
            "status": "captured",
            "amount_q": amount_q,
            "currency": currency,
            "reference": reference,
        }
        if not cache.add(key, charge, timeout=7 * 24 * 3600):
            return cache.get(key) or charge  # a repeat: the first charge
        return charge


gateway = FakeGateway()


# A gateway outage can last a while: more attempts than the default (backoff doubles
# each time, capped at DIRECTIVE_BACKOFF_MAX_SECONDS), and a lease well above the
# timeout a real gateway call would have, so no second worker starts a capture that
# is still waiting.
@registry.handler("payment.capture", max_attempts=10, lease_seconds=120)
def capture_payment(directive: Any, ctx: HandlerContext) -> None:
    """Charge what the order owes once, however often this runs, and record it as a
    captured ``card`` payment (omniman.contrib.payments).

    The gateway call carries ``ctx.idempotency_key``, so a second attempt after a
    crash gets the first charge back; the payment is recorded with that key too,
    in the directive's transaction, so it exists exactly once."""
    from omniman.contrib.payments.exceptions import Overpayment
    from omniman.contrib.payments.providers import Settlement
    from omniman.contrib.payments.services import take_payment, totals_of
    from omniman.models import Order

    order = Order.objects.select_related("channel").filter(ref=directive.payload["order_ref"]).first()
    if order is None:
        raise PermanentFailure(f"order {directive.payload['order_ref']} does not exist")
    totals = totals_of(order)
    due = totals.due_q - totals.pending_q
    if due <= 0:
        return  # paid by an earlier directive (or at the counter)
    charge = gateway.capture(
        amount_q=due, currency=order.currency, reference=order.ref, idempotency_key=ctx.idempotency_key,
    )
    if charge["status"] == "declined":
        raise PermanentFailure(f"payment declined: {charge['reason']}", details=charge)
    try:
        take_payment(
            ref=order.ref, method="card", amount_q=charge["amount_q"], reference=charge["id"],
            settled=Settlement(True, provider_ref=charge["id"]), actor="payment.capture",
            idempotency_key=ctx.idempotency_key,
        )
    except Overpayment:
        ctx.logger.warning("payment.capture: order %s was paid meanwhile; charge %s to refund", order.ref,
                           charge["id"])
        raise PermanentFailure(f"order {order.ref} was paid meanwhile") from None
    ctx.logger.info("payment captured order=%s charge=%s attempt=%s", order.ref, charge["id"], ctx.attempt)


# -- notification: log, and e-mail when configured ----------------------------------


@registry.handler("notification.order_committed")
def notify_order_committed(directive: Any, ctx: HandlerContext) -> None:
    """Tell the kitchen (a log line) and the shop (an e-mail to ``CAFE_NOTIFY_EMAIL``
    through Django's e-mail backend, when set).

    An e-mail cannot be taken back, so the handler remembers the directive id after
    sending and skips a repeat; a crash between the send and that note can still
    send twice, which is the price of at-least-once for outside effects without an
    idempotency key."""
    ref = directive.payload["order_ref"]
    sent_key = f"cafe:notified:{ctx.idempotency_key}"
    if cache.get(sent_key):
        ctx.logger.info("notification for %s already sent", ref)
        return
    logger.info("new order %s on channel %s", ref, directive.payload.get("channel_code", ""))
    recipient = getattr(settings, "CAFE_NOTIFY_EMAIL", "")
    if recipient:
        send_mail(
            subject=f"New order {ref}",
            message=f"Order {ref} was committed.",
            from_email=None,
            recipient_list=[recipient],
        )
    cache.set(sent_key, True, timeout=7 * 24 * 3600)
