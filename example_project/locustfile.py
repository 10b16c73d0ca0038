"""Load test of the seed workload against the example (or any omniman host).

Each simulated terminal opens a SESS-style session on ``pos``, posts a few modifies
(add lines, change a quantity, each with the rev it last saw), and commits with an
idempotency key. From the repository root, with the example served on :8000::

    export OMNIMAN_TOKEN=$(python example_project/manage.py omniman_token loadtest --channels pos)
    locust -f example_project/locustfile.py --headless -u 20 -r 5 -t 1m --host http://127.0.0.1:8000

``OMNIMAN_CHANNEL`` (default ``pos``) and ``OMNIMAN_LINES`` (lines per session,
default 3) change the workload.
"""

from __future__ import annotations

import os
import random
import uuid

from locust import HttpUser, between, task

MENU = [("COFFEE", 500), ("ESPRESSO", 450), ("CAPPUCCINO", 650), ("CROISSANT", 750), ("CAKE", 1200), ("WATER", 300)]


class Terminal(HttpUser):
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        token = os.environ.get("OMNIMAN_TOKEN", "")
        if not token:
            raise RuntimeError("Set OMNIMAN_TOKEN (python example_project/manage.py omniman_token loadtest)")
        self.client.headers.update({"Authorization": f"Token {token}", "Content-Type": "application/json"})
        self.channel = os.environ.get("OMNIMAN_CHANNEL", "pos")
        self.lines = int(os.environ.get("OMNIMAN_LINES", "3"))

    @task
    def order(self) -> None:
        key = f"SESS-{uuid.uuid4().hex[:12].upper()}"
        created = self.client.post("/api/sessions/", json={"channel_code": self.channel, "session_key": key},
                                   name="/api/sessions/ [create]")
        if created.status_code != 201:
            return
        rev = created.json()["rev"]
        line_id = None
        for _ in range(self.lines):
            sku, price = random.choice(MENU)
            resp = self.client.post(
                f"/api/sessions/{key}/modify/",
                json={"channel_code": self.channel, "rev": rev,
                      "ops": [{"op": "add_line", "sku": sku, "qty": 1, "unit_price_q": price}]},
                name="/api/sessions/{key}/modify/ [add_line]",
            )
            if resp.status_code != 200:
                return
            body = resp.json()
            rev, line_id = body["rev"], body["items"][-1]["line_id"]
        resp = self.client.post(
            f"/api/sessions/{key}/modify/",
            json={"channel_code": self.channel, "rev": rev, "ops": [{"op": "set_qty", "line_id": line_id, "qty": 2}]},
            name="/api/sessions/{key}/modify/ [set_qty]",
        )
        if resp.status_code != 200:
            return
        commit = {"channel_code": self.channel, "idempotency_key": f"COMMIT-{key}"}
        with self.client.post(f"/api/sessions/{key}/commit/", json=commit, name="/api/sessions/{key}/commit/",
                              catch_response=True) as resp:
            if resp.status_code != 201:
                resp.failure(f"commit answered {resp.status_code}: {resp.text[:200]}")
