"""The quickstart, followed to the letter: a new Django project, the docs' snippets
pasted in, its shell scripts and curl calls run, and their output checked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.example.harness import ROOT, Example, example_env

DOCS = ROOT / "docs" / "guide" / "quickstart"


def run(cmd: list[str], cwd: Path, env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"{cmd} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Example:
    """``django-admin startproject shop .`` with the quickstart's settings and urls."""
    workdir = tmp_path_factory.mktemp("quickstart")
    env = example_env(DJANGO_SETTINGS_MODULE="shop.settings")
    run([sys.executable, "-m", "django", "startproject", "shop", "."], workdir, env)
    settings = workdir / "shop" / "settings.py"
    settings.write_text(settings.read_text() + "\n" + (DOCS / "settings_snippet.py").read_text())
    shutil.copyfile(DOCS / "urls.py", workdir / "shop" / "urls.py")
    run([sys.executable, "manage.py", "migrate", "--noinput"], workdir, env)
    return Example(workdir, env=env)


def test_first_order_in_python(shop: Example) -> None:
    out = run([sys.executable, "manage.py", "shell"], shop.workdir, shop.env,
              stdin=(DOCS / "first_order.py").read_text())
    lines = out.splitlines()
    assert "rev 1 total_q 1100" in lines  # 2 × 250 + 0.5 × 1200
    order_line = next(line for line in lines if line.startswith("order "))
    _, ref, _, total, _, status = order_line.split()
    assert (total, status) == ("1100", "new")
    assert f"receipt for {ref} (attempt 1)" in lines  # the handler ran after the commit
    assert "replayed True True" in lines
    assert "status served" in lines


def test_http_with_curl(shop: Example) -> None:
    if not shutil.which("curl"):
        pytest.skip("curl is not installed")
    token = run([sys.executable, "manage.py", "shell"], shop.workdir, shop.env,
                stdin=(DOCS / "api_user.py").read_text()).split()[-1]
    shop_server = Example(shop.workdir, env=shop.env, manage_py=shop.workdir / "manage.py")
    shop_server.start()
    try:
        env = {**shop.env, "TOKEN": token, "BASE": shop_server.url + "/api"}
        out = run(["bash", str(DOCS / "http.sh")], shop.workdir, env)
    finally:
        shop_server.stop()
    health, created, modified, committed = (json.loads(line) for line in out.splitlines() if line.strip())
    assert health["status"] == "ok"
    assert (created["session_key"], created["rev"]) == ("TABLE-2", 0)
    assert (modified["rev"], modified["total_q"]) == (1, 300)
    assert committed["order_ref"]
    assert (committed["total_q"], committed["status"], committed["items_count"]) == (300, "new", 1)
