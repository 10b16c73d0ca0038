"""Session services: create, modify, abandon, resolve an issue, apply a check, expire."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, overload

from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from omniman import conf, signals
from omniman.exceptions import (
    ChannelLocked,
    FieldError,
    NotFound,
    SessionExists,
    SessionNotOpen,
    ValidationError,
)
from omniman.models import Channel, Session
from omniman.models.channel import ChannelConfig
from omniman.models.prepared import Prepared, Slots
from omniman.models.queries import write_session
from omniman.ops import (
    Catalog,
    Limits,
    Op,
    OptionGroup,
    State,
    apply_ops,
    check_data_size,
    empty_pricing,
    parse_ops,
    skus_to_price,
)
from omniman.registry import registry
from omniman.services.directive_outbox import enqueue_many
from omniman.services.idempotency import IdempotentRequest, Outcome, lock_key, run_idempotent
from omniman.services.lines import LineSelection, LoadedLines, apply_to_lines
from omniman.services.locks import (
    ChannelRef,
    channel_filter,
    in_locked_batches,
    lock_session,
    lock_session_with_lines,
    prepared_filters,
    slot_filters,
)
from omniman.services.preconditions import Expected, check_preconditions, require_active
from omniman.validators import IDENT_RE, IDENT_RULE

logger = logging.getLogger(__name__)

UPDATE_FIELDS = [
    "data", "pricing", "total_q", "subtotal_q", "line_count", "next_line", "next_position",
    "rev", "version", "updated_at", "expires_at",
]


def get_channel(code: Channel | str, *, pointer: str = "/channel_code") -> Channel:
    """An active channel by code; unknown or inactive is a ``validation_error``."""
    channel: Channel | None
    if isinstance(code, Channel):
        channel = code
    else:
        channel = Channel.objects.filter(code=code).first() if isinstance(code, str) else None
        if channel is None:
            raise ValidationError(FieldError(pointer, "unknown channel.", "unknown_channel"))
    require_active(channel, pointer)
    return channel


def get_session(channel: ChannelRef, session_key: str, *, lines: bool = True) -> Session:
    """A session with its channel and (unless ``lines`` is false) its lines, in one
    query; a ``GrantedChannel`` checks the grant in that query too."""
    prepared = prepared_filters(channel, session_key=session_key)
    try:
        if prepared is None:
            qs = Session.objects.select_related("channel")
            return (qs.with_items() if lines else qs).get(session_key=session_key, **channel_filter(channel))
        names, values = prepared
        return _SESSION_READ.get((names, lines), values)
    except Session.DoesNotExist:
        raise NotFound("No such session.") from None


def _build_session_read(slots: Slots, names: tuple[str, ...], lines: bool) -> QuerySet[Session]:
    qs = Session.objects.select_related("channel")
    return (qs.with_items() if lines else qs).filter(**slot_filters(slots, names))


#: The read of one session with its channel (and its lines): built once per shape.
_SESSION_READ = Prepared(Session, _build_session_read)


def _expiry(channel: Channel, now: datetime) -> datetime:
    minutes = channel.conf.session_ttl_minutes or conf.get("DEFAULT_SESSION_TTL_MINUTES")
    return now + timedelta(minutes=minutes)


def _check_data(data: Any, pointer: str = "/data") -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError(FieldError(pointer, "data must be an object.", "invalid_type"))
    check_data_size(data, conf.get("MAX_DATA_BYTES"), pointer)
    return data


def _check_handle(value: Any, name: str, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length:
        raise ValidationError(
            FieldError(f"/{name}", f"{name} must be a string of at most {max_length} characters.", "invalid")
        )
    return value


def new_session_key() -> str:
    return "S-" + secrets.token_hex(8).upper()


@dataclass(frozen=True)
class NewSession:
    """A create's input, checked: what :func:`insert_session` writes."""

    channel: Channel
    session_key: str | None
    handle_type: str
    handle_ref: str
    data: dict[str, Any]
    ops: list[Op] | None


def check_new_session(
    *,
    channel: Channel | str,
    session_key: str | None = None,
    handle_type: str = "",
    handle_ref: str = "",
    data: Mapping[str, Any] | None = None,
    ops: Any = None,
) -> NewSession:
    """Check a create's input (no database but the channel's lookup by code)."""
    channel = get_channel(channel)
    if session_key is not None and (not isinstance(session_key, str) or not IDENT_RE.match(session_key)):
        raise ValidationError(
            FieldError("/session_key", f"session_key must be {IDENT_RULE}")
        )
    handle_type = _check_handle(handle_type, "handle_type", 64)
    handle_ref = _check_handle(handle_ref, "handle_ref", 128)
    data = _check_data({} if data is None else data)
    parsed = None if ops is None else parse_ops(ops, custom=registry.ops())
    return NewSession(channel, session_key, handle_type, handle_ref, dict(data), parsed)


