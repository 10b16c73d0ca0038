"""The SQL that reads and writes session lines, one statement per job whatever the
number of lines, for PostgreSQL and SQLite. Every vendor-specific query lives here.

The models import this module (a session's ``items`` are read through it), so it
imports no model: it names the tables through the app registry, and the writers take
the session row as the plain :class:`~django.db.models.Model` it is to them.

Lines travel as JSON: the reads aggregate them into one JSON array per session (a
correlated subquery, so a session, its channel and its lines come in one query), and
the writes send every new or changed line as one JSON parameter."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from django.apps import apps
from django.db import NotSupportedError, connection
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Expression, F, Field, Model, TextField
from django.db.models.sql.compiler import SQLCompiler

from omniman.models.prepared import Slot

# The keys of a line, in the order the API shows them.
LINE_FIELDS = ("line_id", "sku", "qty", "unit_price_q", "line_total_q", "meta", "options", "adjustments")
_JSON_FIELDS = ("meta", "options", "adjustments")


def _line_table() -> str:
    return connection.ops.quote_name(apps.get_model("omniman", "SessionLine")._meta.db_table)


def _session_table() -> str:
    return connection.ops.quote_name(apps.get_model("omniman", "Session")._meta.db_table)


class LinesJSON(Expression):
    """A session's lines as the text of one JSON array of objects, in position order.

    With ``line_ids`` (a modify), only those lines, each with its ``position``, plus
    the ``auto`` next server-made ids (``L{next_line}``, ``L{next_line + 1}``, ...) when
    they exist, so the op engine knows they are taken. ``positions`` adds each line's
    ``position`` (always there with ``line_ids``)."""

    def __init__(
        self, line_ids: Iterable[str] | Any | None = None, auto: int | Any = 0, *, positions: bool = False
    ) -> None:
        # ``line_ids`` and ``auto`` may be slots of a prepared query (see
        # omniman.models.prepared): they then stand among the parameters as themselves,
        # prepared at run time by ids_param and auto_param.
        super().__init__(output_field=TextField())
        self.line_ids = line_ids if line_ids is None or _is_slot(line_ids) else sorted(set(line_ids))
        self.auto = auto
        self.positions = positions or line_ids is not None
        self.session_ref: Any = F("pk")
        self.next_line_ref: Any = F("next_line")

    def get_source_expressions(self) -> list[Any]:
        return [self.session_ref, self.next_line_ref]

    def set_source_expressions(self, exprs: Sequence[Any]) -> None:
        self.session_ref, self.next_line_ref = exprs

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        raise NotSupportedError("omniman's session lines need PostgreSQL or SQLite.")

    def _ids(self, vendor: str) -> Any:
        return self.line_ids if _is_slot(self.line_ids) else ids_param(self.line_ids, vendor)

    def _auto(self, vendor: str) -> Any:
        return self.auto if _is_slot(self.auto) else auto_param(self.auto, vendor)

    def _parts(self, compiler: SQLCompiler) -> tuple[str, list[Any], str, list[Any]]:
        sid, sid_params = compiler.compile(self.session_ref)
        next_line, next_params = compiler.compile(self.next_line_ref)
        return sid, list(sid_params), next_line, list(next_params)

    def as_postgresql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        sid, params, next_line, next_params = self._parts(compiler)
        fields = ", ".join(f"'{name}', l.{name}" for name in LINE_FIELDS)
        where = f"l.session_id = {sid}"
        if self.positions:
            fields += ", 'position', l.position"
        if self.line_ids is not None:
            if self.auto:
                where += (
                    f" AND l.line_id = ANY(%s::text[] || ARRAY(SELECT 'L' || ({next_line} + g)"
                    " FROM generate_series(0, %s - 1) g))"
                )
                params += [self._ids(connection.vendor), *next_params, self._auto(connection.vendor)]
            else:
                where += " AND l.line_id = ANY(%s::text[])"
                params.append(self._ids(connection.vendor))
        sql = (
            f"(SELECT COALESCE(json_agg(json_build_object({fields}) ORDER BY l.position), '[]')::text"
            f" FROM {_line_table()} l WHERE {where})"
        )
        return sql, tuple(params)

    def as_sqlite(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> tuple[str, tuple[Any, ...]]:
        sid, params, next_line, next_params = self._parts(compiler)
        fields = ", ".join(
            f"'{name}', json(l.{name})" if name in _JSON_FIELDS else f"'{name}', l.{name}" for name in LINE_FIELDS
        )
        where = f"l.session_id = {sid}"
        if self.positions:
            fields += ", 'position', l.position"
        if self.line_ids is not None:
            where += " AND l.line_id IN (SELECT value FROM json_each(%s)"
            params.append(self._ids(connection.vendor))
            if self.auto:
                where += f" UNION ALL SELECT 'L' || ({next_line} + value) FROM json_each(%s)"
                params += [*next_params, self._auto(connection.vendor)]
            where += ")"
        sql = (
            "(SELECT COALESCE(json_group_array(json(j)), '[]') FROM"
            f" (SELECT json_object({fields}) AS j FROM {_line_table()} l WHERE {where} ORDER BY l.position))"
        )
        return sql, tuple(params)


def _is_slot(value: Any) -> bool:
    return isinstance(value, Slot)


def ids_param(ids: Iterable[str] | None, vendor: str) -> Any:
    """The parameter that carries the line ids a modify reads: an array on PostgreSQL,
    a JSON array's text on SQLite."""
    listed = sorted(set(ids or ()))
    return listed if vendor == "postgresql" else orjson.dumps(listed).decode()


