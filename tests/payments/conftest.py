from __future__ import annotations

from typing import Any

import pytest

from omniman.services import commit_session, create_session, modify_session
from omniman.testing import add_line_op, make_channel
from tests.api.conftest import api, operator, user  # noqa: F401  (fixtures)

_counter = iter(range(1, 10**9))


def committed_order(channel: str = "pos", lines: list[dict[str, Any]] | None = None) -> str:
    """The ref of a new committed order of ``channel`` (default: one COFFEE at 500)."""
    key = f"PAY-{next(_counter)}"
    create_session(channel=channel, session_key=key)
    modify_session(channel=channel, session_key=key, ops=lines or [add_line_op()])
    return commit_session(channel=channel, session_key=key).order_ref


@pytest.fixture
def order(pos: Any) -> str:
    """A pos order: COFFEE 2 × 500, CROISSANT 1 × 750 (total 1750)."""
    return committed_order("pos", [
        add_line_op("COFFEE", qty=2, unit_price_q=500, line_id="L1"),
        add_line_op("CROISSANT", qty=1, unit_price_q=750, line_id="L2"),
    ])


@pytest.fixture
def paid_pos(db: Any) -> Any:
    """The pos channel with payment_directives and require_paid_for."""
    return make_channel("pos", payment_directives=["receipt.print"], require_paid_for=["completed"])
