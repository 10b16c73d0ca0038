"""The deployment guide's "Run it" and "In one command", followed to the letter on
PostgreSQL and Redis. "Run it":
the exports, migrate, collectstatic, ``check --deploy``, gunicorn, a Celery worker
and beat, the health check, a ``web`` order over HTTP and its directives, done by the
worker. Every ``$`` line runs as printed, from the repository root, in one shell whose
exports carry over (the three long-running lines each in a background process that
starts from those exports); each output is compared with what the page shows.

"In one command": ``run_stack.py`` as printed, its output compared line by line with the
page's, pids, paths, keys and refs aside.

What the test gives that a reader would set up: the environment the page's exports
keep (its own database, the run's Redis, a free ``PORT``, a temporary ``STATE_DIR``),
and the suite's environment on ``PATH`` (gunicorn, celery, python; the page's
``pip install . -r example_project/requirements.txt`` is that environment). For
``run_stack.py``, a database of its own in ``PROD_DATABASE_URL`` (absent, so that it is
created as the page shows) and a free ``PROD_PORT``; their values are read back as the
page's defaults before the comparison."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.example.harness import ROOT, free_port, wait_for
from tests.guides.page import Shell, console_blocks, same_output
from tests.guides.test_first_hour import BROKER_URL, missing, wait_for_text
from tests.require import need_module

DEPLOYMENT = ROOT / "docs" / "guide" / "deployment.rst"
ONE_COMMAND = [["python example_project/prod/run_stack.py"]]
#: What run_stack.py prints that changes from run to run, besides refs: its log folder,
#: pids, the smoke test's session key, the order ref before its comma.
STACK_VOLATILE = [re.compile(p) for p in (
    r"\S*/omniman-stack-\w+", r"\d+\)", r"SMOKE-[0-9A-F]{8}:", r"[A-Z]+-[0-9A-Z]{5}-[0-9A-Z]{5},")]
RUN_IT = [
    ["export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/omniman_example}",
     "export CELERY_BROKER_URL=${CELERY_BROKER_URL:-redis://127.0.0.1:6379/14} "
     "REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/15}",
     'export DEBUG=0 SECRET_KEY=${SECRET_KEY:-$(python -c "import secrets; print(secrets.token_urlsafe(50))")}',
     "export STATE_DIR=${STATE_DIR:-$PWD/var} PORT=${PORT:-8000}",
     "export STATIC_ROOT=$STATE_DIR/static"],
    ["python example_project/manage.py migrate --noinput",
     "python example_project/manage.py collectstatic --noinput",
     "python example_project/manage.py check --deploy"],
    ["gunicorn --chdir example_project config.wsgi:application \\\n"
     "      --bind 127.0.0.1:$PORT --workers 2 --worker-class gthread --threads 4",
     "celery --workdir example_project -A config worker --concurrency 2 --loglevel INFO",
     "celery --workdir example_project -A config beat --schedule $STATE_DIR/celerybeat-schedule"],
    ["curl -s http://127.0.0.1:$PORT/api/health/; echo",
     "python example_project/manage.py omniman_seed",
     "export TOKEN=$(python example_project/manage.py omniman_token shop --channels web)",
     "python example_project/prod/web_order.py"],
    ["python example_project/manage.py omniman_directives list"],
]


def text_block_after(rst: Path, marker: str) -> list[str]:
    """The lines of the first ``.. code-block:: text`` after the paragraph holding ``marker``."""
    text = rst.read_text()
    block = re.search(r"\.\. code-block:: text\n\n((?:   .*\n|\n)+?)\n(?=\S)", text[text.index(marker):])
    return [line[3:] for line in block.group(1).splitlines() if line.strip()]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    """A database of this test's own on the run's PostgreSQL server, as ``createdb`` makes it."""
    import psycopg

    url = os.environ["DATABASE_URL"].rsplit("/", 1)
    name, admin = f"{url[1]}_deployment", f"{url[0]}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"{url[0]}/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_deployment_guide_has_the_blocks_this_test_runs() -> None:
    blocks = [[c.line for c in b] for b in console_blocks(DEPLOYMENT)]
    start = blocks.index(RUN_IT[0])
    assert blocks[start:start + len(RUN_IT)] == RUN_IT
    assert blocks[start + len(RUN_IT):] == ONE_COMMAND  # the page's last block


def _guide_env() -> dict[str, str]:
    """The suite's environment less what the page's lines set themselves, its
    ``python`` first on ``PATH``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_", "OMNIMAN_", "CELERY_", "VIRTUAL_ENV", "PROD_"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "SECRET_KEY", "DEBUG", "STATIC_ROOT", "TOKEN",
                         "HTTPS")}
    env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}", "PYTHONUNBUFFERED": "1"})
    return env


