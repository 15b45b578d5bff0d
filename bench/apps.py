"""The two comparison servers: (a) a bare aiohttp handler (the framework ceiling) and (c) the older
row-per-heartbeat design (one PostgreSQL UPDATE per heartbeat through an asyncpg pool).

Both run like `licsrv serve`: uvloop, no access log, N processes sharing the port through SO_REUSEPORT.
Started as `python -m bench.apps {bare,rows} --port P --workers N [--dsn URL]`.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import orjson
from aiohttp import web

from bench import BENCH_SQL
from licsrv.db import Queries, connect_pool
from licsrv.serve import install_uvloop
from licsrv.settings import Settings

POOL = web.AppKey("pool", asyncpg.Pool)
QUERIES = web.AppKey("queries", Queries)
OK_BODY = orjson.dumps({"status": "ok", "data": {"next_heartbeat": 30}})


async def bare_heartbeat(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(body=OK_BODY, content_type="application/json")


def bare_app() -> web.Application:
    app = web.Application()
    app.router.add_post("/api/v1/sessions/heartbeat", bare_heartbeat)
    return app


async def row_heartbeat(request: web.Request) -> web.Response:
    body = orjson.loads(await request.read())
    if not request.headers.get("X-API-Key"):
        raise web.HTTPUnauthorized()
    async with request.app[POOL].acquire() as conn:
        found = await request.app[QUERIES].bench_touch_session(conn, token=body["session_token"])
    if found is None:
        raise web.HTTPGone()
    return web.Response(body=OK_BODY, content_type="application/json")


def rows_app(dsn: str, sql_dir: Path, pool_max: int) -> web.Application:
    app = web.Application()

    async def pool(app: web.Application) -> AsyncIterator[None]:
        app[QUERIES] = Queries.load(sql_dir / "queries", BENCH_SQL)
        # The same pool as licsrv's own (no reset round trip on release): the baseline is not handicapped.
        app[POOL] = await connect_pool(dsn, max_size=pool_max)
        yield
        await app[POOL].close()

    app.cleanup_ctx.append(pool)
    app.router.add_post("/api/v1/sessions/heartbeat", row_heartbeat)
    return app


def run_one(kind: str, port: int, dsn: str, reuse_port: bool) -> None:
    install_uvloop()
    settings = Settings()
    app = bare_app() if kind == "bare" else rows_app(dsn, settings.sql_dir, settings.db_pool_max)
    web.run_app(app, host="127.0.0.1", port=port, reuse_port=reuse_port, access_log=None, print=None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.apps")
    parser.add_argument("kind", choices=["bare", "rows"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--dsn", default="")
    args = parser.parse_args(argv)
    if args.workers <= 1:
        run_one(args.kind, args.port, args.dsn, False)
        return 0
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=run_one, args=(args.kind, args.port, args.dsn, True))
        for _ in range(args.workers)
    ]
    for process in processes:
        process.start()

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.is_alive() and process.pid:
                os.kill(process.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for process in processes:
        process.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
