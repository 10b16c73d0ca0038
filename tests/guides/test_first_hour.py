"""A host developer's first hour, followed to the letter: the quickstart (on SQLite,
and on PostgreSQL in the PostgreSQL run), then the Celery guide with a real worker
(PostgreSQL run). Every ``$`` line of those pages runs as printed, in one shell whose
exports carry over; the files the pages include are pasted in; each output is
compared with what the page shows.

What the test does that a reader would not: it installs from a copy of this tree
(``./omniman``) into a fresh venv in the SQLite run only (the PostgreSQL run uses the
suite's own environment, which has every extra); it serves on a free port instead of
8000 (``BASE`` for ``http.sh``); and on PostgreSQL it gives ``shop/settings.py`` a
``DATABASES`` of its own before the quickstart's lines, as a PostgreSQL host has."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.example.harness import ROOT, free_port, wait_for
from tests.guides.page import Shell, console_blocks, same_output
from tests.require import need, need_module

GUIDE = ROOT / "docs" / "guide"
QUICKSTART, QS = GUIDE / "quickstart.rst", GUIDE / "quickstart"
CELERY, RECIPE = GUIDE / "celery.rst", GUIDE / "celery_recipe"
DATABASE_URL = os.environ.get("DATABASE_URL", "")
ON_POSTGRES = DATABASE_URL.startswith("postgres")
BROKER_URL = os.environ.get("OMNIMAN_TEST_BROKER_URL", "redis://127.0.0.1:6379/5")
VENV_LINES = ["python3 -m venv .venv && . .venv/bin/activate", 'pip install "./omniman[api]"']

#: A celery.py as Celery's own Django guide writes it: no omniman.celery.configure(app).
CELERY_DOCS_APP = """import os
from celery import Celery
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
app = Celery("shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
"""


def missing(what: str) -> None:
    need(False, what)


@pytest.fixture(scope="module")
def postgres() -> Iterator[dict[str, object] | None]:
    """A database of this module's own on the run's PostgreSQL server."""
    if not ON_POSTGRES:
        yield None
        return
    import dj_database_url
    import psycopg

    config = dj_database_url.parse(DATABASE_URL)
    config["NAME"] = f"{config['NAME']}_first_hour"
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{config["NAME"]}"')
    yield config
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{config["NAME"]}" WITH (FORCE)')


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory, postgres: dict[str, object] | None) -> Shell:
    """The quickstart's "Install" and "Configure", done."""
    workdir = tmp_path_factory.mktemp("first-hour")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_", "OMNIMAN_", "CELERY_", "VIRTUAL_ENV"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH")}
    env["CELERY_BROKER_URL"] = BROKER_URL
    fresh = not ON_POSTGRES and not os.environ.get("OMNIMAN_SKIP_PACKAGING")
    if not fresh:
        env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    sh = Shell(workdir, env)

    install = console_blocks(QUICKSTART)[0]
    assert [c.line for c in install] == [
        *VENV_LINES, "django-admin startproject shop .", "python manage.py startapp counter"]
    if fresh:
        # The clone in ./omniman: this tree as it is, without its venv, build output and
        # caches (dev.py test's other steps write those meanwhile).
        shutil.copytree(ROOT, workdir / "omniman", ignore=shutil.ignore_patterns(
            ".venv", ".git", ".tox", "_build", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
            ".mypy_cache", ".ruff_cache", "mutants"))
        for command in install[:2]:
            sh.expect(command)
        assert Path(sh.variable("VIRTUAL_ENV")) == workdir / ".venv"
    for command in install[2:]:
        sh.expect(command)

    settings = workdir / "shop" / "settings.py"
    text = settings.read_text()
    if postgres is not None:
        text += "\nDATABASES = " + repr({"default": {**postgres, "OPTIONS": {"application_name": "shop"}}}) + "\n"
    settings.write_text(text + "\n" + (QS / "settings_snippet.py").read_text())
    shutil.copyfile(QS / "urls.py", workdir / "shop" / "urls.py")
    shutil.copyfile(QS / "omniman_handlers.py", workdir / "counter" / "omniman_handlers.py")
    for name in ("first_order.py", "http.sh"):
        shutil.copyfile(QS / name, workdir / name)
    return sh