def _redis_up() -> None:
    redis = need_module("redis")
    try:
        redis.Redis.from_url(BROKER_URL).ping()
    except redis.exceptions.ConnectionError:
        missing(f"Redis is not reachable at {BROKER_URL}")


@pytest.mark.postgres
@pytest.mark.celery
def test_run_stack_runs_as_printed(tmp_path: Path) -> None:
    """``run_stack.py`` starts gunicorn, a worker and beat, commits a web order over
    HTTP with the stock check and both post-commit directives done by the worker, stops
    it all, and prints what the page shows."""
    import psycopg

    _redis_up()
    url = os.environ["DATABASE_URL"].rsplit("/", 1)
    name, admin = f"{url[1]}_stack", f"{url[0]}/postgres"

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    port = free_port()
    env = {**_guide_env(), "PROD_DATABASE_URL": f"{url[0]}/{name}", "PROD_PORT": str(port)}
    (command,) = console_blocks(DEPLOYMENT)[-1]
    drop()
    try:
        out = Shell(ROOT, env, state_dir=tmp_path).expect(
            command, timeout=400, volatile=STACK_VOLATILE,
            shown=lambda out: out.replace(f"database {name}\n", "database omniman_example\n")
                                 .replace(f"//127.0.0.1:{port}/", "//127.0.0.1:8380/"))
    finally:
        drop()
    assert "smoke test passed" in out


@pytest.mark.postgres
@pytest.mark.celery
def test_deployment_guide_runs_as_printed(tmp_path: Path, database: str) -> None:
    """gunicorn answers the health check, a web order placed over HTTP passes the
    worker's stock check, its directives end done in the worker, and beat's reaper
    reaches the worker on the directive queue."""
    _redis_up()
    port = free_port()
    env = {**_guide_env(), "DATABASE_URL": database, "CELERY_BROKER_URL": BROKER_URL, "REDIS_URL": BROKER_URL,
           "STATE_DIR": str(tmp_path / "var"), "PORT": str(port)}
    shell = Shell(ROOT, env, state_dir=tmp_path)
    blocks = console_blocks(DEPLOYMENT)
    start = [[c.line for c in b] for b in blocks].index(RUN_IT[0])
    exports, prepare, processes, try_it, listing = blocks[start:start + len(RUN_IT)]

    for command in exports + prepare:
        shell.expect(command, stderr=command.line.endswith("check --deploy"))  # its report goes there
    assert shell.variable("DEBUG") == "0" and len(shell.variable("SECRET_KEY")) > 50
    assert shell.variable("DATABASE_URL") == database  # kept, as the page says
    assert (tmp_path / "var" / "static" / "admin" / "css" / "base.css").exists()  # collectstatic

    with contextlib.ExitStack() as stack:
        logs = {name: tmp_path / f"{name}.log" for name in ("gunicorn", "worker", "beat")}
        gunicorn, worker, beat = (
            stack.enter_context(shell.background(command.line, log))
            for command, log in zip(processes, logs.values(), strict=True))
        banner = wait_for_text(logs["worker"], " ready.", worker)
        for line in text_block_after(DEPLOYMENT, "The worker's banner lists"):
            assert any(line.split() == seen.split() for seen in banner.splitlines()), (line, banner)
        wait_for(f"http://127.0.0.1:{port}/api/health/", gunicorn, logs["gunicorn"])

        for command in try_it:
            out = shell.expect(command)
        ref = re.search(r"^order (\S+) committed", out, re.M).group(1)
        assert ref.startswith("WEB-")
        deadline = time.monotonic() + 30
        while not same_output(listing[0].expected, got := shell.run(listing[0].line).stdout):
            assert time.monotonic() < deadline, got  # the worker is recording the outcomes
            time.sleep(0.2)
        worker_log = wait_for_text(logs["worker"], "omniman.reap_directives", worker)  # sent by beat
        assert "payment.capture" in worker_log or "omniman.run_directive" in worker_log
        for name, process in (("gunicorn", gunicorn), ("beat", beat)):
            assert process.poll() is None, f"{name} exited:\n{logs[name].read_text()[-3000:]}"
    # gunicorn sent the directives through the project's Celery app (not left them to the reaper).
    served = logs["gunicorn"].read_text()
    assert " ERROR " not in served and "omniman.E" not in served, served[-3000:]
