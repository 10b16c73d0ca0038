"""A gunicorn config file (``-c bench/gunicorn_pyinstrument.py``) that profiles each
worker with pyinstrument from its request number ``BENCH_PROFILE_SKIP`` + 1 (default 21:
the first ones import the URLconf and open the connection) to its exit, and writes the
profile as text to ``$BENCH_PROFILE_DIR/<BENCH_PROFILE_NAME>-<pid>.txt`` when the worker
exits (the self time of each function, then pyinstrument's call tree), and the session
itself (``.pyisession``) for ``python -m bench.profsummary``. Used by ``python -m bench --only prod-profile``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

_state: dict[str, Any] = {"seen": 0, "profiled": 0, "profiler": None}


def pre_request(worker: Any, req: Any) -> None:
    """Start once and run to the end: the idle wait for the next connection shows as
    ``select`` (restarting the profiler per request would charge that wait to the first
    frame of the next request)."""
    _state["seen"] += 1
    if _state["profiler"] is not None:
        _state["profiled"] += 1
    elif _state["seen"] > int(os.environ.get("BENCH_PROFILE_SKIP", "20")):
        from pyinstrument import Profiler

        _state["profiler"] = Profiler(interval=0.001)
        _state["profiler"].start()
        _state["profiled"] += 1


def worker_exit(server: Any, worker: Any) -> None:
    """Save the session only (rendering it under load could outlast the graceful
    timeout); ``bench.profsummary`` renders and summarises it."""
    profiler = _state["profiler"]
    if profiler is None:
        return
    profiler.stop()
    out = Path(os.environ["BENCH_PROFILE_DIR"])
    out.mkdir(parents=True, exist_ok=True)
    name = os.environ.get("BENCH_PROFILE_NAME", "worker")
    session = profiler.last_session
    session.save(out / f"{name}-{os.getpid()}-{_state['profiled']}.pyisession")
