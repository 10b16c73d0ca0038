"""Querysets built once per process and run many times: the hot reads of the API.

Building a queryset and compiling it to SQL costs far more Python than running it: on
a session read with its channel and the caller's grant, about five times the client
side of the round trip. The statements a request makes are the same every time but
for a few values (a session key, a user id), so :class:`Prepared` builds the queryset
once per database alias with stand-in values, compiles it, remembers where each
stand-in went among the SQL's parameters, and from then on only binds the values, runs
the SQL through the connection's cursor (query logging and statement counts see it as
any other) and turns the rows into instances the way Django's own iteration does.

The SQL is exactly what the ORM makes for that queryset, on every vendor; only the
building is skipped. A stand-in that the compiler changed or inlined into the SQL
would make a wrong statement, so it is a loud error when the query is first built,
never a silent fallback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import MAX_GET_RESULTS, get_related_populators
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.constants import MULTI
from django.db.transaction import TransactionManagementError

M = TypeVar("M", bound=Model)


class Slot:
    """A value given at run time where the queryset is built with a stand-in.

    Filter values are compared with the compiled parameters: a text slot stands in as
    a string no caller sends, an integer slot as a number no id reaches. An expression
    of our own (see :class:`~omniman.models.queries.LinesJSON`) may put the ``Slot``
    itself among its parameters, with ``prepare`` turning the run-time value into the
    parameter for a vendor."""

    __slots__ = ("index", "kind", "name", "prepare")

    def __init__(
        self, name: str, kind: type = str, index: int = 0, prepare: Callable[[Any, str], Any] | None = None
    ) -> None:
        self.name, self.kind, self.index, self.prepare = name, kind, index, prepare

    @property
    def stand_in(self) -> Any:
        if self.kind is int:
            return -0x6F6D6E69_0000 - self.index
        return f"\ufffeomniman-slot-{self.index}-{self.name}\ufffe"

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


class Slots:
    """The slots one query is built with: ``slots.text("key")``, ``slots.int("user")``."""

    def __init__(self) -> None:
        self.slots: list[Slot] = []

    def _add(self, name: str, kind: type, prepare: Callable[[Any, str], Any] | None = None) -> Slot:
        if any(s.name == name for s in self.slots):
            raise ValueError(f"two slots named {name!r}")
        slot = Slot(name, kind, len(self.slots), prepare)
        self.slots.append(slot)
        return slot

    def text(self, name: str) -> str:
        stand_in: str = self._add(name, str).stand_in
        return stand_in

    def int(self, name: str) -> int:
        stand_in: int = self._add(name, int).stand_in
        return stand_in

    def expression(self, name: str, prepare: Callable[[Any, str], Any]) -> Slot:
        """A slot an expression puts among its parameters as itself."""
        return self._add(name, object, prepare)


class _BoundCompiler(SQLCompiler):
    """A compiler whose SQL is already made: ``execute_sql`` runs it as it runs any
    other, so tools that wrap it (django-silk records each query there) see it too."""

    def __init__(self, query: Any, connection: Any, using: str, statement: tuple[str, list[Any]]) -> None:
        super().__init__(query, connection, using)
        self.statement = statement
        self.has_extra_select = False

    def as_sql(self, with_limits: bool = True, with_col_aliases: bool = False) -> tuple[str, Any]:
        return self.statement


@dataclass(frozen=True)
class _Compiled:
    query: Any
    sql: str
    params: tuple[Any, ...]
    #: (position among the parameters, slot) for every parameter given at run time
    bindings: tuple[tuple[int, Slot], ...]
    vendor: str
    for_update: bool
    model: type[Model]
    init_list: tuple[str, ...]
    model_slice: slice
    related_populators: tuple[Any, ...]
    annotations: tuple[tuple[str, int], ...]
    #: (position in the row, converters, expression) of each column that has converters
    converters: tuple[tuple[int, tuple[Any, ...], Any], ...]


def _compile(qs: QuerySet[Any], slots: Slots, alias: str) -> _Compiled:
    query = qs.query.chain()
    if query.can_filter() and not query.distinct_fields:
        query.clear_ordering(force=True)
        features = connections[alias].features
        if not query.select_for_update or features.supports_select_for_update_with_limit:
            query.set_limits(high=MAX_GET_RESULTS)
    compiler = query.get_compiler(using=alias)
    sql, params = compiler.as_sql()
    by_stand_in = {s.stand_in: s for s in slots.slots if s.kind is not object}
    bindings: list[tuple[int, Slot]] = []
    for pos, value in enumerate(params):
        if isinstance(value, Slot):
            bindings.append((pos, value))
        elif isinstance(value, (str, int)) and not isinstance(value, bool) and value in by_stand_in:
            slot = by_stand_in[value]
            if type(value) is not slot.kind:
                raise AssertionError(f"slot {slot.name!r} came out of the compiler as {value!r}")
            bindings.append((pos, slot))
    found = {slot.name for _, slot in bindings}
    missing = [s.name for s in slots.slots if s.name not in found]
    inlined = [s.name for s in slots.slots if s.kind is str and s.stand_in in sql]
    if missing or inlined:
        raise AssertionError(
            f"prepared query {sql!r}: slots {missing + inlined} are not parameters of the SQL its queryset makes"
        )
    select, klass_info, annotation_col_map = compiler.select, compiler.klass_info, compiler.annotation_col_map
    assert klass_info is not None, "a prepared query reads model instances"
    fields = klass_info["select_fields"]
    model_slice = slice(fields[0], fields[-1] + 1)
    converters = compiler.get_converters([s[0] for s in select[0 : compiler.col_count]])
    return _Compiled(
        query=query,
        sql=sql,
        params=tuple(params),
        bindings=tuple(bindings),
        vendor=connections[alias].vendor,
        # The ORM refuses a locking read outside a transaction where the vendor locks.
        for_update=bool(query.select_for_update) and connections[alias].features.has_select_for_update,
        model=klass_info["model"],
        init_list=tuple(f[0].target.attname for f in select[model_slice]),
        model_slice=model_slice,
        # django-stubs follow a later Django, where it takes a fetch mode too.
        related_populators=tuple(get_related_populators(klass_info, select, alias)),  # type: ignore[call-arg]
        annotations=tuple((annotation_col_map or {}).items()),
        converters=tuple((pos, tuple(convs), expr) for pos, (convs, expr) in converters.items()),
    )


class Prepared(Generic[M]):
    """One query of ``model``, built by ``build(slots, *shape)`` for each ``shape`` it
    is used with, on the database the routers give (for writing when ``write``: a
    locking read).

    ``shape`` is what changes the SQL itself (a filter present or not, a different
    expression); slot values only change its parameters. ``get(shape, values)``
    behaves like ``QuerySet.get()``: one instance, ``DoesNotExist`` for none,
    ``MultipleObjectsReturned`` for more."""

    def __init__(self, model: type[M], build: Callable[..., QuerySet[M]], *, write: bool = False) -> None:
        self.model = model
        self.build = build
        self.write = write
        self._compiled: dict[tuple[str, Hashable], _Compiled] = {}
        self._lock = threading.Lock()

    def using(self) -> str:
        alias = router.db_for_write(self.model) if self.write else router.db_for_read(self.model)
        return str(alias)

    def compiled(self, shape: tuple[Hashable, ...], using: str) -> _Compiled:
        key = (using, shape)
        found = self._compiled.get(key)
        if found is None:
            slots = Slots()
            found = _compile(self.build(slots, *shape), slots, using)
            with self._lock:
                found = self._compiled.setdefault(key, found)
        return found

    def get(self, shape: tuple[Hashable, ...], values: dict[str, Any]) -> M:
        using = self.using()
        c = self.compiled(shape, using)
        connection = connections[using]
        if c.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = list(c.params)
        for pos, slot in c.bindings:
            value = values[slot.name]
            params[pos] = slot.prepare(value, c.vendor) if slot.prepare is not None else value
        chunks = _BoundCompiler(c.query, connection, using, (c.sql, params)).execute_sql(MULTI)
        rows = [row for chunk in chunks or () for row in chunk]
        model: Any = self.model
        if not rows:
            raise model.DoesNotExist(f"{model._meta.object_name} matching query does not exist.")
        if len(rows) > 1:
            raise model.MultipleObjectsReturned(f"get() returned more than one {model._meta.object_name}.")
        row = list(rows[0])
        for pos, convs, expression in c.converters:
            value = row[pos]
            for converter in convs:
                value = converter(value, expression, connection)
            row[pos] = value
        obj: M = c.model.from_db(using, c.init_list, row[c.model_slice])  # type: ignore[assignment]
        for populator in c.related_populators:
            populator.populate(row, obj)
        for name, pos in c.annotations:
            setattr(obj, name, row[pos])
        return obj

    def clear(self) -> None:
        """Forget every compiled shape (tests that change the database settings)."""
        with self._lock:
            self._compiled.clear()
