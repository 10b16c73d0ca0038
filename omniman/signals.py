"""Signals for host projects, each sent after the transaction commits, with keyword
arguments. Work that must happen belongs in a directive, not a receiver."""

from __future__ import annotations

from django.dispatch import Signal

#: A modify was committed. Arguments: ``session``, ``ops`` (the parsed ops), ``actor``.
session_modified = Signal()

#: A session became an order. Arguments: ``order``, ``session``, ``actor``.
order_committed = Signal()

#: An order moved along its channel's flow. Arguments: ``order``, ``old_status``,
#: ``new_status``, ``actor``, ``reason`` (``None`` when none was given).
order_status_changed = Signal()

#: A session ended without an order: abandoned, or expired by ``expire_sessions``.
#: Arguments: ``channel_code``, ``session_key``, ``rev``, ``reason`` (``"abandoned"``
#: or ``"expired"``), ``actor`` (``""`` for an expiry). Sent once per session.
session_ended = Signal()

#: A directive failed for good. Arguments: ``directive``.
directive_failed = Signal()
