"""Payment services: the only writers of the ledger.

Each one runs as one transaction through the kernel's idempotent path
(:func:`~omniman.services.idempotency.run_idempotent`): lock the order row, replay a
known key, check the amounts against the order's summary (read under that lock),
write the payment or refund, the summary, the order's new version (its ETag shows
the payment), an event, the directives, and the key's answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from django.core.exceptions import ObjectDoesNotExist
from django.db import transaction

from omniman.contrib.payments.exceptions import Overpayment, PaymentRequired, RefundExceedsPaid
from omniman.contrib.payments.models import Payment, PaymentStatus, PaymentSummary, Refund
from omniman.contrib.payments.providers import Provider, Settlement, providers
from omniman.exceptions import FieldError, NotFound, ValidationError
from omniman.models import Channel, Order, OrderEvent, OrderItem
from omniman.money import MAX_UNIT_PRICE_Q, MoneyError, format_qty, parse_amount_q, parse_qty
from omniman.services import idempotency, touch_order
from omniman.services.directive_outbox import enqueue_many
from omniman.services.idempotency import IdempotentRequest, Outcome
from omniman.services.locks import ChannelRef, lock_order

logger = logging.getLogger(__name__)

SETTLE_TOPIC = "payments.settle"
MAX_REASON = 500
MAX_REFERENCE = 128
MAX_REFUND_LINES = 500


@dataclass(frozen=True)
class Totals:
    """What an order's ledger adds up to (see :class:`PaymentSummary`)."""

    total_q: int
    paid_q: int = 0
    refunded_q: int = 0
    pending_q: int = 0
    refund_pending_q: int = 0
    tip_q: int = 0

    @property
    def due_q(self) -> int:
        return max(0, self.total_q - self.paid_q + self.refunded_q)

    @property
    def status(self) -> str:
        if self.refunded_q > 0:
            return PaymentStatus.REFUNDED if self.refunded_q >= self.paid_q else PaymentStatus.PARTIALLY_REFUNDED
        if self.paid_q >= self.total_q:
            return PaymentStatus.PAID
        return PaymentStatus.PARTIALLY_PAID if self.paid_q > 0 else PaymentStatus.UNPAID

    def as_json(self) -> dict[str, Any]:
        return {
            "payment_status": str(self.status),
            "amount_paid_q": self.paid_q,
            "amount_refunded_q": self.refunded_q,
            "amount_due_q": self.due_q,
            "tip_q": self.tip_q,
        }


def summary_of(order: Order) -> PaymentSummary | None:
    """The order's summary row: from the join the kernel and the API make (no query)
    when they loaded the order, else one query."""
    try:
        return order.payment_summary
    except ObjectDoesNotExist:
        return None


def totals_of(order: Order, summary: PaymentSummary | None = None) -> Totals:
    summary = summary if summary is not None else summary_of(order)
    if summary is None:
        return Totals(order.total_q)
    return Totals(order.total_q, summary.paid_q, summary.refunded_q, summary.pending_q,
                  summary.refund_pending_q, summary.tip_q)


def _read_summary(order: Order) -> PaymentSummary | None:
    """The summary as it is now (under the order's lock): one query."""
    summary = PaymentSummary.objects.filter(order_id=order.pk).first()
    order._state.fields_cache["payment_summary"] = summary
    return summary


def _write_summary(order: Order, summary: PaymentSummary | None, totals: Totals) -> PaymentSummary:
    """Store ``totals`` (one INSERT or one UPDATE) and bump the order's version."""
    values = {
        "status": str(totals.status), "total_q": totals.total_q, "paid_q": totals.paid_q,
        "refunded_q": totals.refunded_q, "pending_q": totals.pending_q,
        "refund_pending_q": totals.refund_pending_q, "tip_q": totals.tip_q,
    }
    if summary is None:
        summary = PaymentSummary.objects.create(order=order, **values)
    else:
        for name, value in values.items():
            setattr(summary, name, value)
        summary.save(update_fields=[*values, "updated_at"])
    order._state.fields_cache["payment_summary"] = summary
    touch_order(order)
    return summary


def _directives(order: Order, extra: dict[str, Any], *, settle: bool) -> None:
    """The ``payments.settle`` directive (when the provider settles later) and the
    channel's ``payment_directives``, in one INSERT."""
    topics = ([SETTLE_TOPIC] if settle else []) + list(order.channel.conf.extra.get("payment_directives", ()))
    payload = {"order_ref": order.ref, "channel_code": order.channel.code, **extra}
    enqueue_many((topic, dict(payload)) for topic in topics)


