#!/usr/bin/env python3
"""Developer entry point; needs nothing but Python 3.11+.

    python3 dev.py serve   # venv, install, migrate, seed, serve the example at http://127.0.0.1:8000/
    python3 dev.py test    # venv, install, then lint, types, the test runs and docs, in parallel
    python3 dev.py bench [--quick] [--only SCENARIO]   # venv, install, then python -m bench
    python3 dev.py mutate [MUTANT ...]   # venv, install mutmut, mutation run of the core (slow)

Environment: DATABASE_URL (PostgreSQL for the test runs on it; default
postgres://postgres@127.0.0.1:5432/omniman), OMNIMAN_REQUIRE_SERVICES=1 (fail instead of
skipping when PostgreSQL, Redis, Chromium or curl is missing; CI sets it),
OMNIMAN_TEST_JOBS (how many steps of ``test`` run at once; default: cores + 1).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import venv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/omniman"
REQUIRE = os.environ.get("OMNIMAN_REQUIRE_SERVICES") == "1"
#: Tests that touch no database: run once, in the SQLite run.
NO_DATABASE = ["tests/test_ops.py", "tests/test_money.py", "tests/test_import_cycles.py", "tests/test_dev.py",
               "tests/test_ports.py"]
#: Left out of the server-side binding run: the example, the guides and the reliability
#: tests start servers with their own settings, which never see the option (the same
#: run twice); the packaging test runs in the SQLite run only; the HTTP reference is
#: rendered from the document, no query; and NO_DATABASE. Everything else (the Celery
#: workers of tests/directives import tests/settings.py too) runs again that way.
NOT_BOUND = ["tests/example", "tests/guides", "tests/reliability", "tests/test_packaging.py",
             "tests/test_http_reference.py", *NO_DATABASE]
#: The longest single test, a step of its own.
SCHEMATHESIS = "tests/example/test_schemathesis.py"
#: The pytest runs, each with its own share of the tests' port ranges (tests/ports.py).
PYTEST_STEPS = ["sqlite", "postgresql", "schemathesis", "bound"]
#: The Redis databases of the Celery tests (as in tests/directives) unless
#: OMNIMAN_TEST_BROKER_URL and OMNIMAN_TEST_MARKS_URL say otherwise.
DEFAULT_BROKER = "redis://127.0.0.1:6379/5"
DEFAULT_MARKS = "redis://127.0.0.1:6379/6"
#: Lines of a failed step's log printed at its end; runs whose logs are kept.
LOG_TAIL = 60
KEEP_RUNS = 10


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


def as_root() -> list[str] | None:
    """What runs a command as root: nothing as root, ``sudo -n`` where sudo may without
    a password, else ``None``."""
    if not hasattr(os, "geteuid"):
        return None
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and not subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode:
        return ["sudo", "-n"]
    return None


def apt_install(*packages: str) -> None:
    """Install Debian packages when we may (apt-get, as root or through sudo without a
    password); a failure is left to the caller."""
    root = as_root()
    if not shutil.which("apt-get") or root is None:
        print(f"cannot install {' and '.join(packages)}: needs apt-get, and root or sudo without a password")
        return
    say(f"installing {' and '.join(packages)} (Debian packages)")
    apt = [*root, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    if run(*apt, "install", "-y", "-q", *packages, check=False):
        run(*apt, "update", "-q", check=False)
        run(*apt, "install", "-y", "-q", *packages, check=False)


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


@dataclass
class Step:
    """One part of ``dev.py test``: a command with its own environment, log and, for a
    pytest run, its own ``--basetemp`` (removed when the step passes)."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    basetemp: Path | None = None
    coverage: Path | None = None


@dataclass
class Outcome:
    step: Step
    returncode: int
    seconds: float
    log: Path


def test_jobs() -> int:
    """How many steps run at once: ``OMNIMAN_TEST_JOBS``, else the usable cores plus one
    (the steps wait on servers, workers and PostgreSQL much of the time)."""
    value = os.environ.get("OMNIMAN_TEST_JOBS", "")
    if not value:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        return cores + 1
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"OMNIMAN_TEST_JOBS must be a whole number of at least 1, not {value!r}")
    return int(value)


