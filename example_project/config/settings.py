"""Settings of the café example, all from the environment.

``DATABASE_URL``       a database URL (default: SQLite file ``example_project/db.sqlite3``)
``CELERY_BROKER_URL``  a broker URL; set: directives go to Celery, unset: they run in process
``REDIS_URL``          Django's cache in Redis (default: a per-process memory cache)
``DEBUG``              ``1`` for Django's debug mode (default ``1`` without ``DATABASE_URL``)
``SECRET_KEY``         required when ``DEBUG`` is off
``ALLOWED_HOSTS``      comma-separated (default ``127.0.0.1,localhost``)
``HTTPS``              ``1`` behind HTTPS: redirect plain HTTP, secure cookies, HSTS (default off,
                       so that the development server works over plain HTTP)
``HSTS_SECONDS``       with ``HTTPS=1``, the HSTS max-age (default 3600; raise it once HTTPS works)
``OMNIMAN_SILK``       ``1`` turns django-silk's request profiler on at ``/silk/``
``PG_PREPARED_STATEMENTS``  on PostgreSQL, ``0`` binds on the client and prepares nothing
                       (default on: server-side binding, prepared statements)
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


DATABASE_URL = os.environ.get("DATABASE_URL", "")
DEBUG = env_flag("DEBUG", default=not DATABASE_URL)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise RuntimeError("Set SECRET_KEY (or DEBUG=1) to run the example project.")
    SECRET_KEY = "omniman-example-insecure-key"  # noqa: S105 - debug only
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost").split(",") if h.strip()]
SILK = env_flag("OMNIMAN_SILK")

# -- HTTPS (``manage.py check --deploy`` is clean with DEBUG=0 and HTTPS=1) ----
HTTPS = env_flag("HTTPS")
if HTTPS:
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("HSTS_SECONDS") or 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    # TLS ends at the proxy in front of gunicorn: it must set X-Forwarded-Proto (and
    # drop one sent by the client), or every request looks like plain HTTP.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    # First, so that its runserver (Django's, with no 40 ms wait on kept-alive
    # connections) is the one manage.py runs: see devserver/__init__.py.
    "devserver",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "omniman",
    "omniman_api",
    "omniman.contrib.payments",
    "cafe",
]

MIDDLEWARE = [
    # Compresses lists and the order stream for clients that accept gzip (Django's
    # GZipMiddleware with its BREACH padding), and leaves answers with a strong ETag
    # alone so that If-Match keeps working: see omniman_api.middleware.
    "omniman_api.middleware.GZipMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Serves /static/ (the admin's and the pages' files) under gunicorn too.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Names the signed-in user in a cookie the POS page reads (its offline outbox is
    # kept per cashier): cafe/middleware.py.
    "cafe.middleware.CafeUserCookie",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

if SILK:
    INSTALLED_APPS.append("silk")
    MIDDLEWARE.insert(MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
                      "silk.middleware.SilkyMiddleware")
    SILKY_AUTHENTICATION = True  # the /silk/ pages need a logged-in ...
    SILKY_AUTHORISATION = True  # ... staff user
    SILKY_PYTHON_PROFILER = env_flag("OMNIMAN_SILK_PROFILER")
    SILKY_MAX_RECORDED_REQUESTS = 10_000

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

# -- database ---------------------------------------------------------------
SQLITE_OPTIONS = {
    # Writers take the lock at BEGIN instead of failing when a read upgrades to a write.
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
}

if DATABASE_URL:
    import dj_database_url

    DATABASES = {
        "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
        DATABASES["default"].setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_flag(
        "PG_PREPARED_STATEMENTS", default=True
    ):
        # psycopg binds the parameters on the server and prepares a statement once a
        # connection has run it five times: the API's hot statements are then planned
        # once per connection, not once per request (docs/guide/deployment.rst).
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": BASE_DIR / "db.sqlite3",
            "OPTIONS": SQLITE_OPTIONS,
        }
    }

# -- cache ------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# -- omniman ----------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")

DIRECTIVE_QUEUE = "omniman"

OMNIMAN = {
    "PRICING_BACKEND": "cafe.catalog.Catalog",
    "DIRECTIVE_BACKEND": "celery" if CELERY_BROKER_URL else "inline",
    "DIRECTIVE_QUEUE": DIRECTIVE_QUEUE,
}

# Payment methods (omniman.contrib.payments): cash at the counter, and a demo card
# terminal whose payments wait ``pending`` until the payments.settle directive
# captures them (it declines amounts above 1,000,000).
OMNIMAN_PAYMENTS = {
    "METHODS": {
        "cash": "omniman.contrib.payments.providers.Cash",
        "card": {"path": "omniman.contrib.payments.providers.DemoTerminal", "options": {"decline_above_q": 1_000_000}},
    },
}

# -- Celery (only used with CELERY_BROKER_URL) ------------------------------
# Directives and beat's reaper share one queue, the worker's default: a plain
# ``celery --workdir example_project -A config worker`` consumes everything.
CELERY_TASK_DEFAULT_QUEUE = DIRECTIVE_QUEUE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A broker that is down must not stall a request's publish (kombu retries ~6 s per
# message by default); the directive row stays queued and the reaper sends it.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 0, "socket_connect_timeout": 2.0}
CELERY_BEAT_SCHEDULE = {
    "omniman-reap-directives": {"task": "omniman.reap_directives", "schedule": 5.0},
}

# -- API --------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # DRF's token authentication, its query built once per process.
        "omniman_api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {"TITLE": "omniman café API", "VERSION": "0.1.0"}

# -- auth, i18n, static -----------------------------------------------------
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []  # the demo user's password is "demo"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = os.environ.get("STATIC_ROOT") or BASE_DIR / "staticfiles"
# Without collectstatic (DEBUG, runserver, tests) WhiteNoise finds the files in the apps.
WHITENOISE_USE_FINDERS = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.server": {"level": "WARNING"}},
}
