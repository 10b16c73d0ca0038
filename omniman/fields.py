"""A JSONField that encodes and decodes with orjson: sessions carry up to 500 lines,
and the standard library's json is the slowest part of a modify at that size."""

from __future__ import annotations

from typing import Any

import orjson
from django.db import models


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class FastJSONField(models.JSONField):
    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if isinstance(value, (str, bytes)):
            try:
                return orjson.loads(value)
            except orjson.JSONDecodeError:
                return value
        return super().from_db_value(value, expression, connection)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if not prepared:
            value = self.get_prep_value(value)
        if hasattr(value, "as_sql"):
            return value
        if connection.vendor == "postgresql":
            # psycopg 3, the one PostgreSQL driver omniman supports (the ``postgres``
            # extra); imported here because SQLite hosts need not install it.
            from psycopg.types.json import Jsonb

            return Jsonb(value, dumps=dumps)
        return dumps(value)
