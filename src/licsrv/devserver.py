"""`licsrv dev`: a whole server on one machine, with PostgreSQL and Redis of its own under `.licsrv/`."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import click

from licsrv.cli_env import write_dev_env
from licsrv.db import Queries, connect
from licsrv.devstack.postgres import PostgresServer
from licsrv.devstack.redis import RedisServer
from licsrv.migrate import migrate
from licsrv.services.admins import create_admin, new_password
from licsrv.services.audit import CLI_ACTOR
from licsrv.settings import Settings

DEV_DATABASE = "licsrv"
DEV_ADMIN = "admin"


def dev_secret_key(dev_dir: Path) -> str:
    path = dev_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    dev_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


async def first_admin(settings: Settings) -> str | None:
    """Creates the owner `admin` on the first run; returns its one-time password then."""
    conn = await connect(settings.database_url)
    try:
        queries = Queries.load(settings.sql_dir / "queries")
        if await queries.count_admins(conn):
            return None
        password = new_password()
        await create_admin(conn, queries, DEV_ADMIN, password, "owner", CLI_ACTOR)
        return password
    finally:
        await conn.close()


@contextlib.contextmanager
def local_services(settings: Settings) -> Iterator[Settings]:
    """Starts what the settings do not point at, and stops it again on the way out."""
    stack = contextlib.ExitStack()
    with stack:
        if not settings.database_url:
            postgres = PostgresServer(
                settings.dev_dir / "postgres", port=_saved_port(settings.dev_dir, "postgres")
            )
            stack.enter_context(postgres)
            _save_port(settings.dev_dir, "postgres", postgres.port)
            settings = replace(settings, database_url=postgres.create_database(DEV_DATABASE))
            click.echo(f"PostgreSQL: {settings.database_url} (data in {postgres.data_dir})")
        if not settings.redis_url:
            redis = RedisServer(
                settings.dev_dir / "redis", port=_saved_port(settings.dev_dir, "redis"), persist=True
            )
            stack.enter_context(redis)
            _save_port(settings.dev_dir, "redis", redis.port)
            settings = replace(settings, redis_url=redis.url)
            click.echo(f"Redis:      {settings.redis_url}")
        if not settings.secret_key:
            settings = replace(settings, secret_key=dev_secret_key(settings.dev_dir))
        # `licsrv tokens|licenses|…` run beside this one find the stack here (cli_env.py).
        write_dev_env(settings.dev_dir, settings)
        yield settings


def _saved_port(dev_dir: Path, name: str) -> int | None:
    path = dev_dir / f"{name}.port"
    return int(path.read_text()) if path.exists() else None


def _save_port(dev_dir: Path, name: str, port: int) -> None:
    dev_dir.mkdir(parents=True, exist_ok=True)
    (dev_dir / f"{name}.port").write_text(str(port))


def run_dev(settings: Settings) -> int:
    from licsrv.serve import run_worker

    with local_services(settings) as ready:
        asyncio.run(migrate(ready.database_url, ready.sql_dir, ready.secret_key))
        password = asyncio.run(first_admin(ready))
        base = f"http://{ready.host}:{ready.port}"
        click.echo(f"licsrv:     {base}   admin UI {base}/admin   API {base}/api/v1   docs {base}/api/docs")
        if password:
            click.echo(f"Admin login (shown once): {DEV_ADMIN} / {password}")
        click.echo("Ctrl-C stops the server and the local PostgreSQL and Redis.")
        with contextlib.suppress(KeyboardInterrupt):
            run_worker(ready)
    return 0
