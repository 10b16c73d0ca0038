"""The payment errors, each with its stable code (SPEC's error table; the API maps
them to 409 in ``omniman_api.errors``)."""

from __future__ import annotations

from typing import Any

from omniman.exceptions import Conflict


class Overpayment(Conflict):
    code = "overpayment"
    default_detail = "The amount is above what is due."

    def __init__(self, amount_due_q: int, detail: str | None = None) -> None:
        super().__init__(detail or f"The amount is above what is due ({amount_due_q}).")
        self.amount_due_q = amount_due_q

    def extra(self) -> dict[str, Any]:
        return {"amount_due_q": self.amount_due_q}


class RefundExceedsPaid(Conflict):
    code = "refund_exceeds_paid"
    default_detail = "The refund is above what was captured and not yet refunded."

    def __init__(self, refundable_q: int, detail: str | None = None) -> None:
        super().__init__(detail or f"The refund is above what was captured and not yet refunded ({refundable_q}).")
        self.refundable_q = refundable_q

    def extra(self) -> dict[str, Any]:
        return {"refundable_q": self.refundable_q}


class PaymentRequired(Conflict):
    code = "payment_required"
    default_detail = "The order must be paid first."

    def __init__(self, to: str, amount_due_q: int) -> None:
        super().__init__(f"The order cannot become {to!r} while {amount_due_q} is due.")
        self.amount_due_q = amount_due_q

    def extra(self) -> dict[str, Any]:
        return {"amount_due_q": self.amount_due_q}
