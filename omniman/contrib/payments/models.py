"""The ledger: payments and refunds (append-only rows whose status settles once), and
one summary row per order that has any, kept under the order's row lock.

The database is the last guard: no negative amount, a refund never above what was
captured, the captured (less refunds) plus the pending never above the order's total."""

from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from omniman.fields import FastJSONField
from omniman.models import Order


class PaymentStatus(models.TextChoices):
    """An order's ``payment_status``."""

    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Settled(models.Model):
    """What a payment and a refund share: who asked, and how the provider settled it."""

    provider_ref = models.CharField(max_length=128, blank=True, default="")
    failure = models.CharField(max_length=500, blank=True, default="")
    actor = models.CharField(max_length=150, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Payment(Settled):
    """Money received against an order; ``tip_q`` is apart from ``amount_q``."""

    class Status(models.TextChoices):
        PENDING = "pending"
        CAPTURED = "captured"
        FAILED = "failed"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="payments")
    method = models.CharField(max_length=64)
    amount_q = models.BigIntegerField()
    tip_q = models.BigIntegerField(default=0)
    tendered_q = models.BigIntegerField(null=True, blank=True)
    change_q = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices)
    reference = models.CharField(max_length=128, blank=True, default="")

    class Meta:
        ordering = ("order_id", "id")
        indexes = [models.Index(fields=["order", "id"], name="omniman_pay_order_id")]
        constraints = [
            models.CheckConstraint(
                condition=Q(amount_q__gte=0, tip_q__gte=0, change_q__gte=0), name="omniman_pay_amounts_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(tendered_q__isnull=True, change_q=0)
                | Q(tendered_q__gte=F("amount_q") + F("tip_q"), change_q=F("tendered_q") - F("amount_q") - F("tip_q")),
                name="omniman_pay_change",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.amount_q} ({self.status})"


class Refund(Settled):
    """Money given back on one payment; ``lines`` when it refunds items."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        FAILED = "failed"

    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="refunds")
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="refunds")
    amount_q = models.BigIntegerField()
    lines = FastJSONField(default=list, blank=True)
    reason = models.CharField(max_length=500)
    status = models.CharField(max_length=16, choices=Status.choices)

    class Meta:
        ordering = ("order_id", "id")
        indexes = [models.Index(fields=["order", "id"], name="omniman_refund_order_id")]
        constraints = [
            models.CheckConstraint(condition=Q(amount_q__gt=0), name="omniman_refund_amount_gt_0"),
        ]

    def __str__(self) -> str:
        return f"refund {self.amount_q} ({self.status})"


class PaymentSummary(models.Model):
    """What an order's ledger adds up to, written with every ledger change under the
    order's lock. An order without one has had no payment: unpaid (paid when its
    total is 0)."""

    order = models.OneToOneField(Order, on_delete=models.CASCADE, primary_key=True, related_name="payment_summary")
    status = models.CharField(max_length=20, choices=PaymentStatus.choices)
    total_q = models.BigIntegerField()
    #: captured amounts (tips apart)
    paid_q = models.BigIntegerField(default=0)
    #: done refunds
    refunded_q = models.BigIntegerField(default=0)
    #: pending payments and refunds: reserved, not yet counted
    pending_q = models.BigIntegerField(default=0)
    refund_pending_q = models.BigIntegerField(default=0)
    tip_q = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["status", "order"], name="omniman_paysum_status")]
        constraints = [
            models.CheckConstraint(
                condition=Q(paid_q__gte=0, refunded_q__gte=0, pending_q__gte=0, refund_pending_q__gte=0, tip_q__gte=0),
                name="omniman_paysum_gte_0",
            ),
            models.CheckConstraint(
                condition=Q(paid_q__gte=F("refunded_q") + F("refund_pending_q")), name="omniman_paysum_refund_le_paid"
            ),
            models.CheckConstraint(
                condition=Q(total_q__gte=F("paid_q") - F("refunded_q") + F("pending_q")),
                name="omniman_paysum_no_overpayment",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.status}"
