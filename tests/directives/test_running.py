"""Directives in process (the inline backend): outbox, claim, retries, reaper."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from omniman import signals
from omniman.directives import dispatch, reaper, runner
from omniman.exceptions import PermanentFailure, RetryLater
from omniman.models import Directive
from omniman.services import commit_session, create_session, modify_session
from omniman.services.directive_ops import fail_directive
from omniman.services.directive_outbox import enqueue
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db(transaction=True)


def due_now():
    """Make the queued directives due (a 1 ms ``delay`` kept the commit's own send
    from running them): their ``available_at`` moved back, not waited out."""
    Directive.objects.filter(status="queued").update(available_at=timezone.now() - timedelta(milliseconds=1))


def _commit_order(channel_code: str, key: str) -> str:
    create_session(channel=channel_code, session_key=key)
    modify_session(channel=channel_code, session_key=key, ops=[add_line_op()])
    return commit_session(channel=channel_code, session_key=key).order_ref


def test_post_commit_directives_run_after_the_commit_with_a_context(handlers):
    make_channel("pos", post_commit_directives=["t.a", "t.b"])
    seen = []

    def record(directive, ctx):
        seen.append((directive.topic, directive.pk, ctx.directive_id, ctx.attempt, ctx.max_attempts,
                     directive.payload["order_ref"], ctx.idempotency_key))
        ctx.logger.info("ran %s", directive.pk)

    handlers("t.a", record)
    handlers("t.b", record)
    ref = _commit_order("pos", "S1")
    rows = list(Directive.objects.order_by("id"))
    assert [(d.topic, d.status, d.attempts) for d in rows] == [("t.a", "done", 1), ("t.b", "done", 1)]
    assert seen == [
        (d.topic, d.pk, d.pk, 1, 5, ref, f"omniman-directive-{d.pk}") for d in rows
    ]


def test_nothing_runs_before_the_transaction_commits(handlers):
    calls = []
    handlers("t.a", lambda d, ctx: calls.append(d.pk))
    with transaction.atomic():
        d = enqueue("t.a", {})
        assert calls == []
        assert Directive.objects.get(pk=d.pk).status == "queued"
    assert calls == [d.pk]
    assert Directive.objects.get(pk=d.pk).status == "done"


def test_a_rolled_back_transaction_leaves_no_row_and_sends_nothing(handlers):
    calls = []
    handlers("t.a", lambda d, ctx: calls.append(d.pk))

    class Boom(Exception):
        pass

    with pytest.raises(Boom), transaction.atomic():  # noqa: PT012 - a rolled-back block
        enqueue("t.a", {})
        raise Boom
    with transaction.atomic():
        try:
            with transaction.atomic():  # a savepoint that rolls back
                enqueue("t.a", {"inner": True})
                raise Boom
        except Boom:
            pass
    assert Directive.objects.count() == 0
    assert calls == []
    assert reaper.reap()["dispatched"] == 0


def test_enqueue_outside_a_transaction_is_refused():
    with pytest.raises(RuntimeError):
        enqueue("t.a", {})


def test_a_failing_handler_is_retried_with_backoff_then_succeeds(handlers, fast_backoff):
    attempts = []

    def flaky(directive, ctx):
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("gateway down")

    handlers("t.flaky", flaky)
    with transaction.atomic():
        d = enqueue("t.flaky", {})
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("queued", 1)
    assert "ConnectionError: gateway down" in d.last_error
    wait = (d.available_at - d.updated_at).total_seconds()
    assert 0.01 <= wait <= 0.02 + 0.001  # base × 2^0 × jitter in [0.5, 1]
    deadline = time.monotonic() + 5
    while Directive.objects.get(pk=d.pk).status != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
        reaper.reap()
    d.refresh_from_db()
    assert (d.status, d.attempts, attempts) == ("done", 3, [1, 2, 3])


def test_an_always_failing_handler_ends_failed_after_max_attempts_with_growing_waits(
    handlers, fast_backoff
):
    handlers("t.broken", lambda d, ctx: 1 / 0)
    failed = []
    signals.directive_failed.connect(lambda sender, directive, **kw: failed.append(directive.pk),
                                     dispatch_uid="t-failed", weak=False)
    try:
        with transaction.atomic():
            d = enqueue("t.broken", {})
        waits = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = Directive.objects.get(pk=d.pk)
            if row.status == "failed":
                break
            if row.status == "queued" and len(waits) < row.attempts:
                waits.append((row.available_at - row.updated_at).total_seconds())
            time.sleep(0.005)
            reaper.reap()
    finally:
        signals.directive_failed.disconnect(dispatch_uid="t-failed")
    row.refresh_from_db()
    assert (row.status, row.attempts) == ("failed", 4)
    assert "ZeroDivisionError" in row.last_error
    assert failed == [d.pk]
    assert len(waits) == 3
    for n, wait in enumerate(waits, start=1):
        bound = min(0.2, 0.02 * 2 ** (n - 1))
        assert bound / 2 - 0.001 <= wait <= bound + 0.001, (n, waits)
    assert waits[0] <= waits[1] <= waits[2]


def test_retry_later_sets_its_own_delay_and_permanent_failure_stops(handlers):
    handlers("t.later", lambda d, ctx: (_ for _ in ()).throw(RetryLater("not yet", delay=30)))
    handlers("t.never", lambda d, ctx: (_ for _ in ()).throw(PermanentFailure("card declined")))
    with transaction.atomic():
        later = enqueue("t.later", {})
        never = enqueue("t.never", {})
    later.refresh_from_db()
    never.refresh_from_db()
    assert later.status == "queued" and later.last_error == "not yet"
    assert 29 <= (later.available_at - later.updated_at).total_seconds() <= 30.01
    assert (never.status, never.attempts, never.last_error) == ("failed", 1, "card declined")
    assert reaper.reap()["dispatched"] == 0  # the retry is not due for 30 s


def test_a_topic_without_handler_is_retried_then_fails():
    with transaction.atomic():
        d = enqueue("t.nobody", {}, max_attempts=1)
    d.refresh_from_db()
    assert d.status == "failed"
    assert "No handler registered for topic 't.nobody'" in d.last_error


def test_a_claimed_directive_is_not_claimed_again(handlers):
    with transaction.atomic():
        d = enqueue("t.unregistered-yet", {}, delay=0.001)
    due_now()
    first = runner.claim(d.pk)
    assert first is not None and first.attempts == 1 and first.lease_until is not None
    assert runner.claim(d.pk) is None
    assert runner.run_directive(d.pk) is None
    assert Directive.objects.get(pk=d.pk).attempts == 1


def test_handler_writes_roll_back_when_it_fails(handlers, pos):
    from omniman.models import Session

    def writes_then_fails(directive, ctx):
        Session.objects.filter(session_key="S1").update(handle_ref="touched")
        raise PermanentFailure("no")

    create_session(channel="pos", session_key="S1")
    handlers("t.w", writes_then_fails)
    with transaction.atomic():
        enqueue("t.w", {})
    assert Session.objects.get(session_key="S1").handle_ref == ""
    assert Directive.objects.get().status == "failed"


@pytest.mark.postgres
def test_handler_writes_roll_back_when_it_lost_its_directive(handlers, pos):
    """An operator marks a running directive failed: the handler's writes do not stick."""
    from omniman.models import Session

    def operator(pk, out):
        try:
            out.append(fail_directive(pk, actor="op"))
        finally:
            connection.close()

    def writes_while_failed_by_operator(directive, ctx):
        Session.objects.filter(session_key="S1").update(handle_ref="touched")
        out = []
        thread = threading.Thread(target=operator, args=(directive.pk, out))
        thread.start()
        thread.join(10)
        assert out == [True]

    create_session(channel="pos", session_key="S1")
    handlers("t.w", writes_while_failed_by_operator)
    with transaction.atomic():
        d = enqueue("t.w", {})
    d.refresh_from_db()
    assert d.status == "failed" and d.last_error == "marked failed by an operator (op)"
    assert Session.objects.get(session_key="S1").handle_ref == ""


