"""The worker's connection handling around tasks: no health check between back-to-back tasks."""

from __future__ import annotations

import pytest
from django.db import connection

from omniman import celery as omniman_celery


@pytest.mark.django_db(transaction=True)
def test_back_to_back_tasks_skip_the_health_check(monkeypatch):
    if connection.vendor != "postgresql":
        pytest.skip("an in-memory SQLite test database is never reconnected")
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", None)  # persistent
    connection.close()
    connection.ensure_connection()
    checks: list[bool] = []
    real = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(True) or real())

    omniman_celery._after_task()
    omniman_celery._before_task()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert checks == []  # the connection answered a moment ago
    first = connection.connection

    monkeypatch.setattr(omniman_celery, "_last_task_end", float("-inf"))  # idle for long
    omniman_celery._before_task()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    assert checks == [True]
    assert connection.connection is first  # kept, not reopened
