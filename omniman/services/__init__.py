"""The Python API of omniman: every write goes through one of these functions."""

from __future__ import annotations

from omniman.services.commit import CommitResult, commit_session
from omniman.services.imports import import_order
from omniman.services.locks import GrantedChannel
from omniman.services.orders import touch_order, transition_order
from omniman.services.sessions import (
    abandon_session,
    apply_check_result,
    create_session,
    expire_sessions,
    get_session,
    modify_session,
    resolve_issue,
)

__all__ = [
    "CommitResult",
    "GrantedChannel",
    "abandon_session",
    "apply_check_result",
    "commit_session",
    "create_session",
    "expire_sessions",
    "get_session",
    "import_order",
    "modify_session",
    "resolve_issue",
    "touch_order",
    "transition_order",
]
