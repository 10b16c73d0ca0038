"""The imports guide, followed to the letter on the example: every ``$`` line runs as
printed from the repository root, in one shell whose exports carry over (the server's
line in a background process), and each output is compared with what the page shows.

What the test gives that a reader would set up: a database of its own (a SQLite file
in a temporary folder, through ``DATABASE_URL``), a free ``PORT``, and the suite's
environment on ``PATH``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tests.example.harness import ROOT, free_port, wait_for
from tests.guides.page import Shell, console_blocks

IMPORTS = ROOT / "docs" / "guide" / "imports.rst"


def test_the_imports_guide_runs_as_printed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "PYTEST_", "OMNIMAN_", "CELERY_", "VIRTUAL_ENV"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PYTHONPATH", "TOKEN", "PORT")}
    port = free_port()
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "DEBUG": "1",
        "PORT": str(port), "PYTHONUNBUFFERED": "1",
    })
    shell = Shell(ROOT, env, state_dir=tmp_path)
    setup, (server,), *rest = console_blocks(IMPORTS)
    assert server.line == "python example_project/manage.py runserver ${PORT:-8000}"
    for command in setup:
        shell.expect(command)
    assert len(shell.variable("TOKEN")) == 40
    log = tmp_path / "server.log"
    with shell.background(server.line, log) as process:
        wait_for(f"http://127.0.0.1:{port}/api/health/", process, log)
        commands = [command for block in rest for command in block]
        assert len(commands) == 6
        for command in commands:
            shell.expect(command)
