#!/usr/bin/env python3
"""Developer entry point; needs nothing but Python 3.11+.

    python3 dev.py serve   # venv, install, migrate, seed, serve the example at http://127.0.0.1:8000/
    python3 dev.py test    # venv, install, then lint, tests on SQLite, tests on PostgreSQL, docs
    python3 dev.py bench [--quick] [--only SCENARIO]   # venv, install, then python -m bench
    python3 dev.py mutate [MUTANT ...]   # venv, install mutmut, mutation run of the core (slow)

Environment: DATABASE_URL (PostgreSQL for the second test run; default
postgres://postgres@127.0.0.1:5432/omniman), OMNIMAN_REQUIRE_SERVICES=1 (fail instead of
skipping when PostgreSQL, Redis, Chromium or curl is missing; CI sets it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/omniman"
REQUIRE = os.environ.get("OMNIMAN_REQUIRE_SERVICES") == "1"
#: Tests that touch no database: run once, in the SQLite run.
NO_DATABASE = ["tests/test_ops.py", "tests/test_money.py", "tests/test_import_cycles.py"]
#: Left out of the server-side binding run: the example, the guides and the reliability
#: tests start servers with their own settings, which never see the option (the same
#: run twice); the packaging test runs in the SQLite run only; the HTTP reference is
#: rendered from the document, no query; and NO_DATABASE. Everything else (the Celery
#: workers of tests/directives import tests/settings.py too) runs again that way.
NOT_BOUND = ["tests/example", "tests/guides", "tests/reliability", "tests/test_packaging.py",
             "tests/test_http_reference.py", *NO_DATABASE]


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def run(*args: object, env: dict[str, str] | None = None, check: bool = True) -> int:
    cmd = [str(a) for a in args]
    result = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **(env or {})})
    if check and result.returncode:
        sys.exit(f"command failed ({result.returncode}): {' '.join(cmd)}")
    return result.returncode


def ensure_venv(extras: str, requirements: list[str]) -> None:
    """Create .venv and install the project; skipped when nothing it depends on changed."""
    if not PY.exists():
        say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    digest = hashlib.sha256(extras.encode())
    for name in ["pyproject.toml", *requirements]:
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{extras}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    say(f"installing omniman[{extras}]" + "".join(f" -r {r}" for r in requirements))
    run(PY, "-m", "pip", "install", "-q", "--upgrade", "pip")
    args: list[str] = ["-e", f".[{extras}]"]
    for req in requirements:
        args += ["-r", req]
    run(PY, "-m", "pip", "install", "-q", *args)
    stamp.write_text(digest.hexdigest())


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def apt_install(*packages: str) -> None:
    """Install Debian packages when we may (root and apt-get); a failure is left to the caller."""
    if shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        say(f"installing {' and '.join(packages)} (Debian packages)")
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        if run("apt-get", "install", "-y", "-q", *packages, env=env, check=False):
            run("apt-get", "update", "-q", env=env, check=False)
            run("apt-get", "install", "-y", "-q", *packages, env=env, check=False)


def ensure_chromium() -> bool:
    """Debian's chromium and chromium-driver for the browser tests."""
    if shutil.which("chromedriver") and (shutil.which("chromium") or shutil.which("chromium-browser")):
        return True
    apt_install("chromium", "chromium-driver")
    return bool(shutil.which("chromedriver"))


def ensure_curl() -> bool:
    """curl, which the quickstart's HTTP steps run as printed."""
    if not shutil.which("curl"):
        apt_install("curl")
    return bool(shutil.which("curl"))


def example_requirements() -> list[str]:
    req = "example_project/requirements.txt"
    return [req] if (ROOT / req).exists() else []


def serve() -> None:
    ensure_venv("api,celery", example_requirements())
    manage = [PY, "example_project/manage.py"]
    say("migrating and seeding the example")
    run(*manage, "migrate", "--noinput")
    run(*manage, "omniman_seed")
    say("serving http://127.0.0.1:8000/  (POS /pos/, kitchen /kds/, admin /admin/, API /api/; user demo / demo)")
    os.execv(str(PY), [str(PY), "example_project/manage.py", "runserver", "127.0.0.1:8000"])


