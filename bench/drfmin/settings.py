"""Settings of the minimal DRF project (``DJANGO_SETTINGS_MODULE=bench.drfmin.settings``).

``BENCH_DATABASE_URL`` names its PostgreSQL database; connections are kept (60 s, health
checks on) exactly as the example project keeps them. ``BENCH_PG_PREPARED=1`` binds
parameters on the server and prepares statements, as the example does by default."""

from __future__ import annotations

import os

import dj_database_url

DEBUG = False
SECRET_KEY = "omniman-bench-drfmin-not-secret"  # noqa: S105 - a bench on loopback
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "bench.drfmin.urls"
WSGI_APPLICATION = "bench.drfmin.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "rest_framework",
    "rest_framework.authtoken",
    "bench.drfmin",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
]
DATABASES = {
    "default": dj_database_url.parse(os.environ["BENCH_DATABASE_URL"], conn_max_age=60, conn_health_checks=True)
}
if os.environ.get("BENCH_PG_PREPARED") == "1":
    # The same project with psycopg's server-side binding and prepared statements, as
    # the example's production settings have them: the bench's third side.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "UNAUTHENTICATED_USER": None,
}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}
