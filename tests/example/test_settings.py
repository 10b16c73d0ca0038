"""The example's settings follow the environment."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from tests.example.harness import EXAMPLE, example_env

PROBE = """
import json, django
from django.conf import settings
django.setup()
from config.celery import app
db = settings.DATABASES["default"]
print(json.dumps({
    "engine": db["ENGINE"], "name": str(db["NAME"]), "options": db.get("OPTIONS", {}),
    "conn_max_age": db.get("CONN_MAX_AGE"), "health": db.get("CONN_HEALTH_CHECKS"),
    "backend": settings.OMNIMAN["DIRECTIVE_BACKEND"], "cache": settings.CACHES["default"]["BACKEND"],
    "debug": settings.DEBUG, "hosts": settings.ALLOWED_HOSTS, "silk": "silk" in settings.INSTALLED_APPS,
    "broker": app.conf.broker_url, "acks_late": app.conf.task_acks_late,
    "reject_lost": app.conf.task_reject_on_worker_lost, "prefetch": app.conf.worker_prefetch_multiplier,
    "beat": {k: v["task"] for k, v in app.conf.beat_schedule.items()},
    "default_queue": app.conf.task_default_queue, "directive_queue": settings.OMNIMAN["DIRECTIVE_QUEUE"],
    "middleware": settings.MIDDLEWARE,
}))
"""


def probe(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=EXAMPLE, capture_output=True, text=True, timeout=120,
        env=example_env(DJANGO_SETTINGS_MODULE="config.settings", **env),
    )


def test_defaults_need_no_server() -> None:
    """Nothing set: SQLite in the project folder, directives in process, a memory cache."""
    result = probe()
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["engine"] == "django.db.backends.sqlite3"
    assert got["name"] == str(EXAMPLE / "db.sqlite3")
    assert got["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in got["options"]["init_command"]
    assert "busy_timeout=5000" in got["options"]["init_command"]
    assert got["backend"] == "inline"
    assert got["cache"] == "django.core.cache.backends.locmem.LocMemCache"
    assert got["debug"] is True
    assert got["silk"] is False
    # Lists go out gzip-compressed, ETag answers as they are (tests/api/test_gzip.py).
    assert got["middleware"][0] == "omniman_api.middleware.GZipMiddleware"


def test_production_environment() -> None:
    result = probe(
        DATABASE_URL="postgres://shop@db.internal:5432/shop",
        CELERY_BROKER_URL="redis://cache.internal:6379/1",
        REDIS_URL="redis://cache.internal:6379/2",
        SECRET_KEY="s3cret-for-the-test",
        ALLOWED_HOSTS="shop.example.com, api.example.com",
        OMNIMAN_SILK="1",
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["engine"] == "django.db.backends.postgresql"
    assert got["conn_max_age"] >= 60
    assert got["health"] is True
    assert got["backend"] == "celery"
    assert got["broker"] == "redis://cache.internal:6379/1"
    assert got["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert got["debug"] is False  # off by default with a DATABASE_URL
    assert got["hosts"] == ["shop.example.com", "api.example.com"]
    assert got["silk"] is True
    assert (got["acks_late"], got["reject_lost"], got["prefetch"]) == (True, True, 1)
    assert {"omniman.reap_directives", "omniman.housekeeping"} <= set(got["beat"].values())
    # A worker started without -Q takes the default queue: directives and the reaper.
    assert got["default_queue"] == got["directive_queue"] == "omniman"


def test_debug_off_needs_a_secret_key() -> None:
    result = probe(DEBUG="0")
    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def manage_check_deploy(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=EXAMPLE, capture_output=True, text=True, timeout=120,
        env=example_env(DEBUG="0", SECRET_KEY="k" * 20 + "-a-long-random-production-secret-key-0123456789", **env),
    )


def test_check_deploy_is_clean_behind_https() -> None:
    plain = manage_check_deploy()
    assert plain.returncode == 1
    warned = sorted(set(re.findall(r"security\.W\d+", plain.stderr)))
    assert warned == ["security.W004", "security.W008", "security.W012", "security.W016"]
    https = manage_check_deploy(HTTPS="1")
    assert https.returncode == 0, https.stderr
    assert "no issues" in https.stdout


REQUESTS = """
import json, django
django.setup()
from django.test import Client
from django.conf import settings
plain = Client().get("/api/schema/?format=json")
proxied = Client().get("/api/schema/?format=json", HTTP_X_FORWARDED_PROTO="https")
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "proxied": [proxied.status_code, proxied.get("Strict-Transport-Security")],
    "secure_cookies": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE],
}))
"""


def requests_with(**env: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", REQUESTS], cwd=EXAMPLE, capture_output=True, text=True, timeout=120,
        env=example_env(DJANGO_SETTINGS_MODULE="config.settings", ALLOWED_HOSTS="testserver", **env),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_https_redirects_plain_http_and_sends_hsts_while_dev_mode_stays_plain() -> None:
    dev = requests_with()
    assert dev == {"plain": [200, None], "proxied": [200, None], "secure_cookies": [False, False]}
    https = requests_with(HTTPS="1", HSTS_SECONDS="600")
    assert https["plain"] == [301, "https://testserver/api/schema/?format=json"]
    assert https["proxied"] == [200, "max-age=600; includeSubDomains; preload"]
    assert https["secure_cookies"] == [True, True]
