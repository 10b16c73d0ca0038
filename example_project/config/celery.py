"""The Celery app ``config``, run from the repository root:

    celery --workdir example_project -A config worker
    celery --workdir example_project -A config beat

The settings make omniman's queue (``OMNIMAN["DIRECTIVE_QUEUE"]``) Celery's default
one, so a worker started without ``-Q`` runs the directives and beat's reaper."""

from __future__ import annotations

import os

from celery import Celery

import omniman.celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# At-least-once settings, the reaper on beat, and database connections kept between
# tasks (Celery would otherwise open one per task).
omniman.celery.configure(app)
app.autodiscover_tasks()