def test_quickstart_has_the_blocks_this_test_runs() -> None:
    """And README gives the same install command as the quickstart."""
    assert f"\n    {VENV_LINES[1]}\n" in (ROOT / "README.rst").read_text()
    blocks = console_blocks(QUICKSTART)
    assert [[c.line for c in b] for b in blocks[1:]] == [
        ["python manage.py migrate"],
        ["python manage.py shell < first_order.py"],
        ["export TOKEN=$(python manage.py omniman_token terminal-1 --channels counter)",
         "python manage.py runserver"],
        ["python manage.py omniman_directives list"],
        ["python manage.py omniman_dispatch_directives --loop"],
    ]


def test_quickstart_first_order_in_python(shell: Shell) -> None:
    blocks = console_blocks(QUICKSTART)
    shell.expect(blocks[1][0])
    if ON_POSTGRES:
        engine = shell.run("python manage.py shell -c 'from django.db import connection as c; print(c.vendor)'")
        assert engine.stdout.split()[-1] == "postgresql"
    out = shell.expect(blocks[2][0])
    ref = re.search(r"^order (\S+) ", out, re.M).group(1)
    assert f"receipt for {ref} (attempt 1)" in out  # the handler from counter/omniman_handlers.py


def test_quickstart_over_http(shell: Shell) -> None:
    if not shutil.which("curl"):
        missing("curl is not installed")
    token_line, serve_line = console_blocks(QUICKSTART)[3]
    shell.expect(token_line)
    assert re.fullmatch(r"[0-9a-f]{40}", shell.variable("TOKEN"))
    port = free_port()
    log = shell.cwd / "runserver.log"
    with shell.background(f"{serve_line.line} 127.0.0.1:{port} --noreload", log) as server:
        wait_for(f"http://127.0.0.1:{port}/api/health/", server, log)
        out = shell.run(f"BASE=http://127.0.0.1:{port}/api bash http.sh").stdout
    health, created, modified, committed = (json.loads(line) for line in out.splitlines() if line.strip())
    assert health["status"] == "ok"
    assert (created["session_key"], created["rev"]) == ("TABLE-2", 0)
    assert (modified["rev"], modified["total_q"]) == (1, 300)
    shown = json.loads(re.search(r"\.\. code-block:: json\n\n(.*?)\n\n", QUICKSTART.read_text(), re.S).group(1))
    assert re.fullmatch(r"COUNTER-[0-9A-Z]{5}-[0-9A-Z]{5}", committed["order_ref"])
    assert {**committed, "order_ref": shown["order_ref"]} == shown
    # The served project has the handler too: the commit's directive ran there.
    assert f"receipt for {committed['order_ref']} (attempt 1)" in log.read_text()
    shell.expect(console_blocks(QUICKSTART)[4][0])  # every directive done


def test_quickstart_reaper_loop_runs_due_directives(shell: Shell) -> None:
    """``omniman_dispatch_directives --loop`` is what runs retries in process."""
    (loop,) = console_blocks(QUICKSTART)[5]
    # Directive 1 due again, as a retry whose backoff has passed would be.
    shell.run("python manage.py shell -c \"from omniman.models import Directive; "
              "Directive.objects.filter(pk=1).update(status='queued', dispatched_at=None)\"")
    log = shell.cwd / "loop.log"
    with shell.background(loop.line, log) as process:
        wait_for_text(log, "(attempt 2)", process)
        deadline = time.monotonic() + 30
        while (first := shell.run("python manage.py omniman_directives list").stdout.splitlines()[-1]).split()[
                :4] != ["1", "receipt.print", "done", "2/5"]:
            assert time.monotonic() < deadline, first  # the outcome is being recorded
            time.sleep(0.2)


