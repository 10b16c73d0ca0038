"""Where an API request's time goes: ``python -m bench.profile OUTDIR [N]``.

Runs N requests of each hot endpoint through Django's full handler (test client, token
auth) on the database of ``BENCH_DATABASE_URL`` under pyinstrument, the bare view's
twin alongside, and writes one text profile per endpoint."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.core.management import call_command  # noqa: E402
from pyinstrument import Profiler  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402


def main() -> None:
    outdir = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    outdir.mkdir(parents=True, exist_ok=True)
    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from bench.fixtures import sessions
    from omniman.models import Channel, ChannelGrant
    from omniman.testing import make_channel

    make_channel("pos")
    sessions("P", 100)
    sessions("PC", n)
    sessions("PB", n)
    user, _ = get_user_model().objects.get_or_create(username="bench-profile")
    ChannelGrant.objects.get_or_create(user=user, channel=Channel.objects.get(code="pos"))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    ops = [{"op": "set_qty", "line_id": "L1", "qty": 2}]
    pairs: dict[str, tuple[Any, Any]] = {
        "modify": (
            lambda i: client.post(f"/api/sessions/P-{i % 100}/modify/", {"channel_code": "pos", "ops": ops},
                                  format="json"),
            lambda i: client.post("/bare/modify/", {"channel_code": "pos", "session_key": f"P-{i % 100}",
                                                    "ops": ops}, format="json"),
        ),
        "get": (
            lambda i: client.get(f"/api/sessions/P-{i % 100}/?channel_code=pos"),
            lambda i: client.get(f"/bare/sessions/P-{i % 100}/?channel_code=pos"),
        ),
        "commit": (
            lambda i: client.post(f"/api/sessions/PC-{i}/commit/", {"channel_code": "pos"}, format="json"),
            lambda i: client.post(f"/bare/sessions/PB-{i}/commit/", {"channel_code": "pos"}, format="json"),
        ),
    }
    summary = {}
    for name, (api, bare) in pairs.items():
        for side, fn in (("api", api), ("bare", bare)):
            fn(0) if name != "commit" else None
            prof = Profiler(interval=0.0002)
            prof.start()
            for i in range(1, n):
                resp = fn(i)
                if resp.status_code >= 400:
                    raise RuntimeError(f"{name} {side}: {resp.status_code} {resp.content[:200]!r}")
            session = prof.stop()
            text = prof.output_text(unicode=False, color=False, show_all=False, timeline=False)
            for local in (sys.prefix, str(Path(__file__).resolve().parent.parent)):
                text = text.replace(local + "/", "")  # no paths of this machine in results
            (outdir / f"{name}-{side}.txt").write_text(text)
            summary[f"{name}-{side}"] = {"cpu_us_per_req": session.cpu_time / (n - 1) * 1e6,
                                         "wall_us_per_req": session.duration / (n - 1) * 1e6}
    sys.stdout.write(orjson.dumps(summary).decode() + "\n")


if __name__ == "__main__":
    main()
