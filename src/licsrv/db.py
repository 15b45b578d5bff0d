"""The asyncpg pool and the named queries of `sql/queries/*.sql`, loaded once at start."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from licsrv.errors import service_unavailable

_HEADER = re.compile(
    r"^--\s*name:\s*(?P<name>\w+)\s*(?:\((?P<params>[^)]*)\))?\s*(?P<kind>\*!|\^|\$|!|\*)?\s*$"
)


class Query:
    """One named statement. `^` one row, `$` one value, `!` nothing, `*!` many executes, else rows."""

    def __init__(self, name: str, params: list[str], kind: str, sql: str) -> None:
        self.name = name
        self.params = params
        self.kind = kind
        self.sql = sql

    def _args(self, args: tuple, kwargs: dict) -> tuple:
        if kwargs:
            unknown = set(kwargs) - set(self.params)
            if unknown:
                raise TypeError(f"{self.name}() got unexpected parameters {sorted(unknown)}")
            try:
                return args + tuple(kwargs[name] for name in self.params[len(args) :])
            except KeyError as exc:
                raise TypeError(f"{self.name}() is missing parameter {exc}") from None
        return args

    async def __call__(self, conn: Any, *args: Any, **kwargs: Any) -> Any:
        values = self._args(args, kwargs)
        if self.kind == "^":
            return await conn.fetchrow(self.sql, *values)
        if self.kind == "$":
            return await conn.fetchval(self.sql, *values)
        if self.kind == "!":
            return await conn.execute(self.sql, *values)
        if self.kind == "*!":
            return await conn.executemany(self.sql, *values)
        return await conn.fetch(self.sql, *values)


class Queries:
    """Every named statement under a directory, as attributes: `queries.get_license_by_key(conn, key=k)`."""

    def __init__(self, queries: dict[str, Query]) -> None:
        self._queries = queries

    def __getattr__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            raise AttributeError(f"no SQL statement named {name!r}") from None

    def __contains__(self, name: str) -> bool:
        return name in self._queries

    @classmethod
    def load(cls, directory: Path, *more: Path) -> Queries:
        """Every statement of `directory` (and of `more`, e.g. the benchmark's own statements)."""
        queries: dict[str, Query] = {}
        for path in sorted(p for folder in (directory, *more) for p in folder.glob("*.sql")):
            for query in parse_sql_file(path.read_text(encoding="utf-8"), path.name):
                if query.name in queries:
                    raise ValueError(f"SQL statement {query.name} is defined twice ({path.name})")
                queries[query.name] = query
        return cls(queries)


def parse_sql_file(text: str, filename: str = "<sql>") -> list[Query]:
    queries: list[Query] = []
    header: re.Match | None = None
    body: list[str] = []

    def flush() -> None:
        if header is None:
            return
        sql = "\n".join(body).strip().rstrip(";")
        if not sql:
            raise ValueError(f"{filename}: statement {header['name']} is empty")
        params = [p.strip() for p in (header["params"] or "").split(",") if p.strip()]
        queries.append(Query(header["name"], params, header["kind"] or "*", sql))

    for line in text.splitlines():
        match = _HEADER.match(line.strip())
        if match:
            flush()
            header, body = match, []
        elif header is not None:
            body.append(line)
    flush()
    return queries


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's, for the CLI, migrations and tests."""
    conn = await asyncpg.connect(dsn)
    await _init_connection(conn)
    return conn


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Nothing to undo on release: asyncpg itself rolls back a transaction left open and forgets listeners,
    and licsrv leaves no other session state on pooled connections (no SET, session advisory lock or open
    cursor; the product cache LISTENs on a connection of its own). The default reset —
    UNLISTEN, CLOSE ALL, RESET ALL, advisory unlock — would cost a round trip per checkout."""


async def connect_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    lock_timeout: float = 5.0,
    idle_in_transaction_timeout: float = 15.0,
    command_timeout: float = 10.0,
) -> asyncpg.Pool:
    """PostgreSQL itself cuts a transaction that waits on a lock or sits idle too long, so no bug of ours
    and no stalled client can hold row locks, and with them a worker, for ever."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=command_timeout,
        server_settings={
            "lock_timeout": str(int(lock_timeout * 1000)),
            "idle_in_transaction_session_timeout": str(int(idle_in_transaction_timeout * 1000)),
        },
    )


class Database:
    """The pool plus the named queries. A use case takes one connection (or one transaction) from here and
    never a second while it holds the first; waiting for one is bounded (then 503 SERVICE_UNAVAILABLE)."""

    def __init__(self, pool: asyncpg.Pool, queries: Queries, acquire_timeout: float = 5.0) -> None:
        self.pool = pool
        self.q = queries
        self.acquire_timeout = acquire_timeout

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        try:
            conn = await self.pool.acquire(timeout=self.acquire_timeout)
        except TimeoutError:
            raise service_unavailable("database", retry_after=1) from None
        except asyncpg.InterfaceError:  # the pool is closing: this worker is shutting down
            raise service_unavailable("database", retry_after=1) from None
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        await self.pool.close()
