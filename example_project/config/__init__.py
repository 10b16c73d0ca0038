"""The café's Django project; the Celery app is loaded with it so that tasks
sent from web processes use the configured broker."""

from __future__ import annotations

try:
    from config.celery import app as celery_app
except ImportError:  # celery is optional when directives run in process
    celery_app = None

__all__ = ["celery_app"]