def _event(order: Order, type_: str, actor: str, payload: dict[str, Any]) -> None:
    OrderEvent.objects.create(order=order, type=type_, actor=actor, payload=payload)


def _error(pointer: str, detail: str, code: str = "invalid") -> ValidationError:
    return ValidationError(FieldError(pointer, detail, code))


def _amount(value: Any, pointer: str, *, required: bool = True) -> int:
    if value is None and not required:
        return 0
    if value is None:
        raise _error(pointer, f"{pointer[1:]} is required.", "required")
    try:
        return parse_amount_q(value, maximum=MAX_UNIT_PRICE_Q)
    except MoneyError as exc:
        raise _error(pointer, f"{pointer[1:]} {exc.detail}", exc.code) from None


def _text(value: Any, pointer: str, maximum: int, *, required: bool) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or "\x00" in value or len(value) > maximum or (required and not value):
        raise _error(pointer, f"{pointer[1:]} must be a string of {1 if required else 0} to {maximum} characters.",
                     "invalid_type" if not isinstance(value, str) else "invalid")
    return value


def _provider(method: Any) -> Provider:
    known = providers()
    if not isinstance(method, str) or method not in known:
        raise _error("/method", f"method must be one of {', '.join(sorted(known)) or 'no configured method'}.",
                     "unknown_method" if isinstance(method, str) else "invalid_type")
    return known[method]


def _request(idempotency_key: str | None, fingerprint: str | None, parts: tuple[Any, ...],
             answer: Callable[[Any], idempotency.Replay] | None) -> IdempotentRequest | None:
    if idempotency_key is None:
        return None
    idempotency.check_key(idempotency_key)
    return IdempotentRequest(
        key=idempotency_key,
        fingerprint=fingerprint or idempotency.fingerprint(*parts),
        answer=answer or (lambda row: idempotency.Replay(201, {"id": row.pk}, {})),
    )


def _locker(ref: str, channel: ChannelRef | None) -> Callable[[], tuple[Channel, Order]]:
    def lock() -> tuple[Channel, Order]:
        order = lock_order(ref, channel)
        return order.channel, order

    return lock


# -- payments ----------------------------------------------------------------------------


def take_payment(
    *,
    ref: str,
    method: Any,
    amount_q: Any,
    tip_q: Any = None,
    tendered_q: Any = None,
    reference: Any = None,
    channel: ChannelRef | None = None,
    actor: str = "",
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    answer: Callable[[Payment], idempotency.Replay] | None = None,
    settled: Settlement | None = None,
) -> Outcome[Payment]:
    """Record a payment of ``amount_q`` (and ``tip_q`` apart) against order ``ref``.

    ``tendered_q`` (methods that take it: cash) gives ``change_q``. A provider that
    settles later leaves the payment ``pending`` with a ``payments.settle`` directive;
    ``settled`` records a payment already captured elsewhere (a gateway's charge)
    without asking the provider. An amount above what is due, less what pending
    payments hold, is ``Overpayment``. With ``idempotency_key``, a replay returns the
    first answer (``Outcome.replay``) and pays nothing."""
    provider = _provider(method)
    amount = _amount(amount_q, "/amount_q")
    tip = _amount(tip_q, "/tip_q", required=False)
    if amount + tip == 0:
        raise _error("/amount_q", "amount_q and tip_q cannot both be 0.", "min_value")
    tendered = None
    if tendered_q is not None:
        if not provider.takes_tendered:
            raise _error("/tendered_q", f"method {method!r} does not take tendered_q.", "not_allowed")
        tendered = _amount(tendered_q, "/tendered_q")
        if tendered < amount + tip:
            raise _error("/tendered_q", "tendered_q is below amount_q + tip_q.", "below_amount")
    ref_text = _text(reference, "/reference", MAX_REFERENCE, required=False)
    request = _request(idempotency_key, fingerprint, ("payment", ref, method, amount, tip, tendered, ref_text), answer)

    def write(order: Order) -> Payment:
        summary = _read_summary(order)
        totals = totals_of(order, summary)
        open_q = totals.due_q - totals.pending_q
        if amount > open_q:
            raise Overpayment(max(open_q, 0))
        later = provider.settles_later and settled is None
        payment = Payment(
            order=order, method=method, amount_q=amount, tip_q=tip, tendered_q=tendered,
            change_q=0 if tendered is None else tendered - amount - tip,
            status=Payment.Status.PENDING, reference=ref_text, actor=actor,
        )
        result = settled if settled is not None else (None if later else provider.capture(payment, None))
        if result is not None:
            payment.status = Payment.Status.CAPTURED if result.ok else Payment.Status.FAILED
            payment.provider_ref, payment.failure = result.provider_ref[:128], result.failure[:500]
        payment.save()
        if payment.status == Payment.Status.CAPTURED:
            totals = _with(totals, paid_q=totals.paid_q + amount, tip_q=totals.tip_q + tip)
        elif payment.status == Payment.Status.PENDING:
            totals = _with(totals, pending_q=totals.pending_q + amount)
        _write_summary(order, summary, totals)
        _event(order, f"payment.{payment.status}", actor, _payment_event(payment))
        _directives(order, {"payment_id": payment.pk}, settle=later)
        return payment

    outcome = idempotency.run_idempotent(request, lock=_locker(ref, channel), write=write)
    if outcome.result is not None:
        p = outcome.result
        logger.info("payment order=%s id=%s method=%s amount_q=%s status=%s", ref, p.pk, p.method, p.amount_q,
                    p.status)
    return outcome


