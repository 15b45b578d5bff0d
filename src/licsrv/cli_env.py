"""Where the command line finds its database: the environment, else the dev stack that `licsrv dev` (or
`make run`) started in `.licsrv/` and described in `.licsrv/env.json`. A missing setting or an unreachable
database is one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import click

from licsrv.db import Queries, connect
from licsrv.errors import ApiError
from licsrv.logs import setup_logging
from licsrv.settings import Settings

ENV_FILE = "env.json"
# What the dev stack provides, by the Settings field it fills.
DEV_SETTINGS = {
    "database_url": "LICSRV_DATABASE_URL",
    "redis_url": "LICSRV_REDIS_URL",
    "secret_key": "LICSRV_SECRET_KEY",
}
_announced: set[Path] = set()
_dev_urls: set[str] = set()
# What connecting can fail with: nothing listening, a wrong host, password or database name, a server
# starting up or shutting down.
CONNECT_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.InvalidAuthorizationSpecificationError,
    asyncpg.InvalidCatalogNameError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
)


class SetupError(click.ClickException):
    """One line, exit code 2: what to set, and where to read about it."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"licsrv: {self.message}", err=True)


def write_dev_env(dev_dir: Path, settings: Settings) -> Path:
    """Written by `licsrv dev` once its services run: readable by its owner only (it holds the secret)."""
    dev_dir.mkdir(parents=True, exist_ok=True)
    path = dev_dir / ENV_FILE
    values = {env: getattr(settings, field) for field, env in DEV_SETTINGS.items()}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2)
    return path


def read_dev_env(dev_dir: Path) -> dict[str, str]:
    try:
        values = json.loads((dev_dir / ENV_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in values.items() if isinstance(v, str) and v} if isinstance(values, dict) else {}


def cli_settings(*, dev_stack: bool = True) -> Settings:
    """The environment's settings, logging set up; what it leaves empty comes from a running dev stack
    (not for `dev` itself, which starts that stack, nor for `serve`)."""
    settings = Settings.from_env()
    setup_logging(settings.log_level)
    return with_dev_stack(settings) if dev_stack else settings


def with_dev_stack(settings: Settings) -> Settings:
    """Fills the settings the environment left empty from the dev stack, and says so on stderr, once."""
    missing = [field for field in DEV_SETTINGS if not getattr(settings, field)]
    if not missing:
        return settings
    found = read_dev_env(settings.dev_dir)
    filled = {field: found[DEV_SETTINGS[field]] for field in missing if DEV_SETTINGS[field] in found}
    if not filled:
        return settings
    if "database_url" in filled:
        _dev_urls.add(filled["database_url"])
    path = settings.dev_dir.resolve()
    if path not in _announced:
        _announced.add(path)
        click.echo(
            f"licsrv: using the dev stack in {settings.dev_dir} ({redact(filled.get('database_url', ''))})",
            err=True,
        )
    return replace(settings, **filled)


def require(settings: Settings, *fields: str) -> None:
    for field in fields:
        if not getattr(settings, field):
            name = DEV_SETTINGS.get(field, f"LICSRV_{field.upper()}")
            where = settings.dev_dir if settings.dev_dir.is_absolute() else f"./{settings.dev_dir}"
            stack = "nor in the dev stack" if read_dev_env(settings.dev_dir) else "and no dev stack"
            raise SetupError(f"{name} is not set ({stack} in {where}); see README › Configuration")


def redact(url: str) -> str:
    """The URL without its password, fit for a message."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def unreachable(settings: Settings, exc: BaseException) -> SetupError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    hint = " (the dev stack's: is `make run` still running?)" if settings.database_url in _dev_urls else ""
    return SetupError(f"cannot reach the database at {redact(settings.database_url)}{hint}: {reason}")


async def with_connection(
    settings: Settings, work: Callable[[asyncpg.Connection, Queries], Awaitable[Any]]
) -> Any:
    try:
        conn = await asyncio.wait_for(connect(settings.database_url), timeout=10)
    except CONNECT_ERRORS as exc:
        raise unreachable(settings, exc) from None
    try:
        return await work(conn, Queries.load(settings.sql_dir / "queries"))
    finally:
        await conn.close()


def run(
    settings: Settings,
    work: Callable[[asyncpg.Connection, Queries], Awaitable[Any]],
    *,
    needs: tuple[str, ...] = (),
) -> Any:
    """`work` on one connection to the database; `needs` names further settings it cannot do without."""
    require(settings, "database_url", *needs)
    try:
        return asyncio.run(with_connection(settings, work))
    except ApiError as exc:
        raise click.ClickException(exc.message) from None
