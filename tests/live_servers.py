"""Helpers for tests that run real `licsrv serve` processes and wait on them with deadlines."""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable

from licsrv.devstack.postgres import free_port

DEADLINE = 30.0  # seconds a recovery or a change may take to show


async def until(check: Callable[[], bool | Awaitable[bool]], what: str, deadline: float = DEADLINE) -> float:
    """Polls `check` until it holds; returns how long that took."""
    started = time.monotonic()
    while not await _holds(check()):
        if time.monotonic() - started > deadline:
            raise AssertionError(f"{what}: not within {deadline} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _holds(result: bool | Awaitable[bool]) -> bool:
    return await result if inspect.isawaitable(result) else bool(result)


class Server:
    """A real `licsrv serve` process whose log lines are collected as they come."""

    def __init__(self, settings, **env: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "LICSRV_DATABASE_URL": settings.database_url,
            "LICSRV_REDIS_URL": settings.redis_url,
            "LICSRV_SECRET_KEY": settings.secret_key,
            "LICSRV_PORT": str(self.port),
            "LICSRV_WORKERS": "1",
            "LICSRV_ACCESS_LOG": "0",
            **env,
        }
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Server:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "licsrv.cli",
            "serve",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())
        await until(self._answers, "licsrv serve to answer /health")
        return self

    async def _read(self) -> None:
        while line := await self.process.stdout.readline():
            self.lines.append(line.decode(errors="replace"))

    async def _answers(self) -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return False
        writer.close()
        return True

    def logged(self, event: str) -> bool:
        return any(event in line for line in self.lines)

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.kill()
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code


async def send(port: int, method: str, path: str, headers: dict, body: dict | None = None):
    """One raw HTTP/1.1 request left in flight; the returned task reads its whole answer."""
    data = json.dumps(body).encode() if body is not None else b""
    head = f"{method} {path} HTTP/1.1\r\nHost: licsrv\r\nContent-Type: application/json\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    head += f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode() + data)
    await writer.drain()

    async def answer() -> tuple[int, dict, dict]:
        raw = await asyncio.wait_for(reader.read(), 30)
        writer.close()
        head, _, payload = raw.decode().partition("\r\n\r\n")
        lines = head.split("\r\n")
        fields = dict(line.split(": ", 1) for line in lines[1:])
        return int(lines[0].split()[1]), fields, json.loads(payload)

    return asyncio.create_task(answer())