def _with(totals: Totals, **changes: int) -> Totals:
    return Totals(**{**totals.__dict__, **changes})


def _payment_event(payment: Payment) -> dict[str, Any]:
    out = {"payment_id": payment.pk, "method": payment.method, "amount_q": payment.amount_q,
           "tip_q": payment.tip_q}
    if payment.tendered_q is not None:
        out.update(tendered_q=payment.tendered_q, change_q=payment.change_q)
    if payment.provider_ref:
        out["provider_ref"] = payment.provider_ref
    if payment.failure:
        out["failure"] = payment.failure
    return out


def settle_payment(*, ref: str, payment_id: int, settlement: Settlement, actor: str = "") -> Payment:
    """Record a pending payment's outcome, under the order's lock. A payment no longer
    pending is left alone (the directive ran before): returned as it is."""

    def apply(payment: Payment, totals: Totals, ok: bool) -> Totals:
        pending = totals.pending_q - payment.amount_q
        if not ok:
            payment.status = Payment.Status.FAILED
            return _with(totals, pending_q=pending)
        payment.status = Payment.Status.CAPTURED
        return _with(totals, pending_q=pending, paid_q=totals.paid_q + payment.amount_q,
                     tip_q=totals.tip_q + payment.tip_q)

    payment = _settle(Payment, ref, payment_id, settlement, actor, apply, _payment_event)
    logger.info("payment settled order=%s id=%s status=%s", ref, payment.pk, payment.status)
    return payment


Pending = TypeVar("Pending", Payment, Refund)


def _settle(
    model: type[Pending],
    ref: str,
    pk: int,
    settlement: Settlement,
    actor: str,
    apply: Callable[[Pending, Totals, bool], Totals],
    describe: Callable[[Pending], dict[str, Any]],
) -> Pending:
    """Settle a pending payment or refund once: lock the order, find the row (one of
    another order is not found), leave a settled one alone, else let ``apply`` set its
    status and the new totals, then save it, the summary, an event
    (``payment.captured``, ``refund.failed``, ...) and the channel's directives."""
    name = model._meta.model_name
    with transaction.atomic():
        order = lock_order(ref)
        row = model.objects.filter(pk=pk, order=order).first()
        if row is None:
            raise NotFound(f"No such {name}.")
        if row.status != "pending":
            return row
        summary = _read_summary(order)
        totals = apply(row, totals_of(order, summary), settlement.ok)
        row.provider_ref, row.failure = settlement.provider_ref[:128], settlement.failure[:500]
        row.save(update_fields=["status", "provider_ref", "failure", "updated_at"])
        _write_summary(order, summary, totals)
        _event(order, f"{name}.{row.status}", actor, describe(row))
        _directives(order, {f"{name}_id": row.pk}, settle=False)
    return row


# -- refunds -----------------------------------------------------------------------------


