"""The check loop in process: modify → check directive → result for that rev → commit."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from omniman.exceptions import CommitBlocked, RetryLater
from omniman.models import Directive, Session
from omniman.services import (
    apply_check_result,
    commit_session,
    create_session,
    get_session,
    modify_session,
)
from omniman.testing import add_line_op

pytestmark = pytest.mark.django_db(transaction=True)

OUT_OF_STOCK = {"SOLDOUT"}


class StockCheck:
    """A stock handler as a host would write it: read the session, write the check for
    the rev in the payload (a stale rev is ignored by the kernel)."""

    def __init__(self):
        self.busy = False
        self.calls = []

    def __call__(self, directive, ctx):
        p = directive.payload
        self.calls.append(p["rev"])
        if self.busy:
            raise RetryLater("inventory service busy", delay=0)
        session = get_session(p["channel_code"], p["session_key"])
        missing = sorted({line["sku"] for line in session.items} & OUT_OF_STOCK)
        return apply_check_result(
            channel=p["channel_code"], session_key=p["session_key"], rev=p["rev"], code=p["check"],
            ok=not missing, detail={"unavailable": missing},
        )


@pytest.fixture
def stock(handlers, web):
    check = StockCheck()
    handlers("stock.check", check)
    handlers("payment.capture", lambda d, ctx: None)
    handlers("notification.order_committed", lambda d, ctx: None)
    return check


def _modify(key, *ops):
    rev = get_session("web", key).rev
    return modify_session(channel="web", session_key=key, ops=list(ops), expected_rev=rev)


def _checks(key):
    return get_session("web", key).checks


def test_a_check_written_for_the_rev_allows_the_commit_and_a_later_modify_makes_it_stale(stock):
    create_session(channel="web", session_key="W1")
    _modify("W1", add_line_op("COFFEE", unit_price_q=None))
    assert _checks("W1")["stock"]["rev"] == 1 and _checks("W1")["stock"]["ok"] is True

    stock.busy = True  # the next check does not come back before the client commits
    _modify("W1", add_line_op("CAKE", unit_price_q=None))
    assert _checks("W1")["stock"]["rev"] == 1
    with pytest.raises(CommitBlocked) as blocked:
        commit_session(channel="web", session_key="W1")
    assert [r.code for r in blocked.value.reasons] == ["stale_check"]

    stock.busy = False
    call_command("omniman_dispatch_directives", verbosity=0)  # the reaper runs the retry
    assert _checks("W1")["stock"] == {**_checks("W1")["stock"], "rev": 2, "ok": True}
    result = commit_session(channel="web", session_key="W1")
    assert result.body["total_q"] == 1700
    post = Directive.objects.filter(topic__in=["payment.capture", "notification.order_committed"])
    assert {(d.topic, d.status, d.payload["order_ref"]) for d in post} == {
        ("payment.capture", "done", result.order_ref),
        ("notification.order_committed", "done", result.order_ref),
    }
    assert set(Directive.objects.filter(topic="stock.check").values_list("status", flat=True)) == {"done"}


def test_an_out_of_stock_line_fails_the_check_and_blocks_the_commit(stock):
    create_session(channel="web", session_key="W2")
    _modify("W2", add_line_op("SOLDOUT", unit_price_q=None))
    check = _checks("W2")["stock"]
    assert (check["rev"], check["ok"], check["detail"]) == (1, False, {"unavailable": ["SOLDOUT"]})
    with pytest.raises(CommitBlocked) as blocked:
        commit_session(channel="web", session_key="W2")
    assert [r.code for r in blocked.value.reasons] == ["failed_check"]


def test_a_late_result_for_an_old_rev_is_ignored(stock):
    create_session(channel="web", session_key="W3")
    _modify("W3", add_line_op("COFFEE", unit_price_q=None))
    _modify("W3", add_line_op("SOLDOUT", unit_price_q=None))
    assert _checks("W3")["stock"]["rev"] == 2 and _checks("W3")["stock"]["ok"] is False
    # The check directive of rev 1 runs again late (a redelivery): it must not win.
    assert apply_check_result(channel="web", session_key="W3", rev=1, code="stock", ok=True) is False
    assert _checks("W3")["stock"]["rev"] == 2 and _checks("W3")["stock"]["ok"] is False
    assert Session.objects.get(session_key="W3").rev == 2
