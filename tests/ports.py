"""Ports for the servers the tests start (runserver, gunicorn, redis-server, a
PostgreSQL cluster).

``dev.py test`` runs several pytest runs at once. Each gets its own share of every
range: ``OMNIMAN_TEST_PORT_SLICE=k/n`` gives a run the k-th of n equal parts (counted
from 1), so that a server one run stops and starts again on the same port never finds
it taken by another run, and a port one run expects nothing to listen on is never
another run's. Without it a run has the whole range."""

from __future__ import annotations

import os

from omniman.testing import stack


def port_range(first: int, last: int) -> tuple[int, int]:
    """This run's part of [first, last] (both ends included)."""
    spec = os.environ.get("OMNIMAN_TEST_PORT_SLICE", "")
    if not spec:
        return first, last
    try:
        k, n = (int(part) for part in spec.split("/"))
    except ValueError:
        raise ValueError(f"OMNIMAN_TEST_PORT_SLICE must read k/n, not {spec!r}") from None
    size = (last - first + 1) // n if n > 0 else 0
    if not 1 <= k <= n or size < 1:
        raise ValueError(f"OMNIMAN_TEST_PORT_SLICE={spec} does not split {first}-{last}")
    start = first + (k - 1) * size
    return start, start + size - 1


def free_port(first: int, last: int) -> int:
    """A port of this run's part of [first, last] that nothing is bound to, tried in
    random order."""
    return stack.free_port(*port_range(first, last), shuffled=True)
