"""Mail to customers: queued in `mail_outbox` in the transaction that asks for it, sent off the request path
by a supervised task with retries and backoff. Without LICSRV_SMTP_URL (`licsrv dev`) nothing is sent and the
admin UI's Outbox page shows what would have gone out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import asyncpg
import structlog

from licsrv.db import Queries

if TYPE_CHECKING:
    from licsrv.deps import Deps

log = structlog.get_logger(__name__)

BATCH = 20
MAX_BACKOFF_S = 3600


async def queue_mail(
    conn: asyncpg.Connection, queries: Queries, product_id: int | None, to: str, subject: str, body: str
) -> int:
    return await queries.queue_mail(conn, product_id=product_id, to_addr=to, subject=subject, body=body)


def smtp_options(url: str) -> dict[str, Any]:
    """smtp://user:pass@host:port (STARTTLS when offered), smtps://… (TLS from the start)."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("LICSRV_SMTP_URL must start with smtp:// or smtps://")
    options: dict[str, Any] = {
        "hostname": parts.hostname or "localhost",
        "port": parts.port or (465 if parts.scheme == "smtps" else 25),
        "use_tls": parts.scheme == "smtps",
        "start_tls": None if parts.scheme == "smtp" else False,
        "timeout": 20,
    }
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    return options


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(10 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S))


async def send_due(deps: Deps) -> int:
    """One pass over the due mail; rows another worker holds are skipped (FOR UPDATE SKIP LOCKED)."""
    options = smtp_options(deps.settings.smtp_url)
    async with deps.db.connection() as conn:
        rows = await deps.q.claim_due_mail(conn, now=deps.now(), row_limit=BATCH)
    for row in rows:
        message = EmailMessage()
        message["From"] = deps.settings.mail_from
        message["To"] = row["to_addr"]
        message["Subject"] = row["subject"]
        message.set_content(row["body"])
        try:
            await aiosmtplib.send(message, **options)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("mail_not_sent", id=row["id"], attempts=row["attempts"], error=str(exc))
            async with deps.db.connection() as conn:
                await deps.q.mark_mail_failed(
                    conn,
                    id=row["id"],
                    next_attempt_at=deps.now() + backoff(row["attempts"]),
                    error=str(exc)[:500],
                )
            continue
        async with deps.db.connection() as conn:
            await deps.q.mark_mail_sent(conn, id=row["id"], now=deps.now())
    return len(rows)


async def run_sender(deps: Deps, stop: asyncio.Event | None = None) -> None:
    """Supervised: any failure (PostgreSQL or the mail server away) is logged and retried with backoff.
    It also ends when `stop` is set: a cancellation can be swallowed on Python 3.11 (asyncio.wait_for inside
    the pool's acquire), and a sender that lives on would keep a stopping worker from ever exiting."""
    stop = stop or asyncio.Event()
    failures = 0
    while not stop.is_set():
        try:
            sent = await send_due(deps)
            failures = 0
            if sent < BATCH:
                await _pause(stop, deps.settings.mail_poll_interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            log.error("mail_sender_failed", error=str(exc), failures=failures)
            await _pause(stop, min(deps.settings.mail_poll_interval * 2**failures, 60))


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


@contextlib.asynccontextmanager
async def mail_sender(deps: Deps) -> AsyncIterator[asyncio.Task | None]:
    """The sender task while the app runs (none without LICSRV_SMTP_URL); stopped for sure on the way out."""
    if not deps.settings.smtp_url:
        yield None
        return
    stop = asyncio.Event()
    task = asyncio.create_task(run_sender(deps, stop))
    try:
        yield task
    finally:
        stop.set()
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=1)
        with contextlib.suppress(asyncio.CancelledError):
            task.result()
