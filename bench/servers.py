"""Throwaway PostgreSQL and Redis for one benchmark run, and the HTTP servers under test as subprocesses."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import licsrv
from licsrv.devstack.postgres import PostgresServer, free_port
from licsrv.devstack.redis import RedisServer

SECRET_KEY = "bench-secret-key-not-for-production"
BENCH_DATABASE = "licsrv_bench"
ROWS_DATABASE = "licsrv_bench_rows"


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The children import the same licsrv and benchmark as this process (a worktree's src wins)."""
    env = dict(os.environ)
    source = str(Path(licsrv.__file__).resolve().parents[1])
    checkout = str(Path(__file__).resolve().parents[1])  # the benchmark package itself, for `-m bench.apps`
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, checkout, env.get("PYTHONPATH", "")) if p)
    env.update(extra or {})
    return env


class Stack:
    """One PostgreSQL cluster (the app's database and the baseline's) and one Redis, deleted on stop."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="licsrv-bench-"))
        # Durable like a production server: the row-per-heartbeat design pays for its commits, as it would.
        self.postgres = PostgresServer(self.root / "pg")
        self.redis = RedisServer(self.root / "redis")
        self.database_url = ""
        self.rows_url = ""

    def start(self) -> Stack:
        self.postgres.start()
        self.redis.start()
        self.database_url = self.postgres.create_database(BENCH_DATABASE)
        self.rows_url = self.postgres.create_database(ROWS_DATABASE)
        return self

    def licsrv_env(self, port: int, workers: int) -> dict[str, str]:
        return {
            "LICSRV_DATABASE_URL": self.database_url,
            "LICSRV_REDIS_URL": self.redis.url,
            "LICSRV_SECRET_KEY": SECRET_KEY,
            "LICSRV_HOST": "127.0.0.1",
            "LICSRV_PORT": str(port),
            "LICSRV_WORKERS": str(workers),
            "LICSRV_ACCESS_LOG": "0",
            "LICSRV_LOG_LEVEL": "WARNING",
        }

    def stop(self) -> None:
        for server in (self.redis, self.postgres):
            try:
                server.stop()
            except Exception as exc:  # a stop failure must not hide the results or the other stop
                print(f"bench: stopping {type(server).__name__} failed: {exc}", file=sys.stderr)
        shutil.rmtree(self.root, ignore_errors=True)


class ServerProcess:
    """A server under test in its own process group, so stopping it stops all of its workers."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], ready_path: str, port: int, workers: int = 1
    ) -> None:
        self.name = name
        self.workers = workers
        self.command = command
        self.env = env
        self.ready_path = ready_path
        self.port = port
        # Kept open for the child's lifetime, closed and removed by stop().
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix=f"licsrv-bench-{name}-", suffix=".log", delete=False
        )
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command, env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start:\n{self.output()[-3000:]}")
            try:
                with urllib.request.urlopen(self.base_url + self.ready_path, timeout=1) as answer:
                    if answer.status == 200:
                        return self._settled()
            except urllib.error.HTTPError as exc:
                if exc.code == 405:  # a POST-only route answering: the server is up
                    return self._settled()
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not become ready in {timeout:.0f} s:\n{self.output()[-3000:]}")

    def _settled(self) -> ServerProcess:
        # One worker answering does not mean all are listening yet; give the others a moment.
        if self.workers > 1:
            time.sleep(1.0)
        return self

    def pids(self) -> list[int]:
        """The process and its children (the workers), for a profiler."""
        if self.process is None:
            return []
        found = subprocess.run(
            ["pgrep", "-g", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        return [int(pid) for pid in found]

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)
        self.process = None
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def licsrv_server(stack: Stack, workers: int) -> ServerProcess:
    port = free_port()
    command = [sys.executable, "-m", "licsrv.cli", "serve", "--workers", str(workers), "--no-migrate"]
    return ServerProcess(
        f"licsrv-{workers}w", command, child_env(stack.licsrv_env(port, workers)), "/health", port, workers
    )


def bare_server(workers: int) -> ServerProcess:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.apps",
        "bare",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    return ServerProcess("bare", command, child_env(), "/api/v1/sessions/heartbeat", port, workers)


def rows_server(stack: Stack, workers: int) -> ServerProcess:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.apps",
        "rows",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    command += ["--dsn", stack.rows_url]
    return ServerProcess("rows", command, child_env(), "/api/v1/sessions/heartbeat", port, workers)
