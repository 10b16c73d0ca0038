"""Publishing to Celery: a broker that is down never fails nor stalls the caller."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from omniman.directives import dispatch, reaper
from omniman.models import Directive
from omniman.services import commit_session, create_session, modify_session
from omniman.testing import add_line_op, make_channel
from tests.require import need_module

celery = need_module("celery")

from omniman.celery import CELERY_SETTINGS, configure  # noqa: E402
from omniman.testing.celery import current_app, make_app  # noqa: E402
from tests.ports import free_port  # noqa: E402

pytestmark = pytest.mark.django_db(transaction=True)

@pytest.fixture
def dead_broker(settings):
    """A broker URL on one of our ports where nothing listens (a range no test
    starts a server in)."""
    port = free_port(8100, 8199)
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKEND": "celery", "DIRECTIVE_DISPATCH_PAUSE_SECONDS": 60}
    with current_app(make_app("omniman_tests_dead", f"redis://127.0.0.1:{port}/0")) as app:
        yield app


def test_commits_succeed_fast_with_the_broker_down_and_rows_wait_for_the_reaper(dead_broker):
    make_channel("pos", post_commit_directives=["t.a", "t.b"])
    timings = []
    for i in range(5):
        create_session(channel="pos", session_key=f"S{i}")
        modify_session(channel="pos", session_key=f"S{i}", ops=[add_line_op()])
        started = time.monotonic()
        commit_session(channel="pos", session_key=f"S{i}")
        timings.append(time.monotonic() - started)
    assert max(timings) < 1.0, timings
    rows = list(Directive.objects.all())
    assert len(rows) == 10
    assert {(d.status, d.attempts) for d in rows} == {("queued", 0)}
    # Marked as never sent: the reaper's next pass sends every one (and fails again here).
    assert all(d.dispatched_at is None for d in rows)
    result = reaper.reap()
    assert (result["dispatched"], result["unsent"]) == (0, 10)


def test_the_reaper_tries_the_broker_even_while_requests_skip_it(dead_broker):
    with transaction.atomic():
        d = Directive.objects.create(topic="t.a")
    started = time.monotonic()
    assert dispatch.send([d.pk]) == [d.pk]  # fails: this process pauses publishing
    assert dispatch.send([d.pk]) == [d.pk]  # skipped without touching the broker
    assert dispatch.send([d.pk], wait_for_broker=False) == [d.pk]  # the reaper tries anyway
    assert time.monotonic() - started < 1.0


def test_configure_sets_at_least_once_worker_settings_and_the_reaper_schedule():
    app = celery.Celery("omniman_tests_conf", set_as_current=False)
    app.conf.broker_transport_options = {"visibility_timeout": 7200}
    configure(app)
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    assert app.conf.task_publish_retry is False
    assert app.conf.broker_transport_options == {
        **CELERY_SETTINGS["broker_transport_options"], "visibility_timeout": 7200
    }
    assert app.conf.beat_schedule["omniman-reap-directives"]["task"] == "omniman.reap_directives"
    assert app.conf.beat_schedule["omniman-reap-directives"]["schedule"] == 5.0
    assert app.conf.beat_schedule["omniman-housekeeping"]["task"] == "omniman.housekeeping"
    assert app.conf.beat_schedule["omniman-housekeeping"]["schedule"] == 3600.0
    assert [q.name for q in app.conf.task_queues] == ["celery", "omniman"]
    # Celery's Django fix-up would open a new database connection for every task.
    assert app.conf.get("CELERY_DB_REUSE_MAX") >= 10**6