def _refund_lines(raw: Any) -> list[tuple[str, Decimal]]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_REFUND_LINES:
        raise _error("/lines", f"lines must be a list of 1 to {MAX_REFUND_LINES} {{line_id, qty}} objects.",
                     "invalid_type" if not isinstance(raw, list) else "invalid")
    seen: dict[str, Decimal] = {}
    for index, entry in enumerate(raw):
        at = f"/lines/{index}"
        if not isinstance(entry, dict):
            raise _error(at, "a line must be an object {line_id, qty}.", "invalid_type")
        unknown = sorted(set(entry) - {"line_id", "qty"})
        if unknown:
            raise _error(f"{at}/{unknown[0]}", "unknown field.", "unknown_field")
        line_id = entry.get("line_id")
        if not isinstance(line_id, str) or not line_id:
            raise _error(f"{at}/line_id", "line_id is required.", "required")
        if "qty" not in entry:
            raise _error(f"{at}/qty", "qty is required.", "required")
        try:
            qty = parse_qty(entry["qty"])
        except MoneyError as exc:
            raise _error(f"{at}/qty", exc.detail, exc.code) from None
        seen[line_id] = seen.get(line_id, Decimal(0)) + qty  # a line named twice: its quantities add up
    return list(seen.items())


def refund_order(
    *,
    ref: str,
    reason: Any,
    amount_q: Any = None,
    lines: Any = None,
    payment_id: Any = None,
    channel: ChannelRef | None = None,
    actor: str = "",
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    answer: Callable[[Refund], idempotency.Replay] | None = None,
) -> Outcome[Refund]:
    """Give money back on one captured payment of order ``ref``.

    By ``lines`` (``[{"line_id", "qty"}]``) without ``amount_q``: per line,
    round-half-even(``line_total_q`` × qty ÷ the line's qty); a line never refunds
    more than its quantity less earlier refunds of it. ``payment_id`` names the
    payment, else the newest captured payment that has the amount left takes it.
    More than is captured and not yet refunded (pending refunds held) is
    ``RefundExceedsPaid``. A provider that refunds later leaves the refund ``pending``."""
    reason_text = _text(reason, "/reason", MAX_REASON, required=True)
    amount = None if amount_q is None else _amount(amount_q, "/amount_q")
    if amount == 0:
        raise _error("/amount_q", "amount_q must be greater than 0.", "min_value")
    wanted = None if lines is None else _refund_lines(lines)
    if amount is None and wanted is None:
        raise _error("/amount_q", "give amount_q, lines, or both.", "required")
    if payment_id is not None and (isinstance(payment_id, bool) or not isinstance(payment_id, int)
                                   or not 1 <= payment_id <= 2**63 - 1):
        raise _error("/payment_id", "payment_id must be a payment's id.", "invalid_type")
    parts = ("refund", ref, reason_text, amount, [(i, str(q)) for i, q in wanted or []], payment_id)
    request = _request(idempotency_key, fingerprint, parts, answer)

    def write(order: Order) -> Refund:
        given = amount
        if wanted is not None:
            given_lines = _check_lines(order, wanted)
            if given is None:
                given = sum(q for _, _, q in given_lines)
                if given == 0:
                    raise _error("/lines", "these lines refund nothing (their total is 0).", "zero_total")
        assert given is not None
        summary = _read_summary(order)
        totals = totals_of(order, summary)
        refundable = totals.paid_q - totals.refunded_q - totals.refund_pending_q
        if given > refundable:
            raise RefundExceedsPaid(max(refundable, 0))
        payment = _refunded_payment(order, payment_id, given)
        provider = providers().get(payment.method)
        if provider is None:
            raise _error("/payment_id", f"the payment's method {payment.method!r} is no longer configured.",
                         "unknown_method")
        refund = Refund(
            order=order, payment=payment, amount_q=given, reason=reason_text, status=Refund.Status.PENDING,
            actor=actor, lines=[{"line_id": i, "qty": format_qty(q)} for i, q in wanted or []],
        )
        if not provider.refunds_later:
            result = provider.refund(refund, payment, None)
            refund.status = Refund.Status.DONE if result.ok else Refund.Status.FAILED
            refund.provider_ref, refund.failure = result.provider_ref[:128], result.failure[:500]
        refund.save()
        if refund.status == Refund.Status.DONE:
            totals = _with(totals, refunded_q=totals.refunded_q + given)
        elif refund.status == Refund.Status.PENDING:
            totals = _with(totals, refund_pending_q=totals.refund_pending_q + given)
        _write_summary(order, summary, totals)
        _event(order, f"refund.{refund.status}", actor, _refund_event(refund))
        _directives(order, {"refund_id": refund.pk}, settle=provider.refunds_later)
        return refund

    outcome = idempotency.run_idempotent(request, lock=_locker(ref, channel), write=write)
    if outcome.result is not None:
        r = outcome.result
        logger.info("refund order=%s id=%s payment=%s amount_q=%s status=%s", ref, r.pk, r.payment_id,
                    r.amount_q, r.status)
    return outcome


