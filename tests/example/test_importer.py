"""The example's marketplace importer (``manage.py import_orders``), run as an
operator runs it: over HTTP against the served example, with an API token."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.example.harness import Example

ORDERS = 1000
BAD = 437  # the malformed order's position in the file, from 1


@pytest.fixture(scope="module")
def token(example: Example) -> str:
    return example.manage("omniman_token", "importer", "--channels", "ifood").stdout.strip()


def marketplace_order(n: int, placed: datetime) -> dict:
    return {
        "id": f"T1K-{n:04d}",
        "createdAt": placed.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "customer": {"name": f"Customer {n}", "rating": 4.5},
        "items": [{"externalCode": "COFFEE", "quantity": 1 + n % 3, "unitPrice": 5.00},
                  {"externalCode": "CAKE", "quantity": 0.5, "unitPrice": 12.00}],
    }


def orders_of(example: Example, prefix: str) -> list[dict]:
    script = (
        "import json; from omniman.models import Order; print(json.dumps(list(Order.objects.filter("
        f"channel__code='ifood', external_ref__startswith='{prefix}').order_by('external_ref')"
        ".values('external_ref', 'total_q', 'placed_at', 'data')), default=str))"
    )
    return json.loads(example.manage("shell", "-v", "0", "-c", script).stdout)


def run(example: Example, file: Path, token: str, *extra: str):
    return example.manage("import_orders", str(file), "--url", f"{example.url}/api", "--token", token, *extra,
                          check=False, timeout=600)


def test_1000_orders_with_one_malformed_import_once(example: Example, token: str, tmp_path: Path) -> None:
    """999 orders are imported with their placed_at and totals, the malformed one is
    reported with its position and the exit status says so; a second run imports
    nothing and says so."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    orders = [marketplace_order(n, start + timedelta(minutes=n)) for n in range(1, ORDERS + 1)]
    del orders[BAD - 1]["items"][1]["unitPrice"]
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(orders))

    first = run(example, file, token)
    assert first.returncode == 1, first.stderr
    assert first.stdout.strip() == f"Imported {ORDERS - 1} orders, 0 already there."
    assert f"order {BAD} of {ORDERS} (T1K-{BAD:04d}): malformed: items[1].unitPrice is missing" in first.stderr
    assert "1 of 1000 orders were not imported" in first.stderr
    stored = orders_of(example, "T1K-")
    assert len(stored) == ORDERS - 1 and f"T1K-{BAD:04d}" not in {o["external_ref"] for o in stored}
    one = stored[0]
    assert (one["external_ref"], one["total_q"]) == ("T1K-0001", 2 * 500 + 600)
    assert datetime.fromisoformat(one["placed_at"]) == start + timedelta(minutes=1)
    assert one["data"]["customer"] == {"name": "Customer 1", "rating": 4.5}

    again = run(example, file, token)
    assert again.returncode == 1
    assert again.stdout.strip() == f"Nothing imported: {ORDERS - 1} of {ORDERS} orders already there."
    assert len(orders_of(example, "T1K-")) == ORDERS - 1


def test_an_order_the_api_refuses_is_reported_and_the_rest_imported(example: Example, token: str,
                                                                        tmp_path: Path) -> None:
    now = datetime.now(UTC)
    orders = [marketplace_order(1, now), marketplace_order(2, now - timedelta(days=40))]
    for order in orders:
        order["id"] = order["id"].replace("T1K", "OLD")
    file = tmp_path / "orders.json"
    file.write_text(json.dumps(orders))
    result = run(example, file, token, "--no-progress")
    assert result.stdout.strip() == "Imported 1 orders, 0 already there."
    assert "order 2 of 2 (OLD-0002): refused (400 validation_error): /placed_at: placed_at is more than 30 days old." \
        in result.stderr
    assert [o["external_ref"] for o in orders_of(example, "OLD-")] == ["OLD-0001"]


def test_the_importer_needs_a_token_and_a_readable_file(example: Example, tmp_path: Path) -> None:
    missing = example.manage("import_orders", str(tmp_path / "none.json"), "--token", "", check=False)
    assert missing.returncode == 1 and "--token" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"id": 1}')
    result = example.manage("import_orders", str(bad), "--token", "x", check=False)
    assert result.returncode == 1 and "must hold a JSON array" in result.stderr