def wait_for_text(log: Path, text: str, process: subprocess.Popen[bytes], timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = log.read_text(errors="replace") if log.exists() else ""
        if text in content:
            return content
        if process.poll() is not None:
            break
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in {log.name} within {timeout} s:\n{log.read_text(errors='replace')[-4000:]}")


# -- the Celery guide, on PostgreSQL with a real worker -------------------------------


@pytest.fixture(scope="module")
def redis_broker() -> None:
    redis = need_module("redis")
    try:
        redis.Redis.from_url(BROKER_URL).ping()
    except redis.exceptions.ConnectionError:
        missing(f"Redis is not reachable at {BROKER_URL}")


@pytest.mark.postgres
@pytest.mark.celery
def test_celery_guide_with_a_real_worker(shell: Shell, redis_broker: None) -> None:
    blocks = console_blocks(CELERY)
    assert [[c.line for c in b] for b in blocks[:3]] == [
        ['pip install "./omniman[celery]"'],
        ["python manage.py check --database default", "celery -A shop worker --loglevel INFO"],
        ["python manage.py shell < order.py", "python manage.py omniman_directives list --limit 1"],
    ]
    check, run_worker = blocks[1]
    commit, listing = blocks[2]
    # pip: the suite's environment already has the extra (see the module's docstring).
    settings = shell.cwd / "shop" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + (RECIPE / "settings_snippet.py").read_text())
    shutil.copyfile(RECIPE / "order.py", shell.cwd / "order.py")

    # Mistake 1: shop/celery.py written, but not imported by shop/__init__.py.
    shutil.copyfile(RECIPE / "celery.py", shell.cwd / "shop" / "celery.py")
    forgot = shell.run(check.line, check=False)
    assert forgot.returncode == 1 and "omniman.E202" in forgot.stderr, forgot.stderr

    # Mistake 2: a celery.py from Celery's own Django guide: the worker refuses to start.
    shutil.copyfile(RECIPE / "__init__.py", shell.cwd / "shop" / "__init__.py")
    (shell.cwd / "shop" / "celery.py").write_text(CELERY_DOCS_APP)
    name = f"-n guide-{uuid.uuid4().hex[:8]}@%h"
    log = shell.cwd / "plain-worker.log"
    with shell.background(f"{run_worker.line} {name}", log) as plain:
        assert plain.wait(90) == 1
    assert "omniman.E204" in log.read_text() and "omniman.celery.configure(app)" in log.read_text()

    # The recipe, as printed.
    shutil.copyfile(RECIPE / "celery.py", shell.cwd / "shop" / "celery.py")
    shell.expect(check)
    log = shell.cwd / "worker.log"
    with shell.background(f"{run_worker.line} {name}", log) as worker:
        wait_for_text(log, " ready.", worker)
        out = shell.expect(commit)
        assert "receipt for" not in out  # not run in this process: in the worker
        ref = out.split()[-1]
        wait_for_text(log, f"receipt for {ref} (attempt 1)", worker)
        deadline = time.monotonic() + 30
        while not same_output(listing.expected, shell.run(listing.line).stdout):
            assert time.monotonic() < deadline, shell.run(listing.line).stdout  # the outcome is being recorded
            time.sleep(0.2)


def _statements(path: Path, project: str) -> list[str]:
    """The module's statements, less its docstring and ``__future__`` imports, with the
    project's package name written ``PROJECT``."""
    body = ast.parse(path.read_text()).body
    kept = [node for node in body
            if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
            and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")]
    return [ast.unparse(node).replace(f"'{project}.", "'PROJECT.").replace(f"'{project}'", "'PROJECT'")
            for node in kept]


def test_the_example_project_runs_the_guides_celery_recipe() -> None:
    """The deployment guide's example (``config``) and the Celery guide (``shop``) share one recipe."""
    assert _statements(ROOT / "example_project" / "config" / "celery.py", "config") == _statements(
        RECIPE / "celery.py", "shop")
    init = (ROOT / "example_project" / "config" / "__init__.py").read_text()
    assert "from config.celery import app as celery_app" in init
