"""Options a handler gives its topic: max_attempts for new directives, its own lease."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from omniman.checks import check_settings
from omniman.directives import reaper, runner
from omniman.exceptions import HandlerError
from omniman.models import Directive
from omniman.registry import Registry
from omniman.services import commit_session, create_session, modify_session
from omniman.services.directive_outbox import enqueue
from omniman.testing import add_line_op, make_channel

db = pytest.mark.django_db(transaction=True)


def due_now():
    """Make the queued directives due (a 1 ms ``delay`` kept the commit's own send
    from running them): their ``available_at`` moved back, not waited out."""
    Directive.objects.filter(status="queued").update(available_at=timezone.now() - timedelta(milliseconds=1))


@db
def test_a_topics_max_attempts_is_the_default_of_its_new_directives(handlers):
    handlers("t.twice", lambda d, ctx: None, max_attempts=2)
    handlers("t.plain", lambda d, ctx: None)
    make_channel("pos", post_commit_directives=["t.twice", "t.plain"])
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add_line_op()])
    commit_session(channel="pos", session_key="S")
    with transaction.atomic():
        explicit = enqueue("t.twice", {}, max_attempts=7)
    by_topic = dict(Directive.objects.exclude(pk=explicit.pk).values_list("topic", "max_attempts"))
    assert by_topic == {"t.twice": 2, "t.plain": 5}  # 5: DIRECTIVE_MAX_ATTEMPTS
    assert Directive.objects.get(pk=explicit.pk).max_attempts == 7


@db
def test_a_failing_handler_stops_after_its_topics_max_attempts(handlers, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKOFF_BASE_SECONDS": 0.001,
                        "DIRECTIVE_BACKOFF_MAX_SECONDS": 0.001}
    runs = []

    def broken(d, ctx):
        runs.append(ctx.attempt)
        raise RuntimeError("down")

    handlers("t.fragile", broken, max_attempts=2)
    with transaction.atomic():
        d = enqueue("t.fragile", {})
    due_now()  # the 1 ms backoff, moved back rather than waited out
    reaper.reap()
    d.refresh_from_db()
    assert runs == [1, 2] and d.status == "failed" and d.attempts == 2


def _lease_left(pk):
    lease = Directive.objects.values_list("lease_until", flat=True).get(pk=pk)
    return (lease - timezone.now()).total_seconds()


@db
@pytest.mark.parametrize("atomic", [
    # SQLite's single writer makes the reaper wait for the handler's transaction.
    pytest.param(True, id="atomic handler", marks=pytest.mark.postgres),
    pytest.param(False, id="non_atomic handler"),
])
def test_a_long_handler_with_its_own_lease_is_not_given_to_another_worker(handlers, settings, atomic):
    """With the setting's lease (50 ms here) the reaper takes a running handler's
    directive away and the outcome is not recorded; with the topic's lease (1 h) it
    does not. The handler runs until another process's reaper pass has ended (an
    event, not a sleep), and that pass runs once the setting's lease has expired."""
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_LEASE_SECONDS": 0.05}
    seen = {}
    started, reaped = threading.Event(), threading.Event()

    def slow(d, ctx):
        seen[d.topic] = _lease_left(d.pk)
        started.set()
        assert reaped.wait(TIMEOUT), "the reaper pass never came"

    wrap = (lambda fn: fn) if atomic else runner.non_atomic
    handlers("t.long", wrap(slow), lease_seconds=3600)
    handlers("t.short", wrap(slow))
    with transaction.atomic():
        long_, short = enqueue("t.long", {}, delay=0.001), enqueue("t.short", {}, delay=0.001)
    Directive.objects.update(available_at=timezone.now() - timedelta(seconds=1))

    reaped_counts = []
    for d in (long_, short):
        started.clear()
        reaped.clear()
        thread = _elsewhere(lambda pk=d.pk: _reap_when_running_and_past_the_setting_lease(
            pk, started, reaped, reaped_counts))
        status = runner.run_directive(d.pk)
        thread.join(TIMEOUT)
        d.refresh_from_db()
        if d.topic == "t.long":
            assert status == "done" and d.status == "done" and d.attempts == 1
        else:
            assert status is None and d.status == "queued"  # back in the queue for another worker
    assert 3500 < seen["t.long"] <= 3600 and seen["t.short"] <= 0.05
    assert reaped_counts == [0, 1]


