"""The Celery app ``config``, run from the repository root:

    celery --workdir example_project -A config worker
    celery --workdir example_project -A config beat

The settings make omniman's queue (``OMNIMAN["DIRECTIVE_QUEUE"]``) Celery's default
one, so a worker started without ``-Q`` runs the directives and beat's reaper."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
