"""Line loading for a modify: which lines it reads, reading them (with the lock, or
after it), and the op engine's state made from them.

The invariant lives here and nowhere else: lines are as of one snapshot, and a
:class:`LoadedLines` says which (``snapshot_version``), which lines it holds and which
ids it knows about (``known``: present or not, their state is known). A modify knows
before the lock every line it may touch (:func:`omniman.ops.touched_line_ids`: the ids
its ops name and the server-made ids they may take), so the lock's query brings them
all. The SQL itself is in :mod:`omniman.models.queries`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery

from omniman.models import Channel, Session
from omniman.models.prepared import Prepared, Slots
from omniman.models.queries import LinesJSON, auto_param, decode_lines, ids_param, load_lines
from omniman.ops import IncompleteState, Op, State, needs_all_lines, touched_line_ids
from omniman.registry import registry

# The annotations a locking read carries; read and removed by :func:`take_lines` only.
_LINES = "omniman_lines_json"
_VERSION = "omniman_lines_version"


@dataclass(frozen=True)
class LineSelection:
    """The lines a modify reads: every line (``ids`` None), or those its ops may touch:
    ``ids`` and the ``auto`` server-made ids from the session's ``next_line`` on."""

    ids: frozenset[str] | None
    auto: int = 0

    @classmethod
    def every(cls) -> LineSelection:
        return cls(None)

    @classmethod
    def for_ops(cls, channel: object, ops: Sequence[Op], *, every: bool = False) -> LineSelection:
        """What ``ops`` need: every line for ``merge_lines``, draft validators and a
        channel's modifiers (when ``channel`` is a Channel, its modifiers are known before
        the lock), or when ``every`` asks for them; else the ids they name."""
        if every or wants_all_lines(channel, ops):
            return cls(None)
        ids, auto = touched_line_ids(ops)
        return cls(frozenset(ids), auto)

    def expression(self) -> LinesJSON:
        if self.ids is None:
            return LinesJSON(positions=True)
        return LinesJSON(line_ids=self.ids, auto=self.auto)

    def known(self, next_line: int) -> frozenset[str] | None:
        """The ids whose presence the read of this selection tells, for a session whose
        ``next_line`` is as given (None: every id)."""
        if self.ids is None:
            return None
        return self.ids | {f"L{next_line + n}" for n in range(self.auto)}


def wants_all_lines(channel: object, ops: Sequence[Op]) -> bool:
    """Whether a modify needs every line, not only those its ops name: ``merge_lines``
    or a custom op that reads every line, draft validators (they see the whole state)
    and a channel's modifiers that read lines."""
    if needs_all_lines(ops) or registry.validators_for("draft"):
        return True
    return isinstance(channel, Channel) and registry.modifiers_read_lines(channel.conf.modifiers)


@dataclass(frozen=True)
class LoadedLines:
    """Lines of one session as of one snapshot.

    ``snapshot_version``: the session row's ``version`` in the snapshot the lines were
    read in; ``lines``: each line without its position, in position order;
    ``positions``: line id → position; ``known``: the ids whose presence is known (the
    selection's), or None when ``lines`` is every line."""

    snapshot_version: int
    lines: list[dict[str, Any]]
    positions: dict[str, int]
    known: frozenset[str] | None

    @classmethod
    def of(cls, lines: list[dict[str, Any]], session: Session, *, snapshot_version: int,
           selection: LineSelection) -> LoadedLines:
        """From lines as :class:`~omniman.models.queries.LinesJSON` gives them (each with
        its ``position``, which moves to ``positions``)."""
        positions = {line["line_id"]: line.pop("position") for line in lines}
        return cls(snapshot_version, lines, positions, selection.known(session.next_line))

    def covers(self, session: Session, selection: LineSelection) -> bool:
        """Whether these lines can serve ``selection`` on ``session`` as it is locked now."""
        if self.snapshot_version != session.version:
            # The lock waited for another write: the lines it brought predate that write.
            return False
        if self.known is None:
            return True
        wanted = selection.known(session.next_line)
        return wanted is not None and wanted <= self.known

    def state(self, session: Session) -> State:
        """The op engine's input: complete when these are every line, else partial."""
        if self.known is None:
            return State(
                items=self.lines, data=session.data, pricing=session.pricing, total_q=session.total_q,
                next_line=session.next_line, line_count=session.line_count, subtotal_q=session.subtotal_q,
            )
        return State.partial(
            self.lines, loaded=self.known, line_count=session.line_count, subtotal_q=session.subtotal_q,
            data=session.data, pricing=session.pricing, total_q=session.total_q, next_line=session.next_line,
        )


