"""Auto-pipelining on one Redis connection: the commands of all calls made in one loop tick go out in one
write (in chunks of FLUSH_AT, so Redis starts early), and a reader task matches replies to callers in
order. No pipeline objects and no per-call timeout contexts: the microseconds redis-py spends per command
are a large part of a heartbeat's budget.

Used for a single Redis server; Redis Cluster goes through redis-py (`batcher.Batcher`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import NoScriptError, ResponseError

from licsrv.live.batcher import Script
from licsrv.live.errors import LiveUnavailable


def pack(*args: Any) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def pack_evalsha(script: Script, keys: Sequence[str], args: Sequence[Any]) -> bytes:
    """EVALSHA with the constant head (command, SHA, key count) encoded once per script and key count."""
    head = _HEADS.get((script.sha, len(keys), len(args)))
    if head is None:
        head = _HEADS[(script.sha, len(keys), len(args))] = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (
            3 + len(keys) + len(args),
            script.sha.encode(),
            pack(len(keys))[4:],
        )
    parts = [head]
    for arg in (*keys, *args):
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


_HEADS: dict[tuple[str, int, int], bytes] = {}

# A batch this big goes out at once instead of at the end of the loop tick, so Redis works on it while the
# loop parses the rest of the tick's requests (measured: the worker no longer idles waiting for replies).
FLUSH_AT = 32


class DirectBatcher:
    """The Batcher interface (`call`, `round_trips`) over one auto-pipelined connection."""

    def __init__(self, url: str, timeout: float = 1.0) -> None:
        options = parse_url(url)
        self._host = options.get("host", "127.0.0.1")
        self._port = int(options.get("port", 6379))
        self._db = int(options.get("db", 0) or 0)
        self._username = options.get("username")
        self._password = options.get("password")
        self._timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task | None = None
        self._pending: deque[asyncio.Future] = deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._connecting: asyncio.Lock | None = None
        self.round_trips = 0

    def submit(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Awaitable[Any]:
        """The hot path's `call`: queues the command and returns the reply's future itself, two coroutine
        frames fewer per request. Its reply may be an error object (NoScriptError, ResponseError): callers
        hand those to `call`, which reloads the script or raises."""
        writer = self._writer
        if writer is None or writer.is_closing():
            return self.call(script, keys, args)
        future = asyncio.get_running_loop().create_future()
        self._queue_command(pack_evalsha(script, keys, args), future)
        return future

    async def call(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        command = pack_evalsha(script, keys, args)
        reply = await self._send(command)
        if isinstance(reply, NoScriptError):
            # Redis restarted or was flushed: load the script again and retry once.
            await self._send(pack("SCRIPT", "LOAD", script.source))
            reply = await self._send(command)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _send(self, command: bytes) -> Any:
        if self._writer is None or self._writer.is_closing():
            await self._connect()
        future = asyncio.get_running_loop().create_future()
        self._queue_command(command, future)
        return await future

    def _queue_command(self, command: bytes, future: asyncio.Future) -> None:
        self._pending.append(future)
        self._out.append(command)
        if len(self._out) >= FLUSH_AT:
            self._flush()
        elif not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        self._flush()

    def _flush(self) -> None:
        if not self._out:
            return
        data, self._out = b"".join(self._out), []
        writer = self._writer
        if writer is None or writer.is_closing():
            self._fail(LiveUnavailable("the Redis connection closed"))
            return
        self.round_trips += 1
        writer.write(data)
        # One watchdog per batch: if its last reply has not come within the timeout, Redis is gone.
        last = self._pending[-1]
        asyncio.get_running_loop().call_later(self._timeout, self._watch, last)

    def _watch(self, future: asyncio.Future) -> None:
        if not future.done():
            self._fail(LiveUnavailable(f"Redis did not answer within {self._timeout} s"))

    async def _connect(self) -> None:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._writer is not None and not self._writer.is_closing():
                return
            try:
                async with asyncio.timeout(self._timeout):  # not wait_for: it can lose a cancel (supervise)
                    reader, writer = await asyncio.open_connection(self._host, self._port)
                hello = []
                if self._password:
                    auth = (
                        ("AUTH", self._username, self._password)
                        if self._username
                        else ("AUTH", self._password)
                    )
                    hello.append(pack(*auth))
                if self._db:
                    hello.append(pack("select", self._db))  # Redis commands are case-insensitive
                if hello:
                    writer.write(b"".join(hello))
                    parser = hiredis.Reader()
                    for _ in hello:
                        async with asyncio.timeout(self._timeout):
                            reply = await self._read_one(reader, parser)
                        if isinstance(reply, hiredis.ReplyError):
                            raise LiveUnavailable(f"Redis refused the connection setup: {reply}")
            except (OSError, TimeoutError) as exc:
                raise LiveUnavailable(str(exc) or type(exc).__name__) from exc
            self._writer = writer
            self._reader_task = asyncio.get_running_loop().create_task(self._read_replies(reader, writer))

    @staticmethod
    async def _read_one(reader: asyncio.StreamReader, parser: hiredis.Reader) -> Any:
        while (reply := parser.gets()) is False:
            data = await reader.read(4096)
            if not data:
                raise ConnectionError("Redis closed the connection")
            parser.feed(data)
        return reply

    async def _read_replies(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        pending = self._pending
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    raise ConnectionError("Redis closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    future = pending.popleft()
                    if future.done():
                        continue
                    if isinstance(reply, hiredis.ReplyError):
                        message = str(reply)
                        future.set_result(
                            NoScriptError(message)
                            if message.startswith("NOSCRIPT")
                            else ResponseError(message)
                        )
                    else:
                        future.set_result(reply)
        except Exception as exc:  # whatever ends the reader ends the connection: the next call opens one
            self._fail(LiveUnavailable(str(exc) or type(exc).__name__), writer)
        except asyncio.CancelledError:
            self._fail(LiveUnavailable("the live store is shutting down"), writer)
            raise

    def _fail(self, error: Exception, writer: asyncio.StreamWriter | None = None) -> None:
        """Every waiting caller gets the error; the next call opens a new connection."""
        writer = writer or self._writer
        if writer is self._writer:
            self._writer = None
            pending, self._pending = self._pending, deque()
        else:
            pending = deque()
        if writer is not None:
            writer.close()
        for future in pending:
            if not future.done():
                future.set_exception(error)

    async def close(self) -> None:
        task, self._reader_task = self._reader_task, None
        writer = self._writer
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
