"""The Celery app of the directive tests' workers: ``celery -A tests.directives.celery_app worker``.

The broker comes from OMNIMAN_TEST_BROKER_URL; the database from DATABASE_URL
(the test database pytest-django created), through ``worker_settings``."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.directives.worker_settings")

import django  # noqa: E402

django.setup()

import omniman.tasks  # noqa: E402,F401
from omniman.testing.celery import make_app  # noqa: E402

# One queue per test run: runs that share a Redis database never take each other's tasks.
app = make_app(
    "omniman_tests",
    os.environ["OMNIMAN_TEST_BROKER_URL"],
    task_default_queue=os.environ["OMNIMAN_TEST_QUEUE"],
    task_queues=None,
)

app.set_default()