def annotate_lines(qs: QuerySet[Session], selection: LineSelection) -> QuerySet[Session]:
    """Add ``selection``'s lines, and the row's version in the same snapshot, to a
    session query (the locking read of a modify): no statement of their own."""
    version = Subquery(Session.objects.filter(pk=OuterRef("pk")).values("version")[:1])
    return qs.annotate(**{_LINES: selection.expression(), _VERSION: version})


def take_lines(session: Session, selection: LineSelection) -> LoadedLines:
    """The lines :func:`annotate_lines` brought, taken off the instance.

    On PostgreSQL a read that waited for the row lock returns the row as the other
    transaction left it, but the lines (a subquery) as of its own snapshot, from
    before that write: ``snapshot_version`` then differs from ``session.version``, and
    :func:`lines_for_modify` reads them again."""
    lines = decode_lines(session.__dict__.pop(_LINES))
    version = session.__dict__.pop(_VERSION)
    return LoadedLines.of(lines, session, snapshot_version=version, selection=selection)


def _build_lines_read(slots: Slots, every: bool) -> QuerySet[Session]:
    ids = None if every else slots.expression("line_ids", ids_param)
    auto = 0 if every else slots.expression("auto", auto_param)
    expression = LineSelection(ids, auto).expression()  # type: ignore[arg-type]  # slots stand in
    return Session.objects.filter(pk=slots.int("pk")).only("pk").annotate(**{_LINES: expression})


#: A locked session's lines read again (after a wait for its lock): built once per shape.
_LINES_READ = Prepared(Session, _build_lines_read, write=True)


def read_lines(session: Session, selection: LineSelection) -> LoadedLines:
    """``selection``'s lines as they are now: one query."""
    if isinstance(session.pk, int):
        values = {"pk": session.pk, "line_ids": selection.ids, "auto": selection.auto}
        row = _LINES_READ.get((selection.ids is None,), values)
        lines = decode_lines(row.__dict__[_LINES])
    else:  # pragma: no cover - a host's non-integer primary key
        lines = load_lines(session.pk, selection.expression())
    return LoadedLines.of(lines, session, snapshot_version=session.version, selection=selection)


def lines_for_modify(session: Session, loaded: LoadedLines | None, selection: LineSelection) -> LoadedLines:
    """The lines a modify of the locked ``session`` applies its ops to: those the lock
    brought when they are fresh and enough, else ``selection``'s read again (one query:
    after a wait for the lock, when the lock brought none, or when the channel's
    modifiers turned out to need every line)."""
    if loaded is not None and loaded.covers(session, selection):
        return loaded
    return read_lines(session, selection)


def apply_to_lines(
    session: Session, loaded: LoadedLines | None, selection: LineSelection, apply: Callable[[State], State]
) -> tuple[State, LoadedLines]:
    """Run ``apply`` (the op engine) on the lines a modify needs; returns its new state
    and the lines it ran on.

    The lines are those :func:`lines_for_modify` gives. One case still needs every line
    after the fact: a stored line that holds a server-made id not handed out yet (written
    behind the kernel's back: the kernel never does) pushes the next server-made id past
    the ones read; the engine then raises ``IncompleteState``, and this runs it again on
    every line (one more query). Knowing those lines before the lock would take reading
    every line of the session, so this stays."""
    current = lines_for_modify(session, loaded, selection)
    try:
        return apply(current.state(session)), current
    except IncompleteState:
        current = read_lines(session, LineSelection.every())
        return apply(current.state(session)), current


def complete_state(session: Session) -> State:
    """Every line of ``session`` as the op engine's state (for commit validators): no
    query when the session came with its lines, else one."""
    return State(
        items=session.items, data=session.data or {}, pricing=session.pricing or {},
        total_q=session.total_q, next_line=session.next_line,
    )
