# Append to shop/settings.py: omniman's records with their time, level and logger, on
# standard error (where runserver, gunicorn and your log collector read them).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "omniman": {"handlers": ["console"], "level": "INFO"},
        "omniman_api": {"handlers": ["console"], "level": "INFO"},
    },
}
