"""Gunicorn processes for the HTTP scenarios, and their CPU use read from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import env


class Gunicorn:
    def __init__(self, port: int, app: str, environ: dict[str, str], *, worker_class: str = "gthread",
                 workers: int = 2, threads: int = 4, chdir: Path | None = None,
                 config: Path | None = None, stop_timeout: float = 15) -> None:
        self.port = port
        self.stop_timeout = stop_timeout
        cmd = [sys.executable, "-m", "gunicorn", app, "-b", f"127.0.0.1:{port}", "-w", str(workers),
               "-k", worker_class, "--keep-alive", "30", "--backlog", "256", "--log-level", "warning"]
        if worker_class == "gthread":
            cmd += ["--threads", str(threads)]
        if chdir is not None:
            cmd += ["--chdir", str(chdir)]
        if config is not None:
            cmd += ["-c", str(config)]
        if env.port_open(port):
            raise RuntimeError(f"port {port} is taken")
        self.proc = subprocess.Popen(cmd, cwd=env.ROOT, env=environ, start_new_session=False)
        for _ in range(300):
            if env.port_open(port):
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("gunicorn did not start")

    def worker_pids(self) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == self.proc.pid:
                    pids.append(int(entry.name))
        return pids

    def cpu_seconds(self) -> float:
        """User + system CPU of the workers so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / tick

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Gunicorn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
