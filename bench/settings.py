"""Django settings for the bench project (the omniman API under /api/, bare views under /bare/).

The database comes from ``BENCH_DATABASE_URL`` (PostgreSQL) or ``BENCH_SQLITE`` (a file);
the directive backend from ``BENCH_DIRECTIVES`` (``inline`` or ``celery``)."""

from __future__ import annotations

import os
from importlib.util import find_spec

SECRET_KEY = "omniman-bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "bench.baseline.urls"
ALLOWED_HOSTS = ["*"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
WSGI_APPLICATION = "bench.baseline.wsgi.application"

# The API app is optional here: without it the bare views still run.
HAS_API = find_spec("omniman_api") is not None and find_spec("omniman_api.urls") is not None

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "omniman",
    *(["omniman_api"] if HAS_API else []),
    "bench.baseline",
]

MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]

if os.environ.get("BENCH_DATABASE_URL"):
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(
            os.environ["BENCH_DATABASE_URL"], conn_max_age=600, conn_health_checks=True
        )
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("BENCH_SQLITE", ":memory:"),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;"
                ),
            },
        }
    }

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

OMNIMAN = {
    "DIRECTIVE_BACKEND": os.environ.get("BENCH_DIRECTIVES", "inline"),
    "HANDLERS": {"bench.noop": "bench.tasks.noop_handler"},
    "AUTODISCOVER": False,
    # BENCH_ASYNC_COMMIT=0 measures the directives scenario with every worker write durable.
    "DIRECTIVE_ASYNC_COMMIT": os.environ.get("BENCH_ASYNC_COMMIT", "1") != "0",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

CELERY_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/10")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"null": {"class": "logging.NullHandler"}},
    "root": {"handlers": ["null"], "level": "WARNING"},
}
