"""System checks on the ``OMNIMAN`` setting. The ids never change meaning:

- ``omniman.E001``: an unknown key in ``OMNIMAN``;
- ``omniman.E002``: a value of the wrong type or out of range (or ``OMNIMAN`` not a dict);
- ``omniman.E003``: a dotted path (pricing backend, handler, ...) that does not import;
- ``omniman.E004``: a handler given as a dict without a ``path``, or with unknown or
  invalid options;
- ``omniman.E005``: a custom op that cannot be registered: its ``OPS`` path does not
  name a ``CustomOp``, or its name clashes with a built-in op or another custom op;
- ``omniman.E006``: a SQLite database older than 3.35, which lacks the ``RETURNING``
  and ``ON CONFLICT DO UPDATE`` statements a commit uses (stream position, ticket number);
- ``omniman.W101``: a channel in the database names a directive topic (in
  ``post_commit_directives``, ``status_directives``, ``session_end_directives`` or
  ``checks``) that has no handler. A database check: it
  runs with ``check --database default`` and before ``migrate``, as Django's own.

``omniman_api.checks`` adds the API's (``omniman.E101``, ``omniman.E102``).

With ``DIRECTIVE_BACKEND = "celery"`` (:func:`check_celery`):

- ``omniman.E201``: Celery is not installed;
- ``omniman.E202``: this process would send directives through Celery's default app
  (the project's app is not loaded with the project);
- ``omniman.E203``: the Celery app has no broker URL.

``omniman.E204`` and ``omniman.W204`` are not system checks: a worker reports them as
it starts (:func:`omniman.celery.check_worker_queues`).
"""

from __future__ import annotations

from sqlite3 import sqlite_version, sqlite_version_info
from typing import Any

from django.core.checks import Error
from django.core.checks import Warning as CheckWarning
from django.db import DatabaseError, connections, router

from omniman import conf
from omniman.celery import is_fallback_app
from omniman.exceptions import HandlerError
from omniman.ops import OP_FIELDS, CustomOp
from omniman.registry import HandlerOptions, registry