def insert_session(new: NewSession, *, actor: str = "", retried: bool = False) -> Session:
    """Insert the session and apply its ops as rev 1, in the caller's transaction: the
    row (a ``session_key`` taken in the channel is ``SessionExists``), then its lines
    and the row's new state in one write, and the channel's check directives.

    ``retried``: the caller runs this in :func:`run_idempotent`, which runs it again on
    an integrity error; a server-made key that is taken (random: practically never)
    then raises that error, and the insert needs no savepoint (two statements)."""
    channel = new.channel
    if new.ops is not None:
        _require_modifiable_channel(channel)
    now = timezone.now()
    session = Session(
        channel=channel,
        session_key=new.session_key or new_session_key(),
        handle_type=new.handle_type,
        handle_ref=new.handle_ref,
        data=dict(new.data),
        pricing=empty_pricing(),
        expires_at=_expiry(channel, now),
    )
    session.set_items([])
    if retried and new.session_key is None:
        session.save(force_insert=True)
    else:
        _insert_or_exists(session)
    if new.ops is not None:
        ops = new.ops
        # A new session has no line: the op engine starts from an empty, complete state.
        empty = LoadedLines(snapshot_version=session.version, lines=[], positions={}, known=None)
        writes = _apply_locked(session, ops, now=now, loaded=empty)
        write_session(session, UPDATE_FIELDS, **writes)
        if channel.conf.checks:
            enqueue_many(_check_directives(session))
        transaction.on_commit(
            lambda: signals.session_modified.send(Session, session=session, ops=ops, actor=actor)
        )
    return session


def _insert_or_exists(session: Session) -> None:
    try:
        with transaction.atomic():
            session.save(force_insert=True)
    except IntegrityError:
        raise SessionExists(
            f"Session {session.session_key!r} already exists in channel {session.channel.code!r}."
        ) from None


@overload
def create_session(
    *,
    channel: Channel | str,
    session_key: str | None = None,
    handle_type: str = "",
    handle_ref: str = "",
    data: Mapping[str, Any] | None = None,
    ops: Any = None,
    actor: str = "",
    idempotency: None = None,
) -> Session: ...


@overload
def create_session(
    *,
    channel: Channel | str,
    session_key: str | None = None,
    handle_type: str = "",
    handle_ref: str = "",
    data: Mapping[str, Any] | None = None,
    ops: Any = None,
    actor: str = "",
    idempotency: IdempotentRequest,
) -> Outcome[Session]: ...


def create_session(
    *,
    channel: Channel | str,
    session_key: str | None = None,
    handle_type: str = "",
    handle_ref: str = "",
    data: Mapping[str, Any] | None = None,
    ops: Any = None,
    actor: str = "",
    idempotency: IdempotentRequest | None = None,
) -> Session | Outcome[Session]:
    """Open a session; a ``session_key`` that exists in the channel is ``SessionExists``.

    ``ops``: applied as rev 1, all or nothing, exactly as a modify applies them (the
    session is not created when one fails). With ``idempotency``, the create runs
    through :func:`run_idempotent` (serialised on the key's advisory lock) and the
    :class:`Outcome` is returned."""
    new = check_new_session(
        channel=channel, session_key=session_key, handle_type=handle_type, handle_ref=handle_ref, data=data, ops=ops
    )

    if idempotency is None:
        if new.ops is None:
            session = insert_session(new, actor=actor)
        else:
            with transaction.atomic():
                session = insert_session(new, actor=actor)
        _log_created(session, actor)
        return session
    def lock() -> tuple[Channel, None]:
        lock_key(new.channel, "create", idempotency)
        return new.channel, None

    outcome = run_idempotent(
        idempotency, lock=lock, write=lambda _: insert_session(new, actor=actor, retried=True)
    )
    if outcome.result is not None:
        _log_created(outcome.result, actor)
    return outcome


def _log_created(session: Session, actor: str) -> None:
    logger.info("session created channel=%s session_key=%s actor=%s", session.channel.code, session.session_key, actor)


def _require_open(session: Session) -> None:
    if session.state != Session.State.OPEN:
        raise SessionNotOpen(state=session.state)


