"""The directive runner's raw SQL: the claim and the outcome, one statement each
through a plain cursor, and the connection state the runner reads.

They bypass the ORM on a worker's hottest path (the ORM's compile and
``RawQuerySet`` cost more CPU than the round trip itself), so they lean on
framework internals. ``tests/directives/test_sql.py`` pins each one, so that an
upgrade of Django or psycopg fails a test instead of a customer:

* Django's converters for returned columns (``connection.ops.get_db_converters``
  and ``Col.get_db_converters``) and ``Model.from_db`` taking values in
  ``_meta.concrete_fields`` order;
* ``connection.ops.adapt_datetimefield_value`` for datetimes sent through a plain
  cursor, compared for equality with what the ORM stored;
* psycopg 3's ``connection.info.transaction_status`` (libpq's ``PQTRANS_IDLE`` is 0).

omniman supports PostgreSQL through psycopg 3 only (the ``postgres`` extra)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omniman.models import Directive

Status = Directive.Status

#: PostgreSQL: commit the statement it ends without waiting for the WAL flush. Used on
#: the claim and on the outcome of a handler that wrote nothing, when
#: ``DIRECTIVE_ASYNC_COMMIT`` is on: a database crash can only forget such a write by
#: forgetting everything after it, and a forgotten claim or outcome runs the directive
#: again (delivery is at least once). A later synchronous commit (a handler's own
#: writes, any request's) flushes it.
ASYNC_COMMIT = "set_config('synchronous_commit', 'off', true)"

Converters = list[tuple[int, Any, list[Any]]]
_CLAIM_SQL: dict[tuple[str, bool], tuple[str, Converters, int]] = {}


def claim_returning(
    conn: Any, pk: int, *, now: datetime, lease: datetime, due: datetime, async_commit: bool
) -> Directive | None:
    """PostgreSQL: queued and due → running in one round trip (``UPDATE … RETURNING``);
    the claimed row, or None when no row matched."""
    sql, converters, width = claim_sql(conn, async_commit)
    with conn.cursor() as cursor:
        cursor.execute(sql, [Status.RUNNING, lease, now, pk, Status.QUEUED, due])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row[:width])
    for i, field, convs in converters:
        for convert in convs:
            values[i] = convert(values[i], field, conn)
    # field_names is read only when values miss some fields; here every one is there.
    return Directive.from_db(conn.alias, None, values)  # type: ignore[arg-type]  # stubs want a name list


def claim_sql(conn: Any, async_commit: bool) -> tuple[str, Converters, int]:
    """The claim statement, the converters of its returned columns and how many
    columns are the row's, built once per database alias."""
    cached = _CLAIM_SQL.get((conn.alias, async_commit))
    if cached is None:
        quote = conn.ops.quote_name
        table = Directive._meta.db_table
        fields = Directive._meta.concrete_fields
        converters = []
        for i, field in enumerate(fields):
            col = field.get_col(table)
            convs = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
            if convs:
                converters.append((i, col, convs))
        returning = [quote(f.column) for f in fields] + ([ASYNC_COMMIT] if async_commit else [])
        sql = (
            f"UPDATE {quote(table)} SET status = %s, attempts = attempts + 1, lease_until = %s, "
            "updated_at = %s WHERE id = %s AND status = %s AND available_at <= %s RETURNING "
            + ", ".join(returning)
        )
        cached = _CLAIM_SQL[conn.alias, async_commit] = (sql, converters, len(fields))
    return cached


def record_outcome(
    conn: Any, directive: Directive, status: str, error: str, *, now: datetime, async_commit: bool
) -> bool:
    """Write ``status`` and ``error`` if the row is still as ``directive``'s claim left
    it (running, same attempt, same lease); False when someone took it meanwhile."""
    adapt = conn.ops.adapt_datetimefield_value
    table = conn.ops.quote_name(Directive._meta.db_table)
    sql = (
        f"UPDATE {table} SET status = %s, last_error = %s, lease_until = NULL, updated_at = %s "
        "WHERE id = %s AND status = %s AND attempts = %s AND lease_until = %s"
    )
    if async_commit:
        sql += f" RETURNING {ASYNC_COMMIT}"
    with conn.cursor() as cursor:
        cursor.execute(
            sql,
            [status, error, adapt(now), directive.pk, Status.RUNNING, directive.attempts,
             adapt(directive.lease_until)],
        )
        return bool(cursor.rowcount > 0)


def transaction_idle(conn: Any) -> bool:
    """PostgreSQL: True when the connection is open and no statement was sent since
    the last commit (psycopg starts a transaction lazily, at the first statement)."""
    if conn.connection is None:
        return False
    status = getattr(getattr(conn.connection, "info", None), "transaction_status", None)
    return status is not None and int(status) == 0
