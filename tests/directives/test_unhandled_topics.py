"""A topic that no handler serves is loud when the channel is saved, at commit and at
each attempt, naming the topic and the known ones (the check, W101: tests/test_checks.py)."""

from __future__ import annotations

import logging

import pytest
from django.db import transaction

from omniman.exceptions import RetryLater
from omniman.registry import registry
from omniman.services import commit_session, create_session, modify_session
from omniman.services.directive_outbox import enqueue
from omniman.testing import add_line_op, make_channel

pytestmark = pytest.mark.django_db(transaction=True)


def _known() -> str:
    """The topics with a handler, as the messages list them: this test's and those of
    installed apps (omniman.contrib.payments registers payments.settle)."""
    return ", ".join(registry.topics())


def _messages(caplog, level, name="omniman"):
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name.startswith(name)]


def test_saving_a_channel_that_names_an_unhandled_topic_warns(handlers, caplog):
    handlers("receipt.print", lambda d, ctx: None)
    caplog.set_level(logging.WARNING)
    make_channel("web", post_commit_directives=["receipt.print", "invoice.send"])
    [message] = _messages(caplog, logging.WARNING, "omniman.models")
    assert "'invoice.send'" in message and "post_commit_directives" in message
    assert f"topics with a handler: {_known()}" in message and "receipt.print" in _known()


def test_a_commit_that_enqueues_an_unhandled_topic_warns(handlers, caplog):
    handlers("receipt.print", lambda d, ctx: None)
    make_channel("pos", post_commit_directives=["invoice.send"])
    create_session(channel="pos", session_key="S")
    modify_session(channel="pos", session_key="S", ops=[add_line_op()])
    caplog.set_level(logging.WARNING)
    commit_session(channel="pos", session_key="S")
    warned = _messages(caplog, logging.WARNING, "omniman.services")
    assert len(warned) == 1
    assert "'invoice.send'" in warned[0] and f"Topics with a handler: {_known()}" in warned[0]


def test_running_a_directive_without_handler_warns_with_the_known_topics(handlers, caplog):
    handlers("receipt.print", lambda d, ctx: None)
    caplog.set_level(logging.WARNING)
    with transaction.atomic():
        d = enqueue("invoice.send", {}, max_attempts=2)
    said = f"No handler registered for topic 'invoice.send' (topics with a handler: {_known()})"
    run = [r for r in caplog.records if r.name == "omniman.directives"]
    assert [(r.levelno, said in r.getMessage()) for r in run] == [(logging.WARNING, True)]
    assert f"directive {d.pk} (invoice.send) attempt 1/2 failed: {said}; next attempt in" in run[0].getMessage()
    d.refresh_from_db()
    assert d.last_error == said


def test_a_retry_is_logged_with_its_reason(handlers, caplog):
    def boom(directive, ctx):
        raise ValueError("gateway said no")

    handlers("t.boom", boom)
    handlers("t.busy", lambda d, ctx: (_ for _ in ()).throw(RetryLater("inventory busy", delay=60)))
    caplog.set_level(logging.INFO)
    with transaction.atomic():
        enqueue("t.boom", {}, max_attempts=3)
        enqueue("t.busy", {}, max_attempts=3)
    retries = [r for r in caplog.records if "next attempt in" in r.getMessage()]
    assert [(r.levelno, bool(r.exc_info)) for r in retries] == [
        (logging.WARNING, True), (logging.INFO, False)
    ]
    assert "failed: ValueError: gateway said no; next attempt" in retries[0].getMessage()
    assert "failed: inventory busy; next attempt" in retries[1].getMessage()
