"""Delivery: every worker claims due deliveries (`FOR UPDATE SKIP LOCKED`, held while it posts them, so
each goes out from one worker at a time and a worker that dies releases its claim), signs them the Standard
Webhooks way, posts them, records each attempt and schedules retries with exponential backoff and jitter."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg
import orjson
import structlog
from standardwebhooks.webhooks import Webhook

from licsrv.errors import ApiError
from licsrv.webhooks.targets import PublicOnlyResolver, check_url

if TYPE_CHECKING:
    from licsrv.deps import Deps

log = structlog.get_logger(__name__)

EXCERPT_CHARS = 500
USER_AGENT = "licsrv-webhooks/1"


@dataclass(frozen=True)
class Attempt:
    delivery_id: int
    endpoint_id: int
    ok: bool
    status_code: int | None
    latency_ms: int
    error: str = ""
    excerpt: str = ""


def payload_of(delivery: Any) -> str:
    """The body, the same bytes on every retry: receivers deduplicate by `webhook-id` (the event id)."""
    return orjson.dumps(
        {
            "id": delivery["event_id"],
            "type": delivery["type"],
            "timestamp": delivery["event_created_at"].astimezone(UTC).isoformat(),
            "data": delivery["data"],
        }
    ).decode()


def signature(delivery: Any, body: str, sent_at: datetime) -> str:
    """`v1,<sig>`, and during a rotation's overlap a second one with the previous secret."""
    secrets = [delivery["secret"]]
    expires = delivery["previous_secret_expires_at"]
    if delivery["previous_secret"] and expires is not None and expires > sent_at:
        secrets.append(delivery["previous_secret"])
    return " ".join(Webhook(secret).sign(delivery["event_id"], sent_at, body) for secret in secrets)


def retry_delay(settings: Any, attempts: int) -> float:
    """Exponential from `webhook_retry_base`, capped, with ±25 % jitter so failed bursts spread out."""
    delay = min(settings.webhook_retry_cap, settings.webhook_retry_base * 2 ** max(attempts - 1, 0))
    return delay * random.uniform(0.75, 1.25)


def new_session(settings: Any) -> aiohttp.ClientSession:
    resolver = None if settings.webhook_allow_private else PublicOnlyResolver()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(resolver=resolver, limit=100, force_close=True),
        timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout),
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


async def post(session: aiohttp.ClientSession, settings: Any, delivery: Any) -> Attempt:
    started = time.monotonic()

    def attempt(ok: bool, status: int | None, error: str = "", excerpt: str = "") -> Attempt:
        latency = int((time.monotonic() - started) * 1000)
        return Attempt(delivery["id"], delivery["endpoint_id"], ok, status, latency, error[:300], excerpt)

    try:
        url = check_url(delivery["url"], settings.webhook_allow_private)
    except ApiError as exc:
        return attempt(False, None, f"refused: {exc.message}")
    body = payload_of(delivery)
    sent_at = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": delivery["event_id"],
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature(delivery, body, sent_at),
    }
    try:
        async with session.post(url, data=body.encode(), headers=headers, allow_redirects=False) as resp:
            excerpt = (await resp.content.read(EXCERPT_CHARS * 4)).decode("utf-8", "replace")[:EXCERPT_CHARS]
            return attempt(200 <= resp.status < 300, resp.status, "", excerpt)
    except TimeoutError:
        return attempt(False, None, f"timed out after {settings.webhook_timeout:g} s")
    except Exception as exc:  # refused address, DNS, TLS, connection reset: all are a failed attempt
        return attempt(False, None, f"{type(exc).__name__}: {exc}")


async def deliver_due(deps: Deps, session: aiohttp.ClientSession, conn: asyncpg.Connection) -> int:
    """One claim: up to `webhook_batch` due deliveries posted concurrently, their outcomes written in the same
    transaction that holds the claim. Returns how many were attempted. `conn` is the delivery task's own
    connection: a claim held while posting (up to the timeout) must not take a slot of the request pool."""
    settings = deps.settings
    async with conn.transaction():
        claimed = await deps.q.claim_due_deliveries(conn, row_limit=settings.webhook_batch)
        if not claimed:
            return 0
        attempts = await asyncio.gather(*(post(session, settings, d) for d in claimed))
        await _record(conn, deps, claimed, attempts)
    return len(claimed)


async def _record(conn: Any, deps: Deps, claimed: list[Any], attempts: list[Attempt]) -> None:
    settings, now = deps.settings, datetime.now(UTC)
    await deps.q.insert_webhook_attempts(
        conn,
        [(a.delivery_id, a.status_code, a.ok, a.latency_ms, a.error, a.excerpt) for a in attempts],
    )
    ids, statuses, next_ats, exhausted = [], [], [], []
    for delivery, result in zip(claimed, attempts, strict=True):
        ids.append(delivery["id"])
        if result.ok:
            statuses.append("delivered")
            next_ats.append(None)
            continue
        next_at = now + timedelta(seconds=retry_delay(settings, delivery["attempts"] + 1))
        window_ends = delivery["retry_from"] + timedelta(seconds=settings.webhook_retry_window)
        statuses.append("pending" if next_at <= window_ends else "failed")
        next_ats.append(next_at)
        if statuses[-1] == "failed":
            exhausted.append((delivery["endpoint_id"], delivery["retry_from"]))
    await deps.q.finish_deliveries(conn, ids=ids, statuses=statuses, next_attempt_ats=next_ats)
    succeeded = sorted({a.endpoint_id for a in attempts if a.ok})
    failed = sorted({a.endpoint_id for a in attempts if not a.ok} - set(succeeded))
    await deps.q.record_endpoint_health(conn, ok_ids=succeeded, failed_ids=failed)
    if exhausted:
        disabled = await deps.q.disable_exhausted_endpoints(
            conn,
            endpoint_ids=[endpoint for endpoint, _ in exhausted],
            retry_froms=[since for _, since in exhausted],
            reason=f"Disabled on {now:%Y-%m-%d %H:%M} UTC: every delivery failed for {_span(settings)}.",
        )
        if disabled:
            log.warning("webhook_endpoints_disabled", endpoints=[row["id"] for row in disabled])
            await deps.q.notify_webhook_endpoints(conn)


def _span(settings: Any) -> str:
    seconds = settings.webhook_retry_window
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:g} s"