def _catalog(channel: Channel, ops: Sequence[Op], state: State) -> Catalog:
    """What an internal-pricing channel's backend says of the skus ``ops`` need (prices
    and option groups): one call for the skus known before the ops run, another only
    for skus a custom op adds."""
    if channel.conf.pricing_policy != "internal":
        return Catalog()
    backend = registry.pricing_backend()
    if backend is None:
        raise RuntimeError(
            f"Channel {channel.code!r} prices internally but OMNIMAN['PRICING_BACKEND'] is not set."
        )

    def fetch(skus: set[str]) -> tuple[Mapping[str, int], Mapping[str, Sequence[OptionGroup]]]:
        return backend.prices(channel, skus), registry.option_groups(backend, channel, skus)

    catalog = Catalog(fetch=fetch)
    skus = skus_to_price(ops, state.items)
    if skus:
        catalog.ensure(skus)
    return catalog


def _draft_problems(channel: Channel, state: State) -> None:
    errors = [
        FieldError("/ops", problem.detail, problem.code)
        for validator in registry.validators_for("draft")
        for problem in validator(channel=channel, state=state, stage="draft")
    ]
    if errors:
        raise ValidationError(errors)


def _check_directives(session: Session) -> list[tuple[str, dict[str, Any]]]:
    channel = session.channel
    return [
        (topic, {
            "check": code,
            "channel_code": channel.code,
            "session_key": session.session_key,
            "rev": session.rev,
        })
        for code, topic in channel.conf.checks.items()
    ]


def _apply_locked(
    session: Session, ops: list[Op], *, now: datetime, loaded: LoadedLines | None = None
) -> dict[str, Any]:
    """Apply ``ops`` to the locked ``session`` in memory; returns the line writes for
    ``write_session``. Reads only the lines the ops name, unless they need every one
    (``loaded``: the lines the lock brought, used when they are fresh and enough)."""
    channel = session.channel
    modifiers = registry.modifiers_for(channel.conf.modifiers)
    read_lines = registry.modifiers_read_lines(channel.conf.modifiers)
    kwargs: dict[str, Any] = {
        "pricing_policy": channel.conf.pricing_policy,
        "modifiers": modifiers,
        "modifiers_read_lines": read_lines,
        "tax_inclusive": channel.conf.tax_inclusive,
        "limits": Limits.from_settings(),
    }

    def apply(state: State) -> State:
        return apply_ops(state, ops, catalog=_catalog(channel, ops, state), **kwargs)

    selection = LineSelection.for_ops(channel, ops, every=bool(modifiers) and read_lines)
    new, current = apply_to_lines(session, loaded, selection, apply)
    positions = current.positions
    if registry.validators_for("draft"):
        _draft_problems(channel, new)
    diff = new.diff
    assert diff is not None
    start = session.next_position
    fresh = {line_id: start + n for n, line_id in enumerate(diff.added)}
    upserts = [
        {**line, "position": fresh[line["line_id"]] if line["line_id"] in fresh else positions[line["line_id"]]}
        for line in diff.upserts
    ]
    session.data = new.data
    session.pricing = new.pricing
    session.total_q = new.total_q
    session.subtotal_q = new.subtotal_q
    session.line_count = new.line_count
    session.next_line = new.next_line
    session.next_position = start + len(diff.added)
    session.rev += 1
    session.version += 1
    session.updated_at = now
    session.expires_at = _expiry(channel, now)
    session.set_items(new.items if new.complete else None)
    return {"upserts": upserts, "deletes": diff.deletes}


@overload
def modify_session(
    *,
    channel: ChannelRef,
    session_key: str,
    ops: Any,
    expected_rev: int | None = None,
    expected_version: Expected | None = None,
    actor: str = "",
    load_items: bool = False,
    idempotency: None = None,
) -> Session: ...


@overload
def modify_session(
    *,
    channel: ChannelRef,
    session_key: str,
    ops: Any,
    expected_rev: int | None = None,
    expected_version: Expected | None = None,
    actor: str = "",
    load_items: bool = False,
    idempotency: IdempotentRequest,
) -> Outcome[Session]: ...


