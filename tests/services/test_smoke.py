from __future__ import annotations

import pytest

from omniman.models import Order
from omniman.services import commit_session, create_session, modify_session
from omniman.testing import add_line_op


@pytest.mark.django_db(transaction=True)
def test_create_modify_commit(pos):
    s = create_session(channel="pos", session_key="SESS-001")
    s = modify_session(channel="pos", session_key="SESS-001", ops=[add_line_op()])
    assert s.rev == 1 and s.total_q == 500
    r = commit_session(channel="pos", session_key="SESS-001", idempotency_key="COMMIT-1")
    assert r.body["total_q"] == 500
    r2 = commit_session(channel="pos", session_key="SESS-001", idempotency_key="COMMIT-1")
    assert r2.replayed and r2.order_ref == r.order_ref
    assert Order.objects.count() == 1
    assert Order.objects.get().channel_seq == 1
