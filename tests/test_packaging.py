"""A host project's first day: build the wheel and sdist, install the wheel into a
fresh venv beside a blank ``django-admin startproject`` host, migrate, and run
create → modify → commit through the services.

It runs once per suite, in the SQLite run (skipped when DATABASE_URL is set): it
builds its own SQLite host and needs no server. It needs pip to reach an index
(or a mirror) for Django and orjson; set OMNIMAN_SKIP_PACKAGING=1 to skip it offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import omniman

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(bool(os.environ.get("DATABASE_URL")), reason="runs once, in the SQLite run"),
    pytest.mark.skipif(bool(os.environ.get("OMNIMAN_SKIP_PACKAGING")), reason="OMNIMAN_SKIP_PACKAGING is set"),
]

HOST_SCRIPT = """
from omniman.models import Channel, Order
from omniman.services import commit_session, create_session, modify_session

Channel.objects.create(code="pos", name="POS", config={"pricing_policy": "external"})
create_session(channel="pos", session_key="SESS-001")
modify_session(channel="pos", session_key="SESS-001",
               ops=[{"op": "add_line", "sku": "COFFEE", "qty": 2, "unit_price_q": 500}])
result = commit_session(channel="pos", session_key="SESS-001", idempotency_key="COMMIT-1")
again = commit_session(channel="pos", session_key="SESS-001", idempotency_key="COMMIT-1")
assert again.replayed and again.order_ref == result.order_ref
order = Order.objects.get()
print("COMMITTED", order.ref == result.order_ref, order.total_q, order.items.count())
"""


def _has_backend() -> bool:
    try:
        import setuptools
        import wheel  # noqa: F401
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 69


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_host_project_installs_migrates_and_commits(tmp_path):
    # Build from a copy: the shared work tree gets no build/ or *.egg-info. The caches
    # are left out too: dev.py test's other steps write them meanwhile.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns(".venv", ".git", ".tox", "docs", "tests", "example_project", "bench",
                                      "build", "dist", "*.egg-info", "__pycache__", ".hypothesis",
                                      ".mypy_cache", ".ruff_cache", "mutants"),
    )
    dist = tmp_path / "dist"
    # Without isolation when this interpreter has the build backend (the dev extra): it saves
    # two throw-away build environments.
    run(sys.executable, "-m", "build", *(["--no-isolation"] if _has_backend() else []), "--sdist", "--wheel",
        "--outdir", dist, src, cwd=tmp_path)
    (wheel,) = dist.glob("omniman-*.whl")
    (sdist,) = dist.glob("omniman-*.tar.gz")
    # The version comes from omniman/__init__.py, its one source.
    assert wheel.name.startswith(f"omniman-{omniman.__version__}-"), wheel.name

    names = set(zipfile.ZipFile(wheel).namelist())
    for required in ("omniman/py.typed", "omniman_api/py.typed", "omniman/migrations/0001_initial.py",
                     "omniman/migrations/__init__.py", "omniman/management/commands/omniman_expire_sessions.py"):
        assert required in names, required
    migrations = {p.name for p in (ROOT / "omniman" / "migrations").glob("0*.py")}
    assert migrations <= {Path(n).name for n in names if n.startswith("omniman/migrations/")}
    templates = [p.relative_to(ROOT).as_posix() for p in ROOT.glob("omniman*/templates/**/*") if p.is_file()]
    assert set(templates) <= names
    with tarfile.open(sdist) as tar:
        assert any(n.endswith("omniman/py.typed") for n in tar.getnames())

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    # This interpreter's pip installs into the new venv (no ensurepip run): the wheel and
    # its dependencies, Django and orjson, from the index.
    run(sys.executable, "-m", "pip", "--python", py, "install", "--quiet", "--disable-pip-version-check",
        wheel, cwd=tmp_path)

    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")}
    (tmp_path / "hostdir").mkdir()
    run(venv / "bin" / "django-admin", "startproject", "host", tmp_path / "hostdir", cwd=tmp_path, env=env)
    host = tmp_path / "hostdir"
    settings = host / "host" / "settings.py"
    settings.write_text(settings.read_text().replace(
        "INSTALLED_APPS = [", 'INSTALLED_APPS = [\n    "omniman",', 1))

    run(py, "manage.py", "check", cwd=host, env=env)
    out = run(py, "manage.py", "migrate", "--no-input", cwd=host, env=env)
    assert "omniman.0001_initial... OK" in out
    run(py, "manage.py", "makemigrations", "--check", "--dry-run", "omniman", cwd=host, env=env)
    out = run(py, "manage.py", "shell", "-c", HOST_SCRIPT, cwd=host, env=env)
    assert "COMMITTED True 1000 1" in out
    # the installed package is the wheel's, not this work tree
    where = run(py, "-c", "import omniman; print(omniman.__file__)", cwd=tmp_path, env=env)
    assert str(venv) in where
