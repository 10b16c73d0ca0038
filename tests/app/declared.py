"""Entries that tests declare in ``OMNIMAN`` by dotted path only (never imported by
the tests themselves), to see that a fresh process finds them."""

from __future__ import annotations

from typing import Any


def swap_to_coffee(*, channel: Any, issue: Any, action_id: str) -> list[dict[str, Any]]:
    return [{"op": "replace_sku", "line_id": "L1", "sku": "COFFEE"}]


def ship(directive: Any, ctx: Any) -> None:
    return None


def no_discount(view: Any) -> list[Any]:
    return []


def nothing_wrong(*, channel: Any, state: Any, stage: str) -> list[Any]:
    return []