TIMEOUT = 30  # seconds: a handler or reaper that never gets its turn fails the test


def _elsewhere(fn):
    """``fn`` on a thread of its own (another process's reaper), with its own connection."""

    def run():
        try:
            fn()
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _reap_when_running_and_past_the_setting_lease(pk, started, reaped, out):
    """One reaper pass once the handler runs and the claim's own lease (the setting's
    50 ms) has expired; then let the handler end."""
    try:
        assert started.wait(TIMEOUT)
        claimed_at = Directive.objects.values_list("updated_at", flat=True).get(pk=pk)
        while timezone.now() <= claimed_at + timedelta(seconds=0.05):
            time.sleep(0.005)  # the lease is a duration on the clock: wait it out
        out.append(_reap_elsewhere())
    finally:
        reaped.set()


def _reap_elsewhere():
    return reaper.reap(limit=0)["reclaimed"]


@db
def test_a_lease_taken_before_the_handler_starts_runs_nothing(handlers, settings):
    ran = []
    handlers("t.long", lambda d, ctx: ran.append(d.pk), lease_seconds=3600)
    with transaction.atomic():
        d = enqueue("t.long", {}, delay=0.001)
    due_now()
    claimed = runner.claim(d.pk)
    Directive.objects.filter(pk=d.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    reaper.reap(limit=0)  # reclaimed: queued again, the claim no longer owns it
    assert runner._set_lease(claimed, 3600) is False
    assert ran == []


@pytest.mark.parametrize("options", [
    {"max_attempts": 0}, {"max_attempts": -1}, {"max_attempts": True}, {"max_attempts": 1.5},
    {"max_attempts": "3"}, {"lease_seconds": 0}, {"lease_seconds": -5}, {"lease_seconds": "60"},
    {"lease_seconds": float("nan")}, {"lease_seconds": False},
])
def test_a_bad_option_is_refused_at_registration(options):
    with pytest.raises(HandlerError, match="must be a number"):
        Registry().register_handler("t.x", lambda d, ctx: None, **options)


def test_registering_again_with_other_options_is_an_error():
    registry = Registry()

    def handler(d, ctx):
        return None

    registry.register_handler("t.x", handler, max_attempts=3)
    registry.register_handler("t.x", handler, max_attempts=3)  # an app imported twice
    with pytest.raises(HandlerError, match="already registered"):
        registry.register_handler("t.x", handler, max_attempts=4)
    assert registry.options_for("t.x").max_attempts == 3
    assert registry.options_for("t.other").max_attempts is None


def test_options_by_dotted_path_in_settings(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "HANDLERS": {
        "t.counted": {"path": "tests.directives.handlers.count", "max_attempts": 3, "lease_seconds": 90},
        "t.plain": "tests.directives.handlers.count",
    }}
    registry = Registry()
    assert registry.get_handler("t.counted") is registry.get_handler("t.plain")
    assert (registry.options_for("t.counted").max_attempts, registry.options_for("t.counted").lease_seconds) == (3, 90)
    assert check_settings() == []


@pytest.mark.parametrize("entry", [
    {"max_attempts": 3},
    {"path": "tests.directives.handlers.count", "retries": 3},
    {"path": "tests.directives.handlers.count", "lease_seconds": 0},
])
def test_a_bad_handler_entry_in_settings_is_e004(settings, entry):
    settings.OMNIMAN = {**settings.OMNIMAN, "HANDLERS": {"t.x": entry}}
    assert [e.id for e in check_settings()] == ["omniman.E004"]