def modify_session(
    *,
    channel: ChannelRef,
    session_key: str,
    ops: Any,
    expected_rev: int | None = None,
    expected_version: Expected | None = None,
    actor: str = "",
    load_items: bool = False,
    idempotency: IdempotentRequest | None = None,
) -> Session | Outcome[Session]:
    """Apply a list of ops as one rev: all or nothing.

    One transaction: lock the session row and bring the lines the ops name (one
    query), check preconditions, apply the ops in memory, write the changed lines and
    the row (one statement on PostgreSQL), and queue the channel's check directives.
    Its cost does not grow with the session's lines, except for ``merge_lines``, draft
    validators and channel modifiers, which need every line.

    ``load_items``: bring every line with the lock, so that the returned session's
    ``items`` cost no query (for callers that show the whole session).
    ``idempotency``: run through :func:`run_idempotent`, serialised on the session's
    row lock (the key is looked up right after it); the :class:`Outcome` is returned."""
    parsed = parse_ops(ops, custom=registry.ops())
    if expected_rev is not None and (isinstance(expected_rev, bool) or not isinstance(expected_rev, int)):
        raise ValidationError(FieldError("/rev", "rev must be an integer.", "invalid_type"))

    def lock() -> tuple[Channel, tuple[Session, LoadedLines]]:
        locked = lock_session_with_lines(
            channel, session_key, LineSelection.for_ops(channel, parsed, every=load_items)
        )
        return locked[0].channel, locked

    def write(locked: tuple[Session, LoadedLines]) -> Session:
        session, loaded = locked
        _require_modifiable(session)
        check_preconditions(
            session, expected_rev=expected_rev, expected_version=expected_version,
            required=session.channel.conf.require_if_match,
        )
        writes = _apply_locked(session, parsed, now=timezone.now(), loaded=loaded)
        write_session(session, UPDATE_FIELDS, **writes)
        if session.channel.conf.checks:
            enqueue_many(_check_directives(session))
        transaction.on_commit(
            lambda: signals.session_modified.send(Session, session=session, ops=parsed, actor=actor)
        )
        return session

    outcome = run_idempotent(idempotency, lock=lock, write=write)
    if idempotency is not None:
        return outcome
    assert outcome.result is not None
    return outcome.result


def _require_modifiable(session: Session) -> None:
    require_active(session.channel)
    _require_open(session)
    _require_modifiable_channel(session.channel)


def _require_modifiable_channel(channel: Channel) -> None:
    require_active(channel)
    if channel.conf.edit_policy == "locked":
        raise ChannelLocked()


def abandon_session(
    *, channel: ChannelRef, session_key: str, expected_version: Expected | None = None, actor: str = ""
) -> Session:
    """open → abandoned; any other state is ``SessionNotOpen``."""
    with transaction.atomic():
        session = lock_session(channel, session_key)
        _require_open(session)
        check_preconditions(session, expected_version=expected_version)
        now = timezone.now()
        session.state = Session.State.ABANDONED
        session.version += 1
        session.closed_at = now
        session.updated_at = now
        session.save(update_fields=["state", "version", "closed_at", "updated_at"])
        code = session.channel.code
        topics = session.channel.conf.session_end_directives
        if topics:
            enqueue_many(session_end_specs(topics, code, session.session_key, session.rev, "abandoned"))
        ended = [(code, session.session_key, session.rev)]
        transaction.on_commit(lambda: _send_session_ended(ended, "abandoned", actor))
    logger.info("session abandoned channel=%s session_key=%s actor=%s", session.channel.code, session_key, actor)
    return session


def resolve_issue(
    *,
    channel: ChannelRef,
    session_key: str,
    issue_id: Any,
    action_id: Any,
    expected_version: Expected | None = None,
    expected_rev: int | None = None,
    actor: str = "",
) -> Session:
    """Apply one action of one issue: the ops it names (or its resolver returns) are
    applied as one rev, exactly as a modify applies them (a locked channel refuses,
    ``expected_version``/``expected_rev`` are checked when given, ``session_modified`` is sent),
    and the issue is removed."""
    with transaction.atomic():
        session = lock_session(channel, session_key)
        _require_open(session)
        check_preconditions(session, expected_rev=expected_rev, expected_version=expected_version)
        issue = next((i for i in session.issues if i.get("id") == issue_id), None)
        if issue is None:
            raise ValidationError(FieldError("/issue_id", "no such issue in this session.", "unknown_issue"))
        action = next((a for a in issue.get("actions", []) if a.get("id") == action_id), None)
        if action is None:
            raise ValidationError(FieldError("/action_id", "no such action for this issue.", "unknown_action"))
        resolver = registry.get_resolver(issue.get("code", ""))
        raw_ops = (
            resolver(channel=session.channel, issue=issue, action_id=action_id)
            if resolver is not None
            else action.get("ops", [])
        )
        now = timezone.now()
        parsed = parse_ops(raw_ops, custom=registry.ops()) if raw_ops else []
        writes: dict[str, Any] = {}
        if parsed:
            _require_modifiable(session)
            writes = _apply_locked(session, parsed, now=now)
        else:
            session.version += 1
            session.updated_at = now
        session.issues = [i for i in session.issues if i.get("id") != issue_id]
        write_session(session, [*UPDATE_FIELDS, "issues"], **writes)
        if parsed and session.channel.conf.checks:
            enqueue_many(_check_directives(session))
        if parsed:
            transaction.on_commit(
                lambda: signals.session_modified.send(Session, session=session, ops=parsed, actor=actor)
            )
    return session