def run_steps(steps: list[Step], jobs: int, logs: Path) -> list[Outcome]:
    """Run ``steps`` at most ``jobs`` at a time, in the order given (put the longest
    first), each writing ``<logs>/<name>.log``. A line when each starts and ends; the
    end of the log of each that fails."""
    lock = threading.Lock()

    def one(step: Step) -> Outcome:
        log = logs / f"{step.name}.log"
        with lock:
            print(f"    start {step.name}", flush=True)
        started = time.monotonic()
        with log.open("wb") as out:
            out.write(f"$ {' '.join(step.command)}\n".encode())
            out.flush()
            code = subprocess.run(step.command, cwd=ROOT, env={**os.environ, **step.env}, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL).returncode
        done = Outcome(step, code, time.monotonic() - started, log)
        with lock:
            status = "ok" if code == 0 else f"FAILED (exit {code})"
            print(f"    {status:<6} {step.name:<12} {done.seconds:6.0f} s   {relative(log)}", flush=True)
            if code:
                tail = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
                print("\n".join(f"    | {line}" for line in tail), flush=True)
            if step.basetemp is not None:
                if code:
                    print(f"    its temporary files are kept in {step.basetemp}", flush=True)
                else:
                    shutil.rmtree(step.basetemp, ignore_errors=True)
        return done

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, steps))


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def run_folder() -> Path:
    """``build/test-runs/<time>/`` for this run's logs and coverage data; the ten most
    recent runs are kept."""
    runs = ROOT / "build" / "test-runs"
    folder = runs / time.strftime("%Y%m%d-%H%M%S")
    while folder.exists():
        folder = folder.with_name(folder.name + "x")
    folder.mkdir(parents=True)
    for old in sorted(runs.iterdir())[:-KEEP_RUNS]:
        shutil.rmtree(old, ignore_errors=True)
    return folder


def with_database(url: str, suffix: str) -> str:
    """``url`` naming the database ``<its name>_<suffix>`` instead."""
    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/") or "omniman"
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}_{suffix}"))


def pytest_step(name: str, args: list[str], env: dict[str, str], tmp: Path, coverage: Path | None) -> Step:
    """A pytest run with its own ``--basetemp`` under ``tmp`` and, when it measures
    coverage, its own data file ``coverage`` (combined at the end)."""
    basetemp = tmp / name
    cov = ["--cov", "--cov-report="] if coverage else []
    env = {**env, **({"COVERAGE_FILE": str(coverage)} if coverage else {})}
    # The slowest tests at the end of each log: what to look at when a step grows.
    command = [str(PY), "-m", "pytest", *cov, *args, "--durations=15", f"--basetemp={basetemp}"]
    return Step(name, command, env, basetemp, coverage)