def test(pytest_args: list[str]) -> None:
    started = time.monotonic()
    ensure_venv("dev", example_requirements())
    has_chromium = ensure_chromium()
    if not has_chromium:
        if REQUIRE:
            sys.exit("chromium/chromedriver are missing and could not be installed")
        print("chromium is not available: browser tests will be skipped")
    if not ensure_curl():
        if REQUIRE:
            sys.exit("curl is missing and could not be installed")
        print("curl is not available: the quickstart's HTTP steps will be skipped")
    say("ruff")
    run(PY, "-m", "ruff", "check", ".")
    say("mypy (strict, omniman and omniman_api)")
    run(PY, "-m", "mypy")
    say("tests on SQLite")
    env = {"DATABASE_URL": "", "OMNIMAN_BROWSER_TESTS": "1" if has_chromium else "0"}
    # Coverage of omniman and omniman_api over the SQLite and PostgreSQL runs together
    # (the PostgreSQL-only paths count); printed after the last of them.
    run(PY, "-m", "pytest", "--cov", "--cov-report=", *pytest_args, env=env)
    covered = False
    pg_url = os.environ.get("DATABASE_URL") or DEFAULT_PG
    if port_open("127.0.0.1", 5432) or "127.0.0.1" not in pg_url:
        say("tests on PostgreSQL")
        env = {"DATABASE_URL": pg_url, "OMNIMAN_BROWSER_TESTS": "0", "OMNIMAN_PG_RUN": "1"}
        if not port_open("127.0.0.1", 6379):
            if REQUIRE:
                sys.exit("Redis is not running on 127.0.0.1:6379")
            print("Redis is not running: Celery tests will be skipped")
        # Pure Python (the op engine and money properties, the import graph) gives the
        # same answer whatever the database: it ran in the SQLite run.
        no_database = [] if pytest_args else [f"--ignore={t}" for t in NO_DATABASE]
        run(PY, "-m", "pytest", "--cov", "--cov-append", "--cov-report=", *no_database, *pytest_args, env=env)
        covered = True
        report_coverage()
        if not pytest_args:
            # Hosts may turn on psycopg's server-side binding and prepared statements
            # (OPTIONS server_side_binding, prepare_threshold): once more that way, the
            # tests whose queries go through the suite's DATABASES (workers included).
            say("tests on PostgreSQL, server-side binding")
            run(PY, "-m", "pytest", "-q", "tests", *(f"--ignore={t}" for t in NOT_BOUND),
                env={**env, "OMNIMAN_TEST_SERVER_SIDE_BINDING": "1"})
    elif REQUIRE:
        sys.exit("PostgreSQL is not reachable on 127.0.0.1:5432")
    else:
        print("PostgreSQL is not reachable: the PostgreSQL run is skipped")
    if not covered:
        report_coverage()
    if (ROOT / "docs" / "conf.py").exists():
        say("docs (sphinx-build -W)")
        run(PY, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", "docs", "docs/_build/html")
    say(f"all green in {time.monotonic() - started:.0f} s")


def report_coverage() -> None:
    """The coverage table of the modules not fully covered, and the total figure."""
    say("coverage (omniman, omniman_api; branches included)")
    run(PY, "-m", "coverage", "report", "--precision=1")


def bench(args: list[str]) -> None:
    ensure_venv("dev,bench", example_requirements())
    os.execv(str(PY), [str(PY), "-m", "bench", *args])


def mutate(args: list[str]) -> None:
    """mutmut over the modules [tool.mutmut] names: one worker, at low priority, with
    the hypothesis profile of fewer examples; then the survivors. Results stay in
    mutants/, so a second run tests only what the first did not reach."""
    ensure_venv("dev,mutation", example_requirements())
    env = {"OMNIMAN_HYPOTHESIS_PROFILE": "mutation"}
    run("nice", "-n", "10", BIN / "mutmut", "run", "--max-children", "1", *args, env=env, check=False)
    run(BIN / "mutmut", "results", env=env, check=False)


def main() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py may be run by an older python3
        sys.exit("omniman needs Python 3.11 or newer")
    command, *rest = sys.argv[1:] or ["help"]
    if command == "serve":
        serve()
    elif command == "test":
        test(rest)
    elif command == "bench":
        bench(rest)
    elif command == "mutate":
        mutate(rest)
    else:
        print(__doc__)
        sys.exit(0 if command in ("help", "-h", "--help") else 2)


if __name__ == "__main__":
    main()
