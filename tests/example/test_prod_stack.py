"""The production recipe, run: gunicorn, a Celery worker and beat on PostgreSQL and Redis."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.example.harness import EXAMPLE, ROOT, free_port

pytestmark = [pytest.mark.postgres, pytest.mark.celery]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_production_stack_commits_end_to_end() -> None:
    """run_stack.py starts everything, commits a web order over HTTP with the stock
    check and both post-commit directives done by the worker, and stops it all."""
    if not _redis_up():
        if os.environ.get("OMNIMAN_REQUIRE_SERVICES") == "1":
            pytest.fail("Redis is not running on 127.0.0.1:6379")
        pytest.skip("Redis is not running on 127.0.0.1:6379")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST_"))}
    env["PROD_PORT"] = str(free_port())
    result = subprocess.run(
        [sys.executable, str(EXAMPLE / "prod" / "run_stack.py"), "--fresh"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "stock check: ok for rev 1 (written by the worker)" in output
    assert "the replay answered the same" in output
    assert "directive payment.capture" in output and "directive notification.order_committed" in output
    assert "beat: the reaper ran in the worker" in output
    assert "smoke test passed" in output
    for name in ("gunicorn", "worker", "beat"):
        assert f"stopped {name}" in output