def plan(pytest_args: list[str], *, pg_url: str | None, browser: bool, logs: Path, tmp: Path) -> list[Step]:
    """The steps of ``dev.py test``, ruff first (seconds, and a lint error shows at
    once), then the longest first; the PostgreSQL runs only with ``pg_url``. Each pytest
    run has its own share of the port ranges the tests start servers in
    (``tests/ports.py``), its own PostgreSQL databases, Redis broker database,
    ``--basetemp`` and coverage data, so that they can run at the same time."""
    slot = {name: {"OMNIMAN_TEST_PORT_SLICE": f"{i}/{len(PYTEST_STEPS)}"}
            for i, name in enumerate(PYTEST_STEPS, start=1)}
    steps = [Step("ruff", [str(PY), "-m", "ruff", "check", "."])]
    on_pg = {"OMNIMAN_BROWSER_TESTS": "0", "OMNIMAN_PG_RUN": "1"}
    if pg_url:
        # Pure Python (the op engine and money properties, the import graph) gives the
        # same answer whatever the database: it runs in the SQLite run. The schemathesis
        # test, the longest of all, is a step of its own.
        left_out = [] if pytest_args else [f"--ignore={t}" for t in [*NO_DATABASE, SCHEMATHESIS]]
        steps.append(pytest_step("postgresql", [*left_out, *pytest_args],
                                 {**slot["postgresql"], **on_pg, "DATABASE_URL": pg_url},
                                 tmp, logs / "coverage.postgresql"))
    steps.append(pytest_step("sqlite", pytest_args,
                             {**slot["sqlite"], "DATABASE_URL": "", "OMNIMAN_BROWSER_TESTS": "1" if browser else "0"},
                             tmp, logs / "coverage.sqlite"))
    if pg_url and not pytest_args:
        steps.append(pytest_step("schemathesis", ["-rP", SCHEMATHESIS],
                                 {**slot["schemathesis"], **on_pg, "DATABASE_URL": with_database(pg_url, "fuzz")},
                                 tmp, None))
        # Hosts may turn on psycopg's server-side binding and prepared statements
        # (OPTIONS server_side_binding, prepare_threshold): once more that way, the
        # tests whose queries go through the suite's DATABASES (workers included). The
        # two Redis databases swap roles in this run: its workers' broker is the
        # other's marks database, so no two runs' workers share a broker database.
        broker = os.environ.get("OMNIMAN_TEST_BROKER_URL") or DEFAULT_BROKER
        marks = os.environ.get("OMNIMAN_TEST_MARKS_URL") or DEFAULT_MARKS
        bound = {**slot["bound"], **on_pg, "DATABASE_URL": with_database(pg_url, "bound"),
                 "OMNIMAN_TEST_SERVER_SIDE_BINDING": "1",
                 "OMNIMAN_TEST_BROKER_URL": marks, "OMNIMAN_TEST_MARKS_URL": broker}
        steps.append(pytest_step("bound", ["-q", "tests", *(f"--ignore={t}" for t in NOT_BOUND)], bound, tmp, None))
    steps.append(Step("mypy", [str(PY), "-m", "mypy"]))
    if (ROOT / "docs" / "conf.py").exists():
        steps.append(Step("sphinx", [str(PY), "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                                     "docs", "docs/_build/html"]))
    return steps


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
    pg_url = os.environ.get("DATABASE_URL") or DEFAULT_PG
    on_postgres = port_open("127.0.0.1", 5432) or "127.0.0.1" not in pg_url
    if not on_postgres:
        if REQUIRE:
            sys.exit("PostgreSQL is not reachable on 127.0.0.1:5432")
        print("PostgreSQL is not reachable: the PostgreSQL runs are skipped")
    elif not port_open("127.0.0.1", 6379):
        if REQUIRE:
            sys.exit("Redis is not running on 127.0.0.1:6379")
        print("Redis is not running: Celery tests will be skipped")

    logs = run_folder()
    tmp = Path(tempfile.mkdtemp(prefix=f"omniman-test-{logs.name}-"))
    steps = plan(pytest_args, pg_url=pg_url if on_postgres else None, browser=has_chromium, logs=logs, tmp=tmp)
    jobs = test_jobs()
    say(f"{len(steps)} steps, {jobs} at a time: {', '.join(s.name for s in steps)}; logs in {relative(logs)}/")
    outcomes = run_steps(steps, jobs, logs)
    failed = [o.step.name for o in outcomes if o.returncode]
    measured = [o for o in outcomes if o.step.coverage]
    if measured and not any(o.returncode for o in measured):
        report_coverage([o.step.coverage for o in measured if o.step.coverage], logs / "coverage")
    if not failed:
        shutil.rmtree(tmp, ignore_errors=True)
    took = time.monotonic() - started
    if failed:
        sys.exit(f"\n==> failed: {', '.join(failed)} ({took:.0f} s; logs in {relative(logs)}/)")
    say(f"all green in {took:.0f} s")


def report_coverage(parts: list[Path], combined: Path) -> None:
    """The coverage of omniman and omniman_api over the SQLite and PostgreSQL runs
    together (the PostgreSQL-only paths count): the modules not fully covered, and the
    total figure."""
    say("coverage (omniman, omniman_api; branches included; SQLite and PostgreSQL runs)")
    env = {"COVERAGE_FILE": str(combined)}
    run(PY, "-m", "coverage", "combine", "--keep", "-q", *parts, env=env)
    run(PY, "-m", "coverage", "report", "--precision=1", env=env)


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