def apply_check_result(
    *,
    channel: ChannelRef,
    session_key: str,
    rev: int,
    code: str,
    ok: bool,
    detail: Mapping[str, Any] | None = None,
    issues: Sequence[Mapping[str, Any]] | None = None,
) -> bool:
    """Record the result of check ``code`` for ``rev``. A result for an older rev, or for
    a session that is no longer open, is stale and ignored: returns False.

    ``issues`` replace the issues this check raised before (each gets ``source`` = code)."""
    with transaction.atomic():
        session = lock_session(channel, session_key)
        if session.state != Session.State.OPEN or session.rev != rev:
            return False
        now = timezone.now()
        checks = dict(session.checks)
        checks[code] = {"rev": rev, "ok": bool(ok), "detail": dict(detail or {}), "at": now.isoformat()}
        session.checks = checks
        if issues is not None:
            kept = [i for i in session.issues if i.get("source") != code]
            session.issues = kept + [
                {
                    "id": str(i.get("id") or f"{code}-{n}"),
                    "code": str(i.get("code") or code),
                    "blocking": bool(i.get("blocking", True)),
                    "message": str(i.get("message", "")),
                    "actions": list(i.get("actions", [])),
                    "source": code,
                }
                for n, i in enumerate(issues, start=1)
            ]
        session.version += 1
        session.updated_at = now
        session.save(update_fields=["checks", "issues", "version", "updated_at"])
    return True


def session_end_specs(
    topics: Sequence[str], channel_code: str, session_key: str, rev: int, reason: str
) -> list[tuple[str, dict[str, Any]]]:
    """The directives a channel's ``session_end_directives`` gives for one session's end."""
    payload = {"channel_code": channel_code, "session_key": session_key, "rev": rev, "reason": reason}
    return [(topic, dict(payload)) for topic in topics]


def _send_session_ended(ended: list[tuple[str, str, int]], reason: str, actor: str) -> None:
    """Send ``session_ended`` for each ``(channel_code, session_key, rev)``."""
    for channel_code, session_key, rev in ended:
        signals.session_ended.send(
            Session, channel_code=channel_code, session_key=session_key, rev=rev, reason=reason, actor=actor
        )


def expire_sessions(*, now: datetime | None = None, batch_size: int = 500) -> int:
    """Abandon open sessions whose ``expires_at`` has passed; returns how many.

    Works in batches, each its own transaction, locking rows in ``pk`` order and
    skipping rows that a modify or commit holds right now (they are no longer idle).
    A batch enqueues the ``session_end_directives`` of all its sessions in one INSERT,
    and ``session_ended`` is sent for each once its batch committed."""
    now = now or timezone.now()
    channels = {pk: (code, ChannelConfig.from_dict(config or {})) for pk, code, config in
                Channel.objects.values_list("pk", "code", "config")}
    # Channels whose ended sessions need their keys and revs (for a directive or a receiver).
    wanted = set(channels) if signals.session_ended.has_listeners(Session) else {
        pk for pk, (_, channel_conf) in channels.items() if channel_conf.session_end_directives
    }

    def abandon(ids: list[int]) -> int:
        rows = Session.objects.filter(pk__in=ids, state=Session.State.OPEN)
        ended = [
            (channels[channel_id][0], key, rev, channels[channel_id][1].session_end_directives)
            for channel_id, key, rev in rows.filter(channel_id__in=wanted)
            .order_by("pk").values_list("channel_id", "session_key", "rev")
        ] if wanted else []
        count = rows.update(state=Session.State.ABANDONED, version=F("version") + 1, closed_at=now, updated_at=now)
        specs = [spec for code, key, rev, topics in ended for spec in session_end_specs(topics, code, key, rev, "expired")]
        if specs:
            enqueue_many(specs)
        if ended:
            keys = [(code, key, rev) for code, key, rev, _ in ended]
            transaction.on_commit(lambda: _send_session_ended(keys, "expired", ""))
        return count

    rows = Session.objects.filter(state=Session.State.OPEN, expires_at__lt=now)
    return in_locked_batches(rows, abandon, batch_size=batch_size, logger=logger, done="expired %s sessions")
