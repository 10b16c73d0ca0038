"""The example's tools: the locust workload and the django-silk switch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.example.conftest import make_example
from tests.example.harness import EXAMPLE, ROOT, Example
from tests.require import need


def test_locustfile_runs_headless_and_commits_orders(example: Example) -> None:
    locust = Path(sys.executable).parent / "locust"
    need(locust.exists() or shutil.which("locust"), "locust is not installed (pip install -e '.[dev]')")
    token = example.manage("omniman_token", "loadtest", "--channels", "pos").stdout.strip()
    env = {**example.env, "OMNIMAN_TOKEN": token}
    # The run ends when each of the 3 users has committed (however loaded the machine);
    # -t is only the upper bound, and reaching it fails the test.
    until = Path(__file__).with_name("locust_until_committed.py")
    result = subprocess.run(
        [str(locust if locust.exists() else "locust"), "-f", f"{EXAMPLE / 'locustfile.py'},{until}", "--headless",
         "-u", "3", "-r", "3", "-t", "90s", "--host", example.url, "--only-summary"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "every user committed (3): stopping" in output, output
    assert "/api/sessions/{key}/commit/" in output
    orders = example.request("GET", "/api/orders/?channel_code=pos", token=token).body["results"]
    assert sum(o["session_key"].startswith("SESS-") for o in orders) >= 3


@pytest.fixture(scope="module")
def silky(tmp_path_factory: pytest.TempPathFactory, seeded_db: Path) -> Iterator[Example]:
    ex = make_example(tmp_path_factory, seeded_db, "silk", OMNIMAN_SILK="1")
    ex.manage("migrate", "--noinput")  # silk's own tables
    ex.start()
    try:
        yield ex
    finally:
        ex.stop()


def test_silk_is_off_by_default(example: Example) -> None:
    assert example.request("GET", "/silk/").status == 404


def test_silk_records_api_requests_when_on(silky: Example) -> None:
    """With OMNIMAN_SILK=1 a modify shows up in silk with its SQL queries; /silk/ needs a login."""
    token = silky.manage("omniman_token", "profiled", "--channels", "pos").stdout.strip()
    silky.request("POST", "/api/sessions/", {"channel_code": "pos", "session_key": "SILK-1"}, token=token)
    resp = silky.request(
        "POST", "/api/sessions/SILK-1/modify/",
        {"channel_code": "pos", "ops": [{"op": "add_line", "sku": "COFFEE", "qty": 1, "unit_price_q": 500}]},
        token=token,
    )
    assert resp.status == 200
    recorded = silky.manage("shell", "-v", "0", "-c", (
        "from silk.models import Request\n"
        "r = Request.objects.filter(path='/api/sessions/SILK-1/modify/').get()\n"
        "print(r.method, r.response.status_code, r.queries.count())"
    )).stdout.split()
    assert recorded[:2] == ["POST", "200"]
    assert int(recorded[2]) > 0
    anonymous = silky.request("GET", "/silk/")  # redirected to the login page
    assert 'id="login"' in anonymous.body