def auto_param(auto: int, vendor: str) -> Any:
    """The parameter that carries how many server-made ids to read: their number on
    PostgreSQL, the JSON array of the offsets on SQLite."""
    return auto if vendor == "postgresql" else orjson.dumps(list(range(auto))).decode()


def decode_lines(raw: str | bytes | None) -> list[dict[str, Any]]:
    return orjson.loads(raw) if raw else []


def load_lines(session_id: int, expression: LinesJSON | None = None) -> list[dict[str, Any]]:
    """Every line of one session (or those ``expression`` selects), in position order:
    one query."""
    model = apps.get_model("omniman", "Session")
    qs = model.objects.filter(pk=session_id).annotate(lines_json=expression or LinesJSON())
    return decode_lines(qs.values_list("lines_json", flat=True).first())


def _update_sql(session: Model, fields: Sequence[str]) -> tuple[str, list[Any]]:
    meta = type(session)._meta
    sets, params = [], []
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, Field) and field.column is not None, name  # a column of the row
        sets.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(getattr(session, field.attname), connection))
    params.append(session.pk)
    assert meta.pk is not None and meta.pk.column is not None
    pk = connection.ops.quote_name(meta.pk.column)
    return f"UPDATE {_session_table()} SET {', '.join(sets)} WHERE {pk} = %s", params


_COLUMNS = "session_id, line_id, position, sku, qty, unit_price_q, line_total_q, meta, options, adjustments"
_ON_CONFLICT = (
    "ON CONFLICT (session_id, line_id) DO UPDATE SET position = excluded.position, sku = excluded.sku,"
    " qty = excluded.qty, unit_price_q = excluded.unit_price_q, line_total_q = excluded.line_total_q,"
    " meta = excluded.meta, options = excluded.options, adjustments = excluded.adjustments"
)


def write_session(
    session: Model,
    fields: Sequence[str],
    *,
    upserts: Sequence[dict[str, Any]] = (),
    deletes: Sequence[str] = (),
) -> None:
    """Write the session row's ``fields``, insert or update ``upserts`` (lines with
    their ``position``) and delete the lines ``deletes`` names.

    PostgreSQL: one statement (the line writes ride as data-modifying CTEs of the
    session's UPDATE). SQLite: one statement per kind of write."""
    table = _line_table()
    update, update_params = _update_sql(session, fields)
    rows = orjson.dumps(list(upserts)).decode() if upserts else None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            ctes: list[str] = []
            params: list[Any] = []
            if rows is not None:
                ctes.append(
                    f"up AS (INSERT INTO {table} ({_COLUMNS}) SELECT %s, x.line_id, x.position, x.sku, x.qty,"
                    " x.unit_price_q, x.line_total_q, x.meta, COALESCE(x.options, '[]'), COALESCE(x.adjustments, '[]')"
                    " FROM json_to_recordset(%s::json) AS x(line_id text, position integer, sku text, qty text,"
                    " unit_price_q bigint, line_total_q bigint, meta jsonb, options jsonb, adjustments jsonb)"
                    f" {_ON_CONFLICT})"
                )
                params += [session.pk, rows]
            if deletes:
                ctes.append(f"del AS (DELETE FROM {table} WHERE session_id = %s AND line_id = ANY(%s::text[]))")
                params += [session.pk, list(deletes)]
            sql = f"WITH {', '.join(ctes)} {update}" if ctes else update
            cursor.execute(sql, params + update_params)
            return
        if connection.vendor != "sqlite":
            raise NotSupportedError("omniman's session lines need PostgreSQL or SQLite.")
        if rows is not None:
            cursor.execute(
                f"INSERT INTO {table} ({_COLUMNS}) SELECT %s, json_extract(value, '$.line_id'),"
                " json_extract(value, '$.position'), json_extract(value, '$.sku'), json_extract(value, '$.qty'),"
                " json_extract(value, '$.unit_price_q'), json_extract(value, '$.line_total_q'),"
                " json_extract(value, '$.meta'), COALESCE(json_extract(value, '$.options'), '[]'),"
                f" COALESCE(json_extract(value, '$.adjustments'), '[]') FROM json_each(%s) WHERE true {_ON_CONFLICT}",
                [session.pk, rows],
            )
        if deletes:
            cursor.execute(
                f"DELETE FROM {table} WHERE session_id = %s AND line_id IN (SELECT value FROM json_each(%s))",
                [session.pk, orjson.dumps(list(deletes)).decode()],
            )
        cursor.execute(update, update_params)


def copy_lines_to_order(session_id: int, order_id: int) -> None:
    """Copy a session's lines into order items, positions 0, 1, 2, ...: one statement."""
    item_table = connection.ops.quote_name(apps.get_model("omniman", "OrderItem")._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {item_table} (order_id, position, line_id, sku, qty, unit_price_q, line_total_q, meta,"
            " options, adjustments) SELECT %s, ROW_NUMBER() OVER (ORDER BY position) - 1, line_id, sku,"
            " CAST(qty AS NUMERIC(10, 3)), unit_price_q, line_total_q, meta, options, adjustments"
            f" FROM {_line_table()} WHERE session_id = %s",
            [order_id, session_id],
        )