def test_non_atomic_handlers_keep_their_writes(handlers, pos):
    from omniman.models import Session

    @runner.non_atomic
    def writes_then_fails(directive, ctx):
        Session.objects.filter(session_key="S1").update(handle_ref="touched")
        raise PermanentFailure("no")

    create_session(channel="pos", session_key="S1")
    handlers("t.w", writes_then_fails)
    with transaction.atomic():
        enqueue("t.w", {})
    assert Session.objects.get(session_key="S1").handle_ref == "touched"


def test_the_reaper_reclaims_an_expired_lease_and_runs_it_again(handlers):
    runs = []
    handlers("t.a", lambda d, ctx: runs.append(ctx.attempt))
    with transaction.atomic():
        d = enqueue("t.a", {}, delay=0.001)
    due_now()
    assert runner.claim(d.pk) is not None  # a worker claims it, then dies
    Directive.objects.filter(pk=d.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    result = reaper.reap()
    assert result["reclaimed"] == 1 and result["dispatched"] == 1
    d.refresh_from_db()
    assert (d.status, d.attempts, runs) == ("done", 2, [2])


def test_a_reclaimed_lease_is_due_and_sent_again_at_once_not_after_the_grace(handlers):
    """A worker took a due, sent directive and died. The reaper puts it back as due
    now, so the same pass sends it again: left at its old ``available_at``, it would
    count as sent since due and wait ``DIRECTIVE_REDISPATCH_AFTER_SECONDS``."""
    runs = []
    handlers("t.a", lambda d, ctx: runs.append(ctx.attempt))
    with transaction.atomic():
        d = enqueue("t.a", {}, delay=3600)  # not due: the commit's send runs nothing
    due, sent = timezone.now() - timedelta(seconds=10), timezone.now() - timedelta(seconds=5)
    Directive.objects.filter(pk=d.pk).update(available_at=due, dispatched_at=sent)
    assert runner.claim(d.pk) is not None  # the worker that got the message, then died
    Directive.objects.filter(pk=d.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    before = timezone.now()
    assert reaper.reap() == {"failed": 0, "reclaimed": 1, "dispatched": 1, "unsent": 0}
    d.refresh_from_db()
    assert (d.status, d.attempts, runs) == ("done", 2, [2])
    assert d.available_at >= before


def test_a_lease_that_expires_on_the_last_attempt_fails(handlers):
    with transaction.atomic():
        d = enqueue("t.a", {}, max_attempts=1, delay=0.001)
    due_now()
    assert runner.claim(d.pk) is not None
    Directive.objects.filter(pk=d.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    failed = []
    signals.directive_failed.connect(lambda sender, directive, **kw: failed.append(directive.pk),
                                     dispatch_uid="t-lease", weak=False)
    try:
        assert reaper.reap()["failed"] == 1
    finally:
        signals.directive_failed.disconnect(dispatch_uid="t-lease")
    d.refresh_from_db()
    assert d.status == "failed" and "lease expired" in d.last_error
    assert failed == [d.pk]


def test_the_reaper_sends_a_dispatched_row_again_only_after_the_grace(handlers, settings):
    """A row sent at commit whose message was lost waits for the grace; a row whose
    send failed is sent at the next pass."""
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_REDISPATCH_AFTER_SECONDS": 60}
    runs = []
    handlers("t.a", lambda d, ctx: runs.append(d.pk))
    with transaction.atomic():
        lost = enqueue("t.a", {"n": 1})
        failed_send = enqueue("t.a", {"n": 2})
        transaction.on_commit(lambda: None)
    # Simulate: the commit's dispatch was lost (message dropped) for both rows,
    # and the second one's publish was known to fail.
    Directive.objects.update(status="queued", attempts=0, dispatched_at=timezone.now())
    dispatch.mark_unsent([failed_send.pk])
    runs.clear()
    assert reaper.reap()["dispatched"] == 1
    assert runs == [failed_send.pk]
    # The grace passes (the row's send moved back, rather than a sleep racing the clock).
    Directive.objects.filter(pk=lost.pk).update(dispatched_at=timezone.now() - timedelta(seconds=61))
    assert reaper.reap()["dispatched"] == 1
    assert runs == [failed_send.pk, lost.pk]
    assert set(Directive.objects.values_list("status", flat=True)) == {"done"}


@pytest.mark.postgres
def test_a_directive_costs_two_statements_on_postgresql(handlers):
    """Claim (UPDATE … RETURNING) and outcome; no transaction for a handler that
    wrote nothing."""
    handlers("t.outside", lambda d, ctx: None)
    with transaction.atomic():
        d = enqueue("t.outside", {}, delay=0.001)
    due_now()
    with CaptureQueriesContext(connection) as queries:
        assert runner.run_directive(d.pk) == "done"
    # Django logs BEGIN/COMMIT around the handler; psycopg sends neither when the
    # handler ran no statement. The outcome comes after, on its own.
    assert [q["sql"].split()[0] for q in queries.captured_queries] == ["UPDATE", "BEGIN", "COMMIT", "UPDATE"]


def _claim_and_outcome_sql(pk):
    with CaptureQueriesContext(connection) as queries:
        status = runner.run_directive(pk)
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("UPDATE")]
    return status, updates


def _synchronous_commit():
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_the_claim_and_a_bare_outcome_commit_without_waiting_for_the_wal_flush(handlers):
    """Both are omniman's own bookkeeping, each its own transaction: losing one in a
    database crash only runs the directive again. The setting lasts for that one
    statement: the handler and the next statement run as the host configured."""
    seen = []
    server_setting = _synchronous_commit()  # "on" unless the server was configured otherwise
    handlers("t.outside", runner.non_atomic(lambda d, ctx: seen.append(_synchronous_commit())))
    with transaction.atomic():
        d = enqueue("t.outside", {}, delay=0.001)
    due_now()
    status, (claim, outcome) = _claim_and_outcome_sql(d.pk)
    assert status == "done"
    assert "synchronous_commit" in claim and "synchronous_commit" in outcome
    assert seen == [server_setting] and _synchronous_commit() == server_setting


@pytest.mark.postgres
def test_the_outcome_of_a_handler_that_wrote_commits_durably_with_its_writes(handlers):
    def write(d, ctx):
        Directive.objects.filter(pk=d.pk).update(last_error="written by the handler")

    handlers("t.writes", write)
    with transaction.atomic():
        d = enqueue("t.writes", {}, delay=0.001)
    due_now()
    status, (claim, handler_write, outcome) = _claim_and_outcome_sql(d.pk)
    assert status == "done"
    assert "synchronous_commit" in claim
    assert "synchronous_commit" not in handler_write and "synchronous_commit" not in outcome


@pytest.mark.postgres
@pytest.mark.parametrize("how", ["setting off", "inside a transaction"])
def test_every_worker_write_is_durable_when_the_setting_is_off_or_inside_a_transaction(
        handlers, settings, how):
    handlers("t.outside", lambda d, ctx: None)
    server_setting = _synchronous_commit()
    if how == "setting off":
        settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_ASYNC_COMMIT": False}
    with transaction.atomic():
        d = enqueue("t.outside", {}, delay=0.001)
    due_now()
    if how == "setting off":
        status, updates = _claim_and_outcome_sql(d.pk)
    else:
        with transaction.atomic():
            status, updates = _claim_and_outcome_sql(d.pk)
            assert _synchronous_commit() == server_setting
    assert status == "done" and len(updates) == 2
    assert not [sql for sql in updates if "synchronous_commit" in sql]


def _lagging_clock(monkeypatch, seconds):
    """This process's clock, ``seconds`` behind the one that wrote the rows."""
    real = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real() - timedelta(seconds=seconds))


def test_a_worker_whose_clock_lags_claims_what_its_sender_found_due(handlers, monkeypatch):
    """The sender (the committing request, the reaper) says when it found the
    directive due; a worker 2 s behind would otherwise find every fresh directive not
    due yet and leave it to the reaper's re-send, a minute later."""
    from omniman.tasks import run_directive_task

    runs = []
    handlers("t.a", lambda d, ctx: runs.append(d.pk))
    with transaction.atomic():
        first = enqueue("t.a", {}, delay=0.001)
        second = enqueue("t.a", {}, delay=0.001)
    due_now()
    sent_at = timezone.now()
    with monkeypatch.context() as m:
        _lagging_clock(m, 2)
        assert runner.run_directive(first.pk) is None  # not due by its own clock
        assert runner.run_directive(first.pk, due_by=sent_at) == "done"
        assert run_directive_task.run(second.pk, sent_at.timestamp()) == "done"
    assert runs == [first.pk, second.pk]


def test_a_message_sent_before_a_retry_does_not_run_it_early(handlers):
    def later(d, ctx):
        raise RetryLater("gateway busy", delay=60)

    handlers("t.later", later)
    with transaction.atomic():
        d = enqueue("t.later", {}, delay=0.001)
    due_now()
    sent_at = timezone.now()
    assert runner.run_directive(d.pk, due_by=sent_at) == "queued"
    # The same message delivered again (a redelivery, a reaper's re-send racing it).
    assert runner.run_directive(d.pk, due_by=sent_at) is None
    d.refresh_from_db()
    assert d.status == "queued" and d.attempts == 1
