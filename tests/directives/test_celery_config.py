"""A misconfigured Celery set-up is loud: ``manage.py check`` names the web side's
mistakes (omniman.E201–E203), a worker that would never run a directive refuses to
start (omniman.E204)."""

from __future__ import annotations

import contextlib
import logging
from types import SimpleNamespace

import pytest
from celery import Celery, _state
from celery.exceptions import WorkerShutdown
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from omniman.celery import check_worker_queues, configure
from omniman.checks import check_celery
from omniman.directives import dispatch


@contextlib.contextmanager
def loaded_app(app):
    """``app`` as the current Celery app (None: no app loaded, Celery's fallback)."""
    saved = _state._tls.current_app, _state.default_app
    _state._tls.current_app, _state.default_app = app, None
    try:
        yield
    finally:
        _state._tls.current_app, _state.default_app = saved


@pytest.fixture
def celery_backend(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKEND": "celery", "DIRECTIVE_QUEUE": "omniman"}


def ids(errors):
    return [e.id for e in errors]


def test_inline_backend_needs_no_celery_app(settings):
    settings.OMNIMAN = {**settings.OMNIMAN, "DIRECTIVE_BACKEND": "inline"}
    with loaded_app(None):
        assert check_celery() == []


def test_no_app_loaded_is_e202(celery_backend):
    """The project's celery.py exists but its package's __init__.py does not import it."""
    with loaded_app(None):
        errors = check_celery()
        assert ids(errors) == ["omniman.E202"]
        assert "from .celery import app as celery_app" in errors[0].hint
        with pytest.raises(SystemCheckError, match="omniman.E202"):
            call_command("check")


def test_a_web_process_without_the_app_leaves_directives_to_the_reaper(celery_backend, caplog):
    """Even where no check runs (gunicorn): nothing goes to Celery's default broker."""
    with loaded_app(None), caplog.at_level(logging.ERROR, "omniman.directives"):
        assert dispatch.send([41, 42]) == [41, 42]
    assert "omniman.E202" in caplog.text and "from .celery import app as celery_app" in caplog.text


def test_an_app_without_a_broker_is_e203(celery_backend):
    app = Celery("shop", set_as_current=False)
    with loaded_app(app):
        assert ids(check_celery()) == ["omniman.E203"]
        app.conf.broker_url = "redis://127.0.0.1:6379/0"
        assert check_celery() == []


def worker(app, consume=None):
    """What celeryd_after_setup hands over: the worker, its app's queues selected by -Q."""
    if consume:
        app.amqp.queues.select(consume)
    return SimpleNamespace(app=app)


def plain_app():
    """A celery.py as Celery's own Django guide writes it: no omniman.celery.configure."""
    return Celery("shop", broker="memory://", set_as_current=False)


def test_a_worker_that_would_never_run_a_directive_stops(celery_backend, caplog):
    with pytest.raises(WorkerShutdown), caplog.at_level(logging.CRITICAL, "omniman.celery"):
        check_worker_queues(sender="celery@host", instance=worker(plain_app()))
    assert "omniman.E204" in caplog.text
    assert "omniman.celery.configure(app)" in caplog.text
    assert "-Q omniman,celery" in caplog.text


def test_a_configured_worker_starts_quietly(celery_backend, caplog):
    with caplog.at_level(logging.WARNING, "omniman.celery"):
        check_worker_queues(sender="celery@host", instance=worker(configure(plain_app())))
        check_worker_queues(sender="celery@host", instance=worker(plain_app(), consume=["omniman"]))
    assert caplog.text == ""


def test_a_worker_that_leaves_the_queue_to_others_warns(celery_backend, caplog):
    with caplog.at_level(logging.WARNING, "omniman.celery"):
        check_worker_queues(sender="celery@host", instance=worker(configure(plain_app()), consume=["celery"]))
    assert "omniman.W204" in caplog.text


def test_silenced_checks_silence_the_worker_too(celery_backend, settings):
    settings.SILENCED_SYSTEM_CHECKS = ["omniman.E204"]
    check_worker_queues(sender="celery@host", instance=worker(plain_app()))
