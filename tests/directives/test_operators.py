"""Operators: retry and fail through the service, the admin, the command; metrics."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from omniman.exceptions import NotFound, TransitionNotAllowed
from omniman.models import Directive
from omniman.services.directive_ops import directive_metrics, fail_directive, retry_directive
from omniman.services.directive_outbox import enqueue

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def failed(handlers):
    """A directive whose handler failed once, for good; the handler now succeeds."""
    state = {"broken": True, "runs": []}

    def handler(directive, ctx):
        state["runs"].append(ctx.attempt)
        if state["broken"]:
            raise RuntimeError("gateway said no")

    handlers("t.op", handler)
    with transaction.atomic():
        d = enqueue("t.op", {"order_ref": "POS-1"}, max_attempts=1)
    d.refresh_from_db()
    assert d.status == "failed"
    state["broken"] = False
    state["directive"] = d
    return state


def test_retry_queues_a_failed_directive_with_attempts_reset_and_runs_it(failed):
    d = retry_directive(failed["directive"].pk, actor="ana")
    assert (d.status, d.attempts) == ("queued", 0)  # as returned, before it ran
    d.refresh_from_db()
    assert (d.status, d.attempts) == ("done", 1)
    assert failed["runs"] == [1, 1]


def test_retry_of_anything_but_failed_is_refused(failed, handlers):
    d = failed["directive"]
    retry_directive(d.pk)
    with pytest.raises(TransitionNotAllowed):
        retry_directive(d.pk)  # done now
    with pytest.raises(NotFound):
        retry_directive(10**9)


def test_fail_marks_queued_directives_failed_and_leaves_finished_ones(handlers):
    with transaction.atomic():
        later = enqueue("t.op", {}, delay=60)
    assert fail_directive(later.pk, actor="ana", reason="customer cancelled") is True
    later.refresh_from_db()
    assert (later.status, later.last_error) == ("failed", "customer cancelled (ana)")
    assert fail_directive(later.pk) is False


def test_metrics_count_by_status_and_give_the_age_of_the_oldest_queued(failed):
    with transaction.atomic():
        waiting = enqueue("t.op", {}, delay=600)
        due = enqueue("t.op", {}, delay=600)
    now = timezone.now()
    Directive.objects.filter(pk=waiting.pk).update(created_at=now - timedelta(seconds=90))
    Directive.objects.filter(pk=due.pk).update(available_at=now - timedelta(seconds=30))
    running = Directive.objects.create(
        topic="t.op", status="running", attempts=1, lease_until=now - timedelta(seconds=1)
    )
    m = directive_metrics(now=now)
    assert (m.queued, m.running, m.done, m.failed, m.expired_leases) == (2, 1, 0, 1, 1)
    assert 89 <= m.oldest_queued_age_seconds <= 91
    assert m.oldest_due_wait_seconds == pytest.approx(30, abs=0.01)
    assert running.pk


def test_the_command_lists_retries_fails_and_prints_metrics(failed):
    d = failed["directive"]
    out = StringIO()
    call_command("omniman_directives", "list", "--status", "failed", stdout=out)
    assert out.getvalue().startswith(f"{d.pk}\tt.op\tfailed\t1/1\t")
    assert "RuntimeError: gateway said no" in out.getvalue()

    out = StringIO()
    call_command("omniman_directives", "list", "--json", stdout=out)
    row = json.loads(out.getvalue().splitlines()[0])
    assert (row["id"], row["status"], row["payload"]) == (d.pk, "failed", {"order_ref": "POS-1"})

    out = StringIO()
    call_command("omniman_directives", "metrics", "--json", stdout=out)
    assert json.loads(out.getvalue())["failed"] == 1

    out = StringIO()
    call_command("omniman_directives", "retry", "--all-failed", stdout=out)
    assert out.getvalue() == f"{d.pk}\tqueued\n"
    assert Directive.objects.get(pk=d.pk).status == "done"

    with pytest.raises(CommandError, match="1 directive"):
        call_command("omniman_directives", "retry", str(d.pk), stdout=StringIO(), stderr=StringIO())

    with transaction.atomic():
        later = enqueue("t.op", {}, delay=60)
    out = StringIO()
    call_command("omniman_directives", "fail", str(later.pk), "--reason", "stuck", stdout=out)
    assert out.getvalue() == f"{later.pk}\tfailed\n"
    assert Directive.objects.get(pk=later.pk).last_error == "stuck (omniman_directives)"


def test_the_dispatch_command_runs_due_retries(handlers, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKOFF_BASE_SECONDS": 0.0}
    runs = []

    def flaky(directive, ctx):
        runs.append(ctx.attempt)
        if ctx.attempt == 1:
            raise RuntimeError("once")

    handlers("t.flaky", flaky)
    with transaction.atomic():
        d = enqueue("t.flaky", {})
    assert Directive.objects.get(pk=d.pk).status == "queued"
    out = StringIO()
    call_command("omniman_dispatch_directives", stdout=out)
    assert out.getvalue() == "reclaimed 0 failed 0 dispatched 1 unsent 0\n"
    assert (Directive.objects.get(pk=d.pk).status, runs) == ("done", [1, 2])


def test_admin_actions_retry_and_mark_failed(failed, client, django_user_model):
    admin = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(admin)
    d = failed["directive"]
    with transaction.atomic():
        later = enqueue("t.op", {}, delay=60)
    url = "/admin/omniman/directive/"
    assert client.get(url, {"status__exact": "failed"}).status_code == 200
    response = client.post(url, {"action": "retry_selected", "_selected_action": [d.pk, later.pk]})
    assert response.status_code == 302
    assert Directive.objects.get(pk=d.pk).status == "done"
    assert Directive.objects.get(pk=later.pk).status == "queued"  # only failed ones are retried
    client.post(url, {"action": "mark_failed", "_selected_action": [d.pk, later.pk]})
    assert Directive.objects.get(pk=d.pk).status == "done"  # finished: left alone
    later.refresh_from_db()
    assert later.status == "failed" and "op" in later.last_error


def test_admin_actions_say_what_they_skipped(failed, client, django_user_model):
    admin = django_user_model.objects.create_superuser("op", "op@example.com", "pw")
    client.force_login(admin)
    d = failed["directive"]
    with transaction.atomic():
        later = enqueue("t.op", {}, delay=60)
    url = "/admin/omniman/directive/"
    response = client.post(url, {"action": "retry_selected", "_selected_action": [d.pk, later.pk]}, follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert said == ["1 directive(s) queued again.",
                    f"Skipped 1 directive(s) that are not failed (only failed ones are retried): {later.pk} (queued)."]
    response = client.post(url, {"action": "mark_failed", "_selected_action": [d.pk, later.pk]}, follow=True)
    said = [str(m) for m in response.context["messages"]]
    assert said == ["1 directive(s) marked failed.",
                    "Skipped 1 directive(s) that are already finished (only queued or running ones are failed): "
                    f"{d.pk} (done)."]


def test_fail_and_retry_of_an_unknown_id_are_both_errors(failed):
    d = failed["directive"]
    for action in ("retry", "fail"):
        err = StringIO()
        with pytest.raises(CommandError, match="1 directive"):
            call_command("omniman_directives", action, "999999", stdout=StringIO(), stderr=err)
        assert err.getvalue() == "999999\tnot_found: No such directive.\n"
    out = StringIO()
    call_command("omniman_directives", "fail", str(d.pk), stdout=out)  # already failed: not an error
    assert out.getvalue() == f"{d.pk}\tunchanged (already failed)\n"


def test_the_reaper_reports_the_runs_that_failed(handlers, settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKOFF_BASE_SECONDS": 0.0}

    def broken(directive, ctx):
        raise RuntimeError("still broken")

    handlers("t.broken", broken)
    with transaction.atomic():
        d = enqueue("t.broken", {}, max_attempts=2)
    assert Directive.objects.get(pk=d.pk).status == "queued"
    out = StringIO()
    call_command("omniman_dispatch_directives", stdout=out)
    assert Directive.objects.get(pk=d.pk).status == "failed"
    assert out.getvalue() == "reclaimed 0 failed 1 dispatched 1 unsent 0\n"


def test_the_list_ends_each_row_at_the_last_column_it_has(settings):
    with transaction.atomic():
        d = enqueue("t.none", {}, delay=60)
    out = StringIO()
    call_command("omniman_directives", "list", stdout=out)
    assert out.getvalue() == f"{d.pk}\tt.none\tqueued\t0/{d.max_attempts}\t{d.available_at:%Y-%m-%d %H:%M:%S}\n"


def test_the_command_runs_in_a_project_whose_checks_fail(settings, capsys):
    """An operator looks at the queue precisely when the project is misconfigured."""
    from django.core.management import execute_from_command_line

    settings.OMNIMAN = {"NOPE": 1}
    with pytest.raises(SystemExit):
        execute_from_command_line(["manage.py", "omniman_dispatch_directives"])
    assert "omniman.E001" in capsys.readouterr().err
    execute_from_command_line(["manage.py", "omniman_directives", "metrics", "--json"])
    assert json.loads(capsys.readouterr().out)["queued"] == 0
