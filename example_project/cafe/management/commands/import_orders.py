"""Import a marketplace's orders from a JSON file through the API, one call per order.

What a real importer does, over HTTP with an API token: each order becomes one
``POST sessions/`` with its lines as ops and ``"commit": true``, under an idempotency
key made from the marketplace's order id, so a rerun (or a retry after a timeout)
never makes a second order: the API replays its answer, or, once the key has expired,
answers ``409 external_ref_exists`` with the order it already has. An order the file
gets wrong is reported with its position and skipped; the others are imported.

The file is a JSON array of orders as the marketplace sends them::

    [{"id": "IFOOD-1001", "createdAt": "2026-12-02T11:58:00Z", "customer": {"name": "Ana"},
      "items": [{"externalCode": "COFFEE", "quantity": 2, "unitPrice": 5.00}]}]

``unitPrice`` is in currency units (read as a decimal, never a float, and turned into
minor units); ``createdAt`` (optional) becomes the order's ``placed_at``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import requests
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

DEFAULT_URL = "http://127.0.0.1:8000/api"
# Answers worth trying again, with the same key: the server was busy or away.
RETRY_STATUSES = {429, 502, 503, 504}
ATTEMPTS = 5
TIMEOUT = 30.0


class Malformed(ValueError):
    """An order of the file that cannot be sent: what is wrong, and where in it."""


@dataclass
class Tally:
    imported: int = 0
    already: int = 0
    refused: int = 0


def minor_units(value: Any, where: str) -> int:
    """An amount in currency units (a decimal with at most 2 places) in minor units."""
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise Malformed(f"{where} must be a number")
    try:
        cents = Decimal(value) * 100
        if cents != cents.to_integral_value() or cents < 0:
            raise Malformed(f"{where} must be ≥ 0 with at most 2 decimal places")
    except InvalidOperation:
        raise Malformed(f"{where} is not a number") from None
    return int(cents)


def to_request(order: Any, channel: str) -> dict[str, Any]:
    """The one-call import of a marketplace order; ``Malformed`` names what is wrong."""
    if not isinstance(order, dict):
        raise Malformed("not an object")
    ref = order.get("id")
    if not isinstance(ref, str) or not ref:
        raise Malformed("id is missing")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        raise Malformed("items must be a non-empty list")
    ops = []
    for n, item in enumerate(items):
        where = f"items[{n}]"
        if not isinstance(item, dict):
            raise Malformed(f"{where} is not an object")
        for name in ("externalCode", "quantity", "unitPrice"):
            if name not in item:
                raise Malformed(f"{where}.{name} is missing")
        quantity = item["quantity"]
        if isinstance(quantity, bool) or not isinstance(quantity, (int, Decimal)):
            raise Malformed(f"{where}.quantity must be a number")
        ops.append({"op": "add_line", "sku": item["externalCode"], "qty": str(quantity),
                    "unit_price_q": minor_units(item["unitPrice"], f"{where}.unitPrice")})
    body: dict[str, Any] = {
        "channel_code": channel,
        "data": {"external_ref": ref, "customer": order.get("customer") or {}},
        "ops": ops,
        "commit": True,
        # The same order always gets the same key: a rerun is replayed, not doubled.
        "idempotency_key": f"import:{ref}",
    }
    if order.get("createdAt") is not None:
        body["placed_at"] = order["createdAt"]
    return body


class Command(BaseCommand):
    help = "Import marketplace orders from a JSON file through the API (safe to run again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path, help="A JSON array of marketplace orders.")
        parser.add_argument("--url", default=os.environ.get("OMNIMAN_API_URL", DEFAULT_URL),
                            help=f"The API's base URL (default $OMNIMAN_API_URL or {DEFAULT_URL}).")
        parser.add_argument("--token", default=os.environ.get("TOKEN", ""),
                            help="An API token (default $TOKEN), e.g. from omniman_token.")
        parser.add_argument("--channel", default="ifood", help="The channel to import into (default ifood).")
        parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                            help="Show a progress bar (default: when stderr is a terminal).")

    def handle(self, *args: Any, **options: Any) -> None:
        if not options["token"]:
            raise CommandError("Give an API token with --token or $TOKEN.")
        orders = self.read(options["file"])
        url = options["url"].rstrip("/") + "/sessions/"
        http = requests.Session()
        http.headers.update({"Authorization": f"Token {options['token']}", "Accept": "application/json"})
        tally = Tally()
        progress = options["progress"]
        with tqdm(total=len(orders), unit="order", file=sys.stderr,
                  disable=None if progress is None else not progress) as bar:
            for position, order in enumerate(orders, start=1):
                problem = self.import_one(http, url, order, options["channel"], tally)
                if problem:
                    tally.refused += 1
                    bar.write(f"order {position} of {len(orders)}{label(order)}: {problem}", file=sys.stderr)
                bar.update()
        self.report(tally, len(orders))

    def read(self, path: Path) -> list[Any]:
        try:
            orders = json.loads(path.read_text(), parse_float=Decimal)
        except (OSError, ValueError) as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from None
        if not isinstance(orders, list):
            raise CommandError(f"{path} must hold a JSON array of orders.")
        return orders

    def import_one(self, http: requests.Session, url: str, order: Any, channel: str, tally: Tally) -> str:
        """Send one order; returns what went wrong, or "" when it is there now."""
        try:
            body = to_request(order, channel)
        except Malformed as exc:
            return f"malformed: {exc}"
        response = post(http, url, body)
        if response.status_code == 201:
            if response.headers.get("Idempotent-Replayed") == "true":
                tally.already += 1
            else:
                tally.imported += 1
            return ""
        answer = problem_of(response)
        if answer.get("code") == "external_ref_exists":  # imported before, its key since expired
            tally.already += 1
            return ""
        errors = "; ".join(f"{e.get('pointer')}: {e.get('detail')}" for e in answer.get("errors") or [])
        return f"refused ({response.status_code} {answer.get('code', '?')}): {errors or answer.get('detail', '')}"

    def report(self, tally: Tally, total: int) -> None:
        if tally.imported:
            self.stdout.write(f"Imported {tally.imported} orders, {tally.already} already there.")
        else:
            self.stdout.write(f"Nothing imported: {tally.already} of {total} orders already there.")
        if tally.refused:
            raise CommandError(f"{tally.refused} of {total} orders were not imported (see above).")


def post(http: requests.Session, url: str, body: dict[str, Any]) -> requests.Response:
    """POST with retries on a lost connection or a busy server: the same body and key
    each time, so a request that did land is replayed, never doubled."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = http.post(url, data=json.dumps(body, default=as_json), timeout=TIMEOUT,
                                 headers={"Content-Type": "application/json"})
        except (requests.ConnectionError, requests.Timeout):
            if attempt == ATTEMPTS:
                raise
            time.sleep(min(2 ** attempt / 4, 5))
            continue
        if response.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
            return response
        time.sleep(min(float(response.headers.get("Retry-After") or 2 ** attempt / 4), 30))
    raise AssertionError("unreachable")


def problem_of(response: requests.Response) -> dict[str, Any]:
    try:
        answer = response.json()
    except ValueError:
        return {"detail": response.text[:200]}
    return answer if isinstance(answer, dict) else {}


def label(order: Any) -> str:
    ref = order.get("id") if isinstance(order, dict) else None
    return f" ({ref})" if isinstance(ref, str) and ref else ""


def as_json(value: Any) -> Any:
    """What ``json`` cannot write: the decimals read from the file (outside money)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