def check_settings(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    errors = []
    for key, message in conf.problems():
        known = key in conf.DEFAULTS or key == "OMNIMAN"
        errors.append(Error(
            message,
            hint="See the settings reference in omniman's docs." if not known else None,
            id="omniman.E002" if known else "omniman.E001",
        ))
    if errors:
        return errors
    paths = [conf.get("PRICING_BACKEND")] if conf.get("PRICING_BACKEND") else []
    for topic, entry in conf.get("HANDLERS").items():
        try:
            paths.append(HandlerOptions.from_setting(topic, entry)[0])
        except HandlerError as exc:
            errors.append(Error(str(exc), id="omniman.E004"))
    paths += list(conf.get("ISSUE_RESOLVERS").values())
    paths += [p["path"] if isinstance(p, dict) else p for p in conf.get("VALIDATORS")]
    paths += list(conf.get("MODIFIERS"))
    paths += list(conf.get("OPS"))
    for path in paths:
        try:
            conf.import_path(path)
        except ImportError as exc:
            errors.append(Error(f"Cannot import {path!r}: {exc}", id="omniman.E003"))
    return errors + _custom_op_errors()


def _custom_op_errors() -> list[Error]:
    """Custom ops named in ``OPS`` that are not ops, or whose name is taken."""
    errors = []
    names = set(registry.custom_ops)
    for path in conf.get("OPS"):
        try:
            op = conf.import_path(path)
        except ImportError:
            continue  # E003
        if not isinstance(op, CustomOp):
            errors.append(Error(f"OMNIMAN['OPS'] entry {path!r} is not a CustomOp.",
                                hint="Make it with omniman.registry.define_op().", id="omniman.E005"))
        elif op.name in OP_FIELDS:
            errors.append(Error(f"Custom op {op.name!r} ({path}) clashes with the built-in op of that name.",
                                id="omniman.E005"))
        elif op.name in names and registry.custom_ops.get(op.name) != op:
            errors.append(Error(f"Custom op {op.name!r} ({path}) is registered twice.", id="omniman.E005"))
        names.add(op.name)
    return errors


def check_channel_topics(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckWarning]:
    """``omniman.W101``: topics named by channels with no handler in this process.

    Channels live in the database, so this reads it only when Django asks for
    database checks (``check --database``, ``migrate``), and says nothing when the
    table is not there yet or the database cannot be read."""
    from omniman.models import Channel
    from omniman.models.channel import unhandled_topics
    from omniman.registry import registry

    if not databases or conf.problems():
        return []
    try:
        known = registry.topics()
    except Exception:  # a handler path that does not import: omniman.E003 says so
        return []
    warnings: list[CheckWarning] = []
    for alias in databases:
        if not router.allow_migrate_model(alias, Channel):
            continue
        try:
            with connections[alias].cursor() as cursor:
                tables = connections[alias].introspection.table_names(cursor)
            if Channel._meta.db_table not in tables:
                continue
            channels = list(Channel.objects.using(alias).order_by("code").values_list("code", "config"))
        except DatabaseError:
            continue
        for code, config in channels:
            for where, topic in unhandled_topics(config)[0]:
                warnings.append(CheckWarning(
                    f"Channel {code!r} names directive topic {topic!r} in {where} but no handler is "
                    "registered for it: its directives will be retried, then fail.",
                    hint=(
                        f"Register one (@registry.handler({topic!r}) in an app's omniman_handlers module, "
                        f"or OMNIMAN['HANDLERS']), or fix the channel's config. Topics with a handler: "
                        f"{', '.join(known) or 'none'}."
                    ),
                    id="omniman.W101",
                ))
    return warnings


#: What a commit's statements need of SQLite: ``RETURNING`` (3.35) and upserts (3.24).
MIN_SQLITE = (3, 35)


def check_database(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """``omniman.E006`` for each SQLite database of the project when the SQLite library
    Python links is older than 3.35 (no connection needed: the version is the library's)."""
    if tuple(sqlite_version_info[:2]) >= MIN_SQLITE:
        return []
    return [
        Error(
            f"Database {alias!r} is SQLite {sqlite_version}; omniman's commit needs SQLite 3.35 or later "
            "(INSERT ... ON CONFLICT DO UPDATE ... RETURNING).",
            hint="Use a Python built with a newer SQLite, or PostgreSQL.",
            id="omniman.E006",
        )
        for alias in connections
        if connections[alias].vendor == "sqlite"
    ]


CELERY_APP_HINT = (
    "Load your Celery app with the project, in the package that holds settings.py: its "
    "__init__.py must say `from .celery import app as celery_app` (see omniman's Celery guide)."
)


def check_celery(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    """With the ``celery`` backend, the app this process publishes directives with
    must be the project's, with a broker: Celery's default app would send them to
    ``amqp://guest@localhost//``, where no worker of the project listens."""
    if conf.problems() or conf.get("DIRECTIVE_BACKEND") != "celery":
        return []
    try:
        from celery._state import get_current_app
    except ImportError:
        return [Error(
            'OMNIMAN["DIRECTIVE_BACKEND"] is "celery" but Celery is not installed.',
            hint='pip install "omniman[celery]", or use the "inline" backend.',
            id="omniman.E201",
        )]
    app = get_current_app()
    if is_fallback_app(app):
        return [Error(
            'OMNIMAN["DIRECTIVE_BACKEND"] is "celery" but no Celery app is loaded: directives '
            "would be sent through Celery's default app, to a broker no worker of this project uses.",
            hint=CELERY_APP_HINT,
            id="omniman.E202",
        )]
    if not (app.conf.broker_url or app.conf.broker_write_url):
        return [Error(
            f'OMNIMAN["DIRECTIVE_BACKEND"] is "celery" but the Celery app {app.main!r} has no '
            "broker URL: Celery would try amqp://guest@localhost//.",
            hint="Set CELERY_BROKER_URL in your settings (e.g. redis://127.0.0.1:6379/0).",
            id="omniman.E203",
        )]
    return []
