"""What the kitchen display shows besides the orders: the POS orders cancelled
lately, each with the cashier's reason, so the kitchen stops making them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from cafe.models import KitchenNotice

#: How long a cancellation stays on the display.
SHOWN_FOR = timedelta(hours=2)


def note_cancelled(order_ref: str, reason: str) -> None:
    """Record that ``order_ref`` was cancelled; a second call changes nothing."""
    KitchenNotice.objects.get_or_create(order_ref=order_ref, defaults={"reason": reason[:500]})


def recent_cancellations(limit: int = 20) -> list[dict[str, Any]]:
    since = timezone.now() - SHOWN_FOR
    return [
        {"order_ref": n.order_ref, "reason": n.reason, "at": n.created_at.isoformat()}
        for n in KitchenNotice.objects.filter(created_at__gte=since)[:limit]
    ]
