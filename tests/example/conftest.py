from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.example.harness import Example, example_env

REQUIRE = os.environ.get("OMNIMAN_REQUIRE_SERVICES") == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The example runs on its own SQLite file whatever the suite's database is, so its
    # plain tests run once, in the SQLite run; the PostgreSQL run keeps the tests
    # marked postgres (the production stack).
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        return
    skip = pytest.mark.skip(reason="example tests on SQLite run in the SQLite run")
    for item in items:
        if "tests/example/" in item.nodeid and "postgres" not in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated and seeded once; each example instance starts from a copy."""
    workdir = tmp_path_factory.mktemp("seeded")
    ex = Example(workdir, env=example_env(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", DEBUG="1"))
    ex.manage("migrate", "--noinput")
    ex.manage("omniman_seed")
    return workdir / "db.sqlite3"


def make_example(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path, name: str, **env: str) -> Example:
    workdir = tmp_path_factory.mktemp(name)
    shutil.copyfile(seeded_db, workdir / "db.sqlite3")
    return Example(workdir, env=example_env(DATABASE_URL=f"sqlite:///{workdir / 'db.sqlite3'}", DEBUG="1", **env))


@pytest.fixture(scope="session")
def example(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[Example]:
    """The example project, migrated and seeded on its own SQLite file, served by runserver
    (one for the whole run: tests use their own session keys and users)."""
    ex = make_example(tmp_path_factory, seeded_db, "example")
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


def _install_chromium() -> str:
    """Install Debian's chromium and chromium-driver when we may; returns what happened."""
    if not shutil.which("apt-get"):
        return "there is no apt-get"
    if os.geteuid() != 0:
        return "installing them needs root (apt-get install -y chromium chromium-driver)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode:
            return f"apt-get failed: {result.stderr.strip()[-300:]}"
    return "installed"


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    if os.environ.get("OMNIMAN_BROWSER_TESTS") == "0":
        pytest.skip("browser tests are off (OMNIMAN_BROWSER_TESTS=0)")
    found = _chromium()
    if found is None:
        why = _install_chromium()
        found = _chromium()
        if found is None:
            message = f"chromium and chromedriver are missing and could not be installed: {why}"
            if REQUIRE:
                pytest.fail(message)
            pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser(chromium_paths: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        if REQUIRE:
            pytest.fail("selenium is not installed (pip install -e '.[dev]')")
        pytest.skip("selenium is not installed (pip install -e '.[dev]')")
    binary, driver_path = chromium_paths
    profile: Path = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--window-size=1280,860",
        "--lang=en-US",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
