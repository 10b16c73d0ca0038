"""``dev.py test``: its steps run side by side without sharing what they write or serve."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

import dev


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


#: Waits (up to 60 s) until the file named by argv[1] exists, then writes argv[2]:
#: two such steps finish only if they run at the same time.
MEET = (
    "import pathlib, sys, time\n"
    "other, mine = map(pathlib.Path, sys.argv[1:])\n"
    "mine.touch()\n"
    "deadline = time.monotonic() + 60\n"
    "while not other.exists():\n"
    "    assert time.monotonic() < deadline, 'ran alone'\n"
    "    time.sleep(0.01)  # polling a file the other step writes\n"
    "print('met', other.name)\n"
)


def test_steps_run_side_by_side_each_with_its_log(tmp_path, capsys):
    a, b = tmp_path / "a", tmp_path / "b"
    steps = [
        dev.Step("one", [*python(MEET), str(b), str(a)]),
        dev.Step("two", [*python(MEET), str(a), str(b)]),
    ]
    outcomes = dev.run_steps(steps, 2, tmp_path)
    assert [(o.step.name, o.returncode) for o in outcomes] == [("one", 0), ("two", 0)]
    assert "met b" in (tmp_path / "one.log").read_text()
    assert "met a" in (tmp_path / "two.log").read_text()
    out = capsys.readouterr().out
    for name in ("one", "two"):
        assert any(line.split()[:2] == ["ok", name] and " s " in line for line in out.splitlines()), out


def test_no_more_steps_run_at_once_than_jobs(tmp_path, monkeypatch):
    """Four steps, two jobs: two run at once, never three (each step holds its job for
    a second, or until a third one starts)."""
    lock, active, most, crowded = threading.Lock(), [0], [0], threading.Event()

    def fake_run(command, **options):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
            if active[0] > 2:
                crowded.set()
        crowded.wait(1)
        with lock:
            active[0] -= 1
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(dev.subprocess, "run", fake_run)
    outcomes = dev.run_steps([dev.Step(f"s{i}", ["true"]) for i in range(4)], 2, tmp_path)
    assert [o.returncode for o in outcomes] == [0, 0, 0, 0]
    assert most[0] == 2


def test_a_failed_step_prints_its_log_tail_keeps_its_files_and_the_others_go_on(tmp_path, capsys):
    kept, removed = tmp_path / "kept", tmp_path / "removed"
    kept.mkdir()
    removed.mkdir()
    noisy = "import sys\nfor i in range(200): print('line', i)\nsys.exit(3)"
    steps = [
        dev.Step("broken", python(noisy), basetemp=kept),
        dev.Step("fine", python("print('fine')"), basetemp=removed),
    ]
    outcomes = dev.run_steps(steps, 1, tmp_path)
    assert [o.returncode for o in outcomes] == [3, 0]
    out = capsys.readouterr().out
    assert "FAILED (exit 3) broken" in out
    assert "| line 199" in out and f"| line {199 - dev.LOG_TAIL + 1}" in out
    assert f"| line {199 - dev.LOG_TAIL}\n" not in out
    assert kept.exists() and str(kept) in out
    assert not removed.exists()


def test_jobs_default_to_the_cores_plus_one(monkeypatch):
    monkeypatch.delenv("OMNIMAN_TEST_JOBS", raising=False)
    monkeypatch.setattr(dev.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert dev.test_jobs() == 3
    monkeypatch.setenv("OMNIMAN_TEST_JOBS", "1")
    assert dev.test_jobs() == 1


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_jobs_must_be_a_whole_number(monkeypatch, value):
    monkeypatch.setenv("OMNIMAN_TEST_JOBS", value)
    with pytest.raises(SystemExit, match="OMNIMAN_TEST_JOBS"):
        dev.test_jobs()


def test_a_step_database_sits_beside_the_one_given():
    assert dev.with_database("postgres://u:p@db:5433/shop?sslmode=require", "bound") == (
        "postgres://u:p@db:5433/shop_bound?sslmode=require")
    assert dev.with_database("postgres://postgres@127.0.0.1:5432", "fuzz").endswith("/omniman_fuzz")


def test_the_runs_share_no_database_port_range_redis_database_or_files(monkeypatch, tmp_path):
    monkeypatch.setenv("OMNIMAN_TEST_BROKER_URL", "redis://127.0.0.1:6379/11")
    monkeypatch.setenv("OMNIMAN_TEST_MARKS_URL", "redis://127.0.0.1:6379/12")
    steps = dev.plan([], pg_url="postgres://postgres@127.0.0.1:5432/shop", browser=True,
                     logs=tmp_path / "logs", tmp=tmp_path / "tmp")
    by_name = {s.name: s for s in steps}
    assert list(by_name) == ["ruff", "postgresql", "sqlite", "schemathesis", "bound", "mypy", "sphinx"]
    runs = [by_name[name] for name in dev.PYTEST_STEPS]
    assert len({s.env["OMNIMAN_TEST_PORT_SLICE"] for s in runs}) == len(runs)
    assert len({s.basetemp for s in runs}) == len(runs)
    assert {by_name["sqlite"].coverage, by_name["postgresql"].coverage} == {
        tmp_path / "logs" / "coverage.sqlite", tmp_path / "logs" / "coverage.postgresql"}
    assert {s.env["DATABASE_URL"].rsplit("/", 1)[-1] for s in runs} == {"", "shop", "shop_fuzz", "shop_bound"}
    postgresql, bound = by_name["postgresql"], by_name["bound"]
    assert postgresql.env.get("OMNIMAN_TEST_BROKER_URL") is None  # as given: db 11
    assert bound.env["OMNIMAN_TEST_BROKER_URL"].endswith("/12") and bound.env["OMNIMAN_TEST_MARKS_URL"].endswith("/11")
    assert bound.env["OMNIMAN_TEST_SERVER_SIDE_BINDING"] == "1"
    # The schemathesis test runs in its own step only.
    assert f"--ignore={dev.SCHEMATHESIS}" in postgresql.command
    assert dev.SCHEMATHESIS in by_name["schemathesis"].command
    assert by_name["sqlite"].env["OMNIMAN_BROWSER_TESTS"] == "1"


def test_arguments_go_to_the_sqlite_and_postgresql_runs_only(tmp_path):
    steps = dev.plan(["tests/api", "-k", "etag"], pg_url="postgres://postgres@127.0.0.1:5432/shop", browser=False,
                     logs=tmp_path, tmp=tmp_path)
    assert [s.name for s in steps] == ["ruff", "postgresql", "sqlite", "mypy", "sphinx"]
    assert all(s.command[-5:-2] == ["tests/api", "-k", "etag"] for s in steps[1:3])
    without_pg = dev.plan([], pg_url=None, browser=False, logs=tmp_path, tmp=tmp_path)
    assert [s.name for s in without_pg] == ["ruff", "sqlite", "mypy", "sphinx"]


def test_packages_are_installed_through_sudo_without_a_password_when_not_root(monkeypatch):
    ran: list[tuple[str, ...]] = []
    monkeypatch.setattr(dev.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: type("Done", (), {"returncode": 0})())
    monkeypatch.setattr(dev, "run", lambda *args, **kw: ran.append(tuple(map(str, args))) or 0)
    dev.apt_install("chromium", "chromium-driver")
    assert ran == [("sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q",
                    "chromium", "chromium-driver")]


def test_without_root_or_sudo_nothing_is_installed_and_it_says_why(monkeypatch, capsys):
    monkeypatch.setattr(dev.shutil, "which", lambda name: None if name == "sudo" else f"/usr/bin/{name}")
    monkeypatch.setattr(dev.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(dev, "run", lambda *args, **kw: pytest.fail(f"ran {args}"))
    dev.apt_install("curl")
    assert "cannot install curl" in capsys.readouterr().out


def test_the_run_folders_keep_the_latest_runs(monkeypatch, tmp_path):
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    runs = tmp_path / "build" / "test-runs"
    for i in range(dev.KEEP_RUNS + 3):
        (runs / f"20000101-0000{i:02d}").mkdir(parents=True)
    folder = dev.run_folder()
    assert folder.parent == runs and folder.is_dir()
    left = sorted(p.name for p in runs.iterdir())
    assert len(left) == dev.KEEP_RUNS and left[-1] == folder.name
    assert not (runs / "20000101-000000").exists()
