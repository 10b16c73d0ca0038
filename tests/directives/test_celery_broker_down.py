"""Directives when the broker goes down: commits still succeed, and the reaper
delivers every directive once Redis is back. Uses its own ``redis-server`` (on
OMNIMAN_TEST_REDIS_PORT), never the shared one, and its own worker; it lives in its
own module so that no other test's worker (and its reaper) runs meanwhile."""

from __future__ import annotations

import os
import statistics
import time

import pytest
from django.core.management import call_command

from omniman.models import Directive
from omniman.testing import make_channel
from omniman.testing.celery import current_app, redis_server, start_worker
from tests.directives.test_celery import (
    ROOT,
    _assert_each_ran_once_in_effect,
    _commit_order,
    _report,
    _wait_until,
    _worker_env,
    client_app,
)
from tests.ports import free_port

pytestmark = [pytest.mark.celery, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

#: Our own redis-server listens on a free port of this run's share of PORT_FIRST-PORT_LAST
#: (``tests/ports.py``), tried in random order.
PORT_FIRST = int(os.environ.get("OMNIMAN_TEST_REDIS_PORT", "8201"))
PORT_LAST = int(os.environ.get("OMNIMAN_TEST_REDIS_PORT_LAST", "8299"))


def test_redis_down_at_commit_then_the_reaper_delivers_everything(django_db_blocker, settings, marks):
    """Our own redis-server (not the shared one) is stopped while orders commit."""
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKEND": "celery", "DIRECTIVE_QUEUE": marks.queue}
    marks.clear()
    make_channel("pos", post_commit_directives=["test.count_a", "test.count_b"])
    with redis_server(free_port(PORT_FIRST, PORT_LAST)) as broker:
        env = _worker_env(broker.url, marks)
        proc = start_worker("tests.directives.celery_app", env=env, concurrency=2, cwd=ROOT)
        try:
            with current_app(client_app(broker.url, marks)):
                for i in range(10):
                    _commit_order("pos", f"UP{i}")
                assert _wait_until(lambda: Directive.objects.filter(status="done").count() == 20, timeout=30)
                broker.stop()
                down_times = [_commit_order("pos", f"DOWN{i}") for i in range(50)]
                down = Directive.objects.exclude(status="done")
                assert down.count() == 100
                assert set(down.values_list("status", "attempts").distinct()) == {("queued", 0)}
                time.sleep(0.5)
                assert down.filter(status="queued").count() == 100  # nothing can run them
                broker.start()
                restarted = time.monotonic()
                passes = 0
                while Directive.objects.exclude(status="done").exists() and time.monotonic() < restarted + 60:
                    call_command("omniman_dispatch_directives", verbosity=0)
                    passes += 1
                    time.sleep(0.5)
                recovered = time.monotonic() - restarted
        finally:
            proc.stop()
    assert not Directive.objects.exclude(status="done").exists(), proc.output()[-3000:]
    rows = list(Directive.objects.values_list("pk", "attempts"))
    assert len(rows) == 120
    _assert_each_ran_once_in_effect(marks, rows)
    assert max(down_times) < 1.0, down_times
    proc.remove_files()
    _report(
        f"broker down: 50 commits succeeded (max {max(down_times) * 1000:.0f} ms, "
        f"p50 {statistics.median(down_times) * 1000:.1f} ms), 100 directives queued; "
        f"after the restart the reaper ({passes} passes, one every 0.5 s) had all done in {recovered:.1f}s"
    )
