"""The `licsrv` command line: serve, dev, migrate, create-admin, admins, tokens, licenses, keys."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import click

from licsrv import cli_privacy
from licsrv.cli_cards import cards
from licsrv.cli_env import (
    CONNECT_ERRORS,
    cli_settings,
    require,
    run,
    unreachable,
    with_connection,  # noqa: F401  (where the cli_* modules found it before)
)
from licsrv.db import Queries
from licsrv.domain import ROLES
from licsrv.migrate import migrate as run_migrations
from licsrv.services.audit import CLI_ACTOR
from licsrv.settings import Settings


def _settings(*, dev_stack: bool = True) -> Settings:
    return cli_settings(dev_stack=dev_stack)


@click.group()
def main() -> None:
    """licsrv: license and activation server."""


@main.command()
@click.option(
    "--workers", type=int, default=None, help="Worker processes (default LICSRV_WORKERS or CPU count)."
)
@click.option("--migrate/--no-migrate", "do_migrate", default=True, help="Apply migrations before serving.")
def serve(workers: int | None, do_migrate: bool) -> None:
    """Serve the API and admin UI with several worker processes."""
    from licsrv.serve import serve as serve_workers

    settings = _settings(dev_stack=False)
    settings.require_services()
    if do_migrate:
        asyncio.run(run_migrations(settings.database_url, settings.sql_dir, settings.secret_key))
    sys.exit(serve_workers(settings, workers or settings.workers))


@main.command()
def migrate() -> None:
    """Apply pending migrations (safe while other instances start) and create the first signing key."""
    settings = _settings()
    require(settings, "database_url", "secret_key")
    try:
        applied = asyncio.run(run_migrations(settings.database_url, settings.sql_dir, settings.secret_key))
    except CONNECT_ERRORS as exc:
        raise unreachable(settings, exc) from None
    click.echo(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))


@main.command("create-admin")
@click.option("--username", required=True)
@click.option("--password", default=None, help="Generated and printed when omitted.")
@click.option("--role", type=click.Choice(ROLES), default="owner", show_default=True)
def create_admin(username: str, password: str | None, role: str) -> None:
    """Create an admin user for the web UI."""
    from licsrv.services.admins import create_admin as create
    from licsrv.services.admins import new_password

    settings = _settings()
    generated = password is None
    password = password or new_password()
    run(settings, lambda conn, q: create(conn, q, username, password, role, CLI_ACTOR))
    click.echo(f"admin {username} ({role}) created" + (f"; password: {password}" if generated else ""))


@main.group()
def admins() -> None:
    """Admin users of the web UI."""


@admins.command("unlock")
@click.argument("username")
def admins_unlock(username: str) -> None:
    """Lift the login locks of USERNAME (every address) and its per-user throttle."""
    from licsrv.live.client import make_redis
    from licsrv.services.admins import unlock_admin

    settings = _settings()

    async def work(conn: asyncpg.Connection, queries: Queries) -> None:
        redis = make_redis(settings.redis_url)
        try:
            await unlock_admin(conn, queries, redis, username, CLI_ACTOR)
        finally:
            await redis.aclose()

    run(settings, work, needs=("redis_url",))
    click.echo(f"admin {username} unlocked")


@main.group()
def tokens() -> None:
    """Management API bearer tokens."""


@tokens.command("create")
@click.option("--name", required=True)
@click.option("--role", type=click.Choice(ROLES), default="operator", show_default=True)
def tokens_create(name: str, role: str) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from licsrv.services.tokens import create_token

    _, token = run(_settings(), lambda conn, q: create_token(conn, q, name, role, CLI_ACTOR))
    click.echo(token)


@main.group()
def keys() -> None:
    """Response-signing keys."""


@keys.command("add")
def keys_add() -> None:
    """Publish the next Ed25519 key (`"next": true` in GET /keys) without signing with it yet."""
    from licsrv.services.signing_keys import add_signing_key

    settings = _settings()
    key_id = run(
        settings, lambda conn, q: add_signing_key(conn, q, settings.secret_key), needs=("secret_key",)
    )
    click.echo(f"next signing key: {key_id}")


@keys.command("activate")
@click.argument("key_id")
def keys_activate(key_id: str) -> None:
    """Sign with the next key KEY_ID from now on; the active one is retired and stays published."""
    from licsrv.services.signing_keys import UnknownNextKey, activate_signing_key

    try:
        run(_settings(), lambda conn, q: activate_signing_key(conn, q, key_id))
    except UnknownNextKey:
        raise click.ClickException(f"{key_id} is not a next key (see `licsrv keys add`)") from None
    click.echo(f"active signing key: {key_id}")


@keys.command("rotate")
def keys_rotate() -> None:
    """`keys add` and `keys activate` at once (clients that pinned only the old key must refetch)."""
    from licsrv.services.signing_keys import rotate_signing_key

    settings = _settings()
    key_id = run(
        settings, lambda conn, q: rotate_signing_key(conn, q, settings.secret_key), needs=("secret_key",)
    )
    click.echo(f"active signing key: {key_id}")


@main.command("vectors")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("clients/vectors"))
def vectors(out: Path) -> None:
    """Write the client libraries' test vectors (deterministic: the same files every time)."""
    from licsrv.vectors import write

    for path in write(out):
        click.echo(str(path))


@main.group()
def licenses() -> None:
    """Licenses."""


@licenses.command("create")
@click.option("--product", "product_slug", default="default", show_default=True)
@click.option("--customer-name", default="")
@click.option("--customer-email", default="")
@click.option("--max-devices", type=int, default=1, show_default=True)
@click.option("--max-sessions", type=int, default=None)
@click.option("--duration-days", type=int, default=None, help="Clock starts at the first activation.")
@click.option("--notes", default="")
def licenses_create(product_slug: str, **fields: Any) -> None:
    """Create a license and print its key."""
    from licsrv.services.licenses import create_license_for_product_slug

    license_row = run(
        _settings(),
        lambda conn, q: create_license_for_product_slug(conn, q, product_slug, fields, CLI_ACTOR),
    )
    click.echo(license_row["key"])


@main.command()
@click.option("--host", default=None)
@click.option("--port", type=int, default=None)
def dev(host: str | None, port: int | None) -> None:
    """Everything on one machine: local PostgreSQL and Redis when no URLs are set, an admin, the server."""
    from licsrv.devserver import run_dev

    settings = _settings(dev_stack=False)
    settings = replace(settings, host=host or settings.host, port=port or settings.port)
    sys.exit(run_dev(settings))


main.add_command(cards)

from licsrv.cli_catalogue import plans, products  # noqa: E402  (its commands use run() above)

main.add_command(products)
main.add_command(plans)

from licsrv.cli_import import import_group  # noqa: E402

main.add_command(import_group)

main.add_command(cli_privacy.retention)

if __name__ == "__main__":
    main()
