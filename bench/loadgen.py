"""A small keep-alive HTTP/1.1 load generator: N threads, one socket each, requests made
by a function, latency of every request kept. Cheap per request (pre-built bytes, no
http.client), and it reports its own CPU use so a run can show it did not saturate."""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.stats import percentile

MakeRequest = Callable[[int, int], bytes]


def request(method: str, path: str, *, token: str | None = None, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    if token:
        lines.append(f"Authorization: Token {token}")
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = s, b""
        return s

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _read_until(self, marker: bytes) -> int:
        while True:
            i = self.buf.find(marker)
            if i >= 0:
                return i
            chunk = self.sock.recv(65536)  # type: ignore[union-attr]
            if not chunk:
                raise ConnectionError("closed by server")
            self.buf += chunk

    def _read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)  # type: ignore[union-attr]
            if not chunk:
                raise ConnectionError("closed by server")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def send(self, raw: bytes) -> tuple[int, dict[str, str], bytes]:
        """One request, one response; reconnects when the server closes (sync workers)."""
        sock = self.sock or self._connect()
        sock.sendall(raw)
        end = self._read_until(b"\r\n\r\n")
        head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end + 4:]
        status_line, *header_lines = head.split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in header_lines:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if "content-length" in headers:
            body = self._read_exact(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                i = self._read_until(b"\r\n")
                size = int(self.buf[:i].split(b";")[0], 16)
                self.buf = self.buf[i + 2:]
                parts.append(self._read_exact(size + 2)[:size])
                if size == 0:
                    break
            body = b"".join(parts)
        elif status in (204, 304) or status < 200:
            body = b""
        else:
            body = self._read_all()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, headers, body

    def _read_all(self) -> bytes:
        while True:
            chunk = self.sock.recv(65536)  # type: ignore[union-attr]
            if not chunk:
                break
            self.buf += chunk
        data, self.buf = self.buf, b""
        self.close()
        return data


def run(port: int, make: MakeRequest, *, seconds: float, connections: int = 8,
        expect: tuple[int, ...] = (200, 201, 304)) -> dict[str, Any]:
    """Drive ``connections`` keep-alive connections for ``seconds``."""
    latencies: list[list[float]] = [[] for _ in range(connections)]
    statuses: list[Counter[int]] = [Counter() for _ in range(connections)]
    errors: list[int] = [0] * connections
    samples: list[str] = []
    start_evt = threading.Event()
    deadline = [0.0]

    def worker(t: int) -> None:
        conn = Conn(port)
        lat, st = latencies[t], statuses[t]
        i = 0
        start_evt.wait()
        perf = time.perf_counter
        while True:
            t0 = perf()
            if t0 >= deadline[0]:
                break
            try:
                status, _, body = conn.send(make(t, i))
            except (OSError, ConnectionError):
                conn.close()
                errors[t] += 1
                i += 1
                continue
            lat.append(perf() - t0)
            st[status] += 1
            if status not in expect and len(samples) < 3:
                samples.append(f"{status} {body[:300]!r}")
            i += 1
        conn.close()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(connections)]
    for th in threads:
        th.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    deadline[0] = wall0 + seconds
    start_evt.set()
    for th in threads:
        th.join()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    lat_all = [x for lst in latencies for x in lst]
    status_total: Counter[int] = Counter()
    for c in statuses:
        status_total.update(c)
    bad = sum(n for s, n in status_total.items() if s not in expect) + sum(errors)
    n = len(lat_all)
    return {
        "requests": n,
        "rps": n / wall if wall else 0.0,
        "p50_ms": percentile(lat_all, 50) * 1000,
        "p99_ms": percentile(lat_all, 99) * 1000,
        "statuses": {str(k): v for k, v in sorted(status_total.items())},
        "failures": bad,
        "failure_samples": samples,
        "loadgen_cpu_us_per_req": cpu / n * 1e6 if n else None,
        "loadgen_cpu_share": cpu / wall if wall else None,
    }
