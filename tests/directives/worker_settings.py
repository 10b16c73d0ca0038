"""Settings of the Celery workers the directive tests start: the test settings, the
test database given in DATABASE_URL, the celery backend and short timings from env."""

from __future__ import annotations

import os

from tests.settings import *  # noqa: F403
from tests.settings import DATABASES, OMNIMAN

DATABASES["default"]["CONN_MAX_AGE"] = 60
# Durability against a PostgreSQL crash is not under test: skip the fsync wait.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c synchronous_commit=off"

OMNIMAN = {
    **OMNIMAN,
    "DIRECTIVE_BACKEND": "celery",
    "DIRECTIVE_QUEUE": os.environ.get("OMNIMAN_TEST_QUEUE", "omniman"),
    "AUTODISCOVER": False,
    "DIRECTIVE_LEASE_SECONDS": float(os.environ.get("OMNIMAN_TEST_LEASE", "2")),
    "DIRECTIVE_BACKOFF_BASE_SECONDS": float(os.environ.get("OMNIMAN_TEST_BACKOFF_BASE", "0.4")),
    "DIRECTIVE_BACKOFF_MAX_SECONDS": 10.0,
    "DIRECTIVE_REAPER_INTERVAL_SECONDS": float(os.environ.get("OMNIMAN_TEST_REAPER_INTERVAL", "0.25")),
    "DIRECTIVE_REDISPATCH_AFTER_SECONDS": 30.0,
    "HANDLERS": {
        "test.count_a": "tests.directives.handlers.count",
        "test.count_b": "tests.directives.handlers.count",
        "test.slow": "tests.directives.handlers.slow_first_time",
        "test.broken": "tests.directives.handlers.always_fails",
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"omniman": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}
