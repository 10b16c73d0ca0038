"""Scenario 4, run in its own process: omniman's Celery dispatch against a raw Celery
no-op task on the same broker and worker (2 processes), interleaved.

Both sides do the same work when they start (a Redis HSET + INCR, see bench.tasks);
omniman's adds the claim and the outcome writes of the directive row."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from typing import Any

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
os.environ["BENCH_DIRECTIVES"] = "celery"
django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import transaction  # noqa: E402

import bench.celery_app  # noqa: E402,F401  (the current app: our broker)
from bench.stats import interleave, percentile, ratio  # noqa: E402
from bench.tasks import marks, raw_noop  # noqa: E402
from omniman.services import commit_session, create_session, modify_session  # noqa: E402
from omniman.services.directive_outbox import enqueue_many  # noqa: E402
from omniman.testing import add_line_op, make_channel  # noqa: E402


def wait_done(run: str, n: int, timeout: float = 120) -> float:
    r = marks()
    end = time.time() + timeout
    while time.time() < end:
        done = int(r.get(f"bench:done:{run}") or 0)
        if done >= n:
            return time.time()
        time.sleep(0.005)
    raise TimeoutError(f"{run}: {r.get(f'bench:done:{run}')} of {n} finished")


def omniman_drain(n: int) -> float:
    run = "om-" + uuid.uuid4().hex[:8]
    t0 = time.time()
    with transaction.atomic():
        enqueue_many(("bench.noop", {"run": run, "session_key": str(i)}) for i in range(n))
    return n / (wait_done(run, n) - t0)


def raw_drain(n: int) -> float:
    run = "raw-" + uuid.uuid4().hex[:8]
    t0 = time.time()
    for i in range(n):
        raw_noop.apply_async((run, str(i)), queue="bench_raw")
    return n / (wait_done(run, n) - t0)


def latencies(count: int) -> dict[str, Any]:
    ch = make_channel("lat", post_commit_directives=["bench.noop"])
    r = marks()
    r.delete("bench:start:commit", "bench:done:commit", "bench:start:rawlat", "bench:done:rawlat")
    keys = [f"LAT-{uuid.uuid4().hex[:10]}" for _ in range(count)]
    for key in keys:
        create_session(channel=ch, session_key=key)
        modify_session(channel=ch, session_key=key, ops=[add_line_op()])
    t_om: dict[str, float] = {}
    t_raw: dict[str, float] = {}
    commit_s: list[float] = []
    for key in keys:  # interleaved one by one, spaced so that nothing queues
        t_om[key] = time.time()
        commit_session(channel=ch, session_key=key)
        commit_s.append(time.time() - t_om[key])
        time.sleep(0.02)
        t_raw[key] = time.time()
        raw_noop.apply_async(("rawlat", key), queue="bench_raw")
        time.sleep(0.02)
    wait_done("commit", count)
    wait_done("rawlat", count)
    out = {}
    for name, run, t0 in (("omniman", "commit", t_om), ("raw", "rawlat", t_raw)):
        starts = {k.decode(): float(v) for k, v in r.hgetall(f"bench:start:{run}").items()}
        lat = [starts[k] - t0[k] for k in keys]
        out[name] = {"p50_ms": percentile(lat, 50) * 1000, "p99_ms": percentile(lat, 99) * 1000, "n": len(lat)}
    out["commit_call"] = {"p50_ms": percentile(commit_s, 50) * 1000, "p99_ms": percentile(commit_s, 99) * 1000}
    out["note"] = ("omniman: from the call of commit_session (lock, order, items, directive row, "
                   "COMMIT, dispatch) to the handler's start; raw: from apply_async to the task's start")
    return out


def start_worker(async_commit: bool) -> subprocess.Popen:
    env = dict(os.environ, BENCH_ASYNC_COMMIT="1" if async_commit else "0")
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker", "-c", "2", "-P", "prefork",
         "-Q", "omniman,bench_raw", "--prefetch-multiplier", "1", "-l", "warning",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        env=env, stdout=subprocess.DEVNULL,
    )


def stop_worker(worker: subprocess.Popen) -> None:
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


def throughput(n: int, repeats: int) -> dict[str, Any]:
    marks().flushdb()
    raw_drain(20)
    omniman_drain(20)  # both sides warm
    res = interleave({"omniman": lambda _: omniman_drain(n), "raw": lambda _: raw_drain(n)}, repeats)
    return {
        "omniman_per_s": sorted(res["omniman"])[len(res["omniman"]) // 2],
        "raw_per_s": sorted(res["raw"])[len(res["raw"]) // 2],
        "ratio": ratio(res["omniman"], res["raw"]),
        "runs": res,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    n, repeats, lat_n = (100, 2, 20) if args.quick else (500, 4, 150)
    out: dict[str, Any] = {
        "jobs": n,
        "repeats": repeats,
        "worker": "celery prefork, 2 processes, prefetch 1, acks_late",
    }
    # The default worker (DIRECTIVE_ASYNC_COMMIT on), then one whose every write waits
    # for the WAL flush; each against raw tasks on the same worker.
    worker = start_worker(async_commit=True)
    try:
        out["throughput"] = throughput(n, repeats)
        out["latency"] = latencies(lat_n)
    finally:
        stop_worker(worker)
    worker = start_worker(async_commit=False)
    try:
        out["throughput_durable"] = throughput(n, repeats)
    finally:
        stop_worker(worker)
    sys.stdout.write(orjson.dumps(out).decode() + "\n")


if __name__ == "__main__":
    main()