def _check_lines(order: Order, wanted: list[tuple[str, Decimal]]) -> list[tuple[str, Decimal, int]]:
    """(line_id, qty, amount_q) of each refunded line, checked against the order's
    items and earlier refunds (pending and done) of them: two queries."""
    items = {i.line_id: i for i in OrderItem.objects.filter(order=order, line_id__in=[w[0] for w in wanted])}
    earlier: dict[str, Decimal] = {}
    rows = Refund.objects.filter(order=order).exclude(status=Refund.Status.FAILED).exclude(lines=[])
    for row_lines in rows.values_list("lines", flat=True):
        for entry in row_lines:
            earlier[entry["line_id"]] = earlier.get(entry["line_id"], Decimal(0)) + Decimal(entry["qty"])
    out = []
    for index, (line_id, qty) in enumerate(wanted):
        item = items.get(line_id)
        if item is None:
            raise _error(f"/lines/{index}/line_id", "no such line in the order.", "unknown_line")
        left = item.qty - earlier.get(line_id, Decimal(0))
        if qty > left:
            raise _error(f"/lines/{index}/qty", f"at most {format_qty(left)} of this line is left to refund.",
                         "max_qty_left")
        amount = int((Decimal(item.line_total_q) * qty / item.qty).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        out.append((line_id, qty, amount))
    return out


def _refunded_payment(order: Order, payment_id: int | None, amount: int) -> Payment:
    """The captured payment that gives ``amount`` back: ``payment_id``'s, or the newest
    one with that much left (payments and their refunds: one query)."""
    from django.db.models import Q, Sum

    held = Sum("refunds__amount_q", filter=~Q(refunds__status=Refund.Status.FAILED), default=0)
    qs = Payment.objects.filter(order=order, status=Payment.Status.CAPTURED).annotate(held_q=held).order_by("-id")
    if payment_id is not None:
        payment = qs.filter(pk=payment_id).first()
        if payment is None:
            raise _error("/payment_id", "no captured payment of this order has this id.", "unknown_payment")
        if amount > payment.amount_q - payment.held_q:
            raise RefundExceedsPaid(payment.amount_q - payment.held_q,
                                    f"Payment {payment_id} has {payment.amount_q - payment.held_q} left to refund.")
        return payment
    for payment in qs:
        if amount <= payment.amount_q - payment.held_q:
            return payment
    raise _error("/payment_id", "no single payment has that much left to refund: refund each payment apart, "
                                "naming its payment_id.", "split_required")


def _refund_event(refund: Refund) -> dict[str, Any]:
    out = {"refund_id": refund.pk, "payment_id": refund.payment_id, "amount_q": refund.amount_q,
           "reason": refund.reason}
    if refund.lines:
        out["lines"] = refund.lines
    if refund.failure:
        out["failure"] = refund.failure
    return out


def settle_refund(*, ref: str, refund_id: int, settlement: Settlement, actor: str = "") -> Refund:
    """Record a pending refund's outcome under the order's lock (a settled one is left alone)."""

    def apply(refund: Refund, totals: Totals, ok: bool) -> Totals:
        pending = totals.refund_pending_q - refund.amount_q
        if not ok:
            refund.status = Refund.Status.FAILED
            return _with(totals, refund_pending_q=pending)
        refund.status = Refund.Status.DONE
        return _with(totals, refund_pending_q=pending, refunded_q=totals.refunded_q + refund.amount_q)

    return _settle(Refund, ref, refund_id, settlement, actor, apply, _refund_event)


# -- the kernel's extension points -------------------------------------------------------


def require_paid(order: Order, to: str) -> None:
    """The transition guard: ``to`` in the channel's ``require_paid_for`` needs nothing
    due (one query, only for those statuses; under the order's lock)."""
    if to not in order.channel.conf.extra.get("require_paid_for", ()):
        return
    due = totals_of(order, _read_summary(order)).due_q
    if due > 0:
        raise PaymentRequired(to, due)


def order_fields(order: Order) -> dict[str, Any]:
    return totals_of(order).as_json()
