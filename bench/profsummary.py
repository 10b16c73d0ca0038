"""Where a profiled server's time goes: ``python -m bench.profsummary DIR`` reads the
pyinstrument sessions that ``bench/gunicorn_pyinstrument.py`` saved (``*.pyisession``),
combines each case's workers, and prints for each case the share of the busy time (the
time not spent waiting for a connection in ``select``) by package (self time; a
built-in is charged to its caller's package) and under a few call sites (inclusive)."""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

PACKAGES = [  # (label, path part), first match wins
    ("omniman", "/omniman/"),
    ("omniman_api", "/omniman_api/"),
    ("bench.drfmin", "/bench/drfmin/"),
    ("cafe", "/cafe/"),
    ("psycopg", "/psycopg/"),
    ("django.db", "/django/db/"),
    ("rest_framework", "/rest_framework/"),
    ("django (handler, middleware, http)", "/django/"),
    ("whitenoise", "/whitenoise/"),
    ("gunicorn", "/gunicorn/"),
    ("orjson/json", "json"),
]
# (label, function name, path part): inclusive time, outermost call only
SITES = [
    ("PostgreSQL round trips (psycopg wait, lock waits included)", "wait", "/psycopg/connection.py"),
    ("ORM query compile (SQLCompiler.as_sql)", "as_sql", "/django/db/models/sql/compiler.py"),
    ("middleware and handler (get_response minus the view)", "get_response", "/django/core/handlers/base.py"),
    ("view (_get_response)", "_get_response", "/django/core/handlers/base.py"),
    ("DRF initial: auth, permissions, throttles", "initial", "/rest_framework/views.py"),
    ("DRF finalize_response (negotiation, headers)", "finalize_response", "/rest_framework/views.py"),
    ("rendering (rendered_content)", "rendered_content", "/rest_framework/response.py"),
    ("request body parsing (Request._parse)", "_parse", "/rest_framework/request.py"),
    ("token authentication", "authenticate", "/rest_framework/authentication.py"),
    ("transaction.atomic exit (COMMIT)", "__exit__", "/django/db/transaction.py"),
]


def _package(path: str | None) -> str | None:
    if not path or path.startswith("<"):
        return None
    for label, part in PACKAGES:
        if part in path:
            return label
    return "other (stdlib, ...)"


def summarize(paths: list[Path]) -> dict[str, Any]:
    from pyinstrument.session import Session

    session = None
    for p in paths:
        s = Session.load(p)
        session = s if session is None else Session.combine(session, s)
    root = session.root_frame(trim_stem=False) if session else None
    by_pkg: Counter[str] = Counter()
    sites: Counter[str] = Counter()
    idle = 0.0

    def walk(frame: Any, inherited: str, active: frozenset[str]) -> None:
        nonlocal idle
        name = frame.function.rsplit(".", 1)[-1]
        pkg = _package(frame.file_path) or inherited
        if name == "select" and (frame.file_path or "").startswith("<"):
            idle += frame.time
            return
        by_pkg[pkg] += frame.total_self_time
        now = set(active)
        for label, func, part in SITES:
            if label not in active and name == func and part in (frame.file_path or ""):
                sites[label] += frame.time
                now.add(label)
        for child in frame.children:
            walk(child, pkg, frozenset(now))

    if root is not None:
        walk(root, "other (stdlib, ...)", frozenset())
    busy = sum(by_pkg.values()) or 1.0
    view = sites.pop("view (_get_response)", 0.0)
    mw = "middleware and handler (get_response minus the view)"
    sites[mw] = max(0.0, sites.get(mw, 0.0) - view)
    return {
        "busy_s": busy, "idle_s": idle,
        "packages": {k: v / busy for k, v in by_pkg.most_common()},
        "sites": {k: v / busy for k, v in sorted(sites.items(), key=lambda kv: -kv[1])},
    }


def render(session_file: Path, outdir: Path, strip: tuple[str, ...] = ()) -> Path:
    """One session as text: the self time by function, then the call tree; ``strip``
    removes this machine's path prefixes. Returns the text file."""
    from pyinstrument.renderers import ConsoleRenderer
    from pyinstrument.session import Session

    session = Session.load(session_file)
    requests = session_file.stem.rsplit("-", 1)[-1]
    flat = ConsoleRenderer(flat=True, time="percent_of_total").render(session)
    tree = ConsoleRenderer(time="percent_of_total").render(session)
    text = (f"requests profiled: {requests}\nSelf time by function (percent of the profiled time):\n{flat}\n"
            f"Call tree:\n{tree}")
    for local in strip:
        text = text.replace(local.rstrip("/") + "/", "")
    out = outdir / (session_file.stem + ".txt")
    out.write_text(text)
    return out


def summarize_dir(outdir: Path) -> dict[str, Any]:
    cases: dict[str, list[Path]] = {}
    for p in sorted(outdir.glob("*.pyisession")):
        cases.setdefault(re.sub(r"-\d+-\d+\.pyisession$", "", p.name), []).append(p)
    return {case: summarize(paths) for case, paths in cases.items()}


def text(summary: dict[str, Any]) -> str:
    lines = []
    for case, s in summary.items():
        lines.append(f"{case}: busy {s['busy_s']:.1f} s, idle in select {s['idle_s']:.1f} s")
        lines += [f"  {100 * v:5.1f} %  {k}" for k, v in s["packages"].items() if v >= 0.005]
        lines.append("  call sites (inclusive):")
        lines += [f"  {100 * v:5.1f} %  {k}" for k, v in s["sites"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    print(text(summarize_dir(Path(sys.argv[1]))))
