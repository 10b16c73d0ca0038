# Append to shop/settings.py
INSTALLED_APPS += [
    "rest_framework",
    "rest_framework.authtoken",
    "omniman",
    "omniman_api",
    "counter",  # your app: its omniman_handlers.py holds the directive handlers
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "omniman_api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
}

OMNIMAN = {
    # Without a Celery broker, directives run in this process right after the commit.
    "DIRECTIVE_BACKEND": "inline",
}

# SQLite only: writers take the lock at BEGIN, readers never block writers.
# Other engines keep their own OPTIONS.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;",
    })
