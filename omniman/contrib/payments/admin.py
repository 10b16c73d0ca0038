"""Read-only ledgers; refunds go through :func:`~omniman.contrib.payments.services.refund_order`."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from omniman.admin import ReadOnlyPagesMixin
from omniman.contrib.payments.models import Payment, Refund, Settled


class ReadOnlyLedger(ReadOnlyPagesMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The row's own fields first, then what every ledger row shares (Settled's).
        shared = {f.name for f in Settled._meta.fields}
        names = [f.name for f in self.model._meta.fields]
        return [n for n in names if n not in shared] + [n for n in names if n in shared]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyLedger):
    list_display = ("id", "order", "method", "amount_q", "tip_q", "change_q", "status", "provider_ref", "created_at")
    list_filter = ("status", "method")
    list_select_related = ("order",)
    search_fields = ("order__ref", "provider_ref", "reference")
    ordering = ("-id",)
    actions = ["refund_rest"]

    @admin.action(description="Refund what is left of the selected captured payments")
    def refund_rest(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        from django.db.models import Q, Sum

        from omniman.contrib.payments.services import refund_order
        from omniman.exceptions import OmnimanError

        held = Sum("refunds__amount_q", filter=~Q(refunds__status=Refund.Status.FAILED), default=0)
        done = 0
        for payment in queryset.select_related("order").annotate(held_q=held).order_by("pk"):
            left = payment.amount_q - payment.held_q
            if payment.status != Payment.Status.CAPTURED or left <= 0:
                self.message_user(request, f"Payment {payment.pk}: nothing to refund.", messages.WARNING)
                continue
            try:
                refund_order(ref=payment.order.ref, payment_id=payment.pk, amount_q=left,
                             reason="refunded from the admin", actor=request.user.get_username())
                done += 1
            except OmnimanError as exc:
                self.message_user(request, f"Payment {payment.pk}: {exc.detail}", messages.WARNING)
        self.message_user(request, f"{done} refund(s) made.")


@admin.register(Refund)
class RefundAdmin(ReadOnlyLedger):
    list_display = ("id", "order", "payment", "amount_q", "status", "reason", "created_at")
    list_filter = ("status",)
    list_select_related = ("order", "payment")
    search_fields = ("order__ref", "provider_ref", "reason")
    ordering = ("-id",)
