"""Run sessions: start, heartbeat, end and terminate over the live store, with their history in PostgreSQL.

Liveness is the Redis key's TTL; PostgreSQL only records history, closing expired sessions lazily as
`timeout` when a later start, a listing or the history finds them gone.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from licsrv.db import Database
from licsrv.errors import ApiError
from licsrv.live import sessions as live_errors
from licsrv.live.sessions import LiveSessions
from licsrv.metrics import (
    HEARTBEAT_EXPIRED,
    HEARTBEAT_OK,
    HEARTBEAT_TERMINATED,
    LIVE_SESSIONS,
    START_REFUSALS,
)
from licsrv.services import licensing
from licsrv.services.audit import Actor, record_change
from licsrv.services.products import Product, ProductCache
from licsrv.services.session_crypto import SessionCrypto, check_public_key
from licsrv.services.versions import is_older

log = structlog.get_logger(__name__)

CODE_BY_TOMBSTONE = {
    "forced": "SESSION_TERMINATED",
    "replaced": "SESSION_TERMINATED",
    "suspended": "LICENSE_SUSPENDED",
    "revoked": "LICENSE_REVOKED",
}


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def refusal(code: str) -> ApiError:
    START_REFUSALS.labels(code).inc()
    return ApiError(code)


def update_notice(product: Product, client_version: str) -> dict[str, str] | None:
    if not is_older(client_version, product.current_version):
        return None
    return {
        "current_version": product.current_version,
        "download_url": product.download_url,
        "whats_new": product.whats_new,
    }


async def start_session(
    db: Database,
    live: LiveSessions,
    crypto: SessionCrypto,
    product: Product,
    *,
    license_key: str,
    hardware_id: str,
    client_version: str,
    ip: str | None,
    now: datetime,
    function: str | None = None,
    client_public_key: str | None = None,
    machine_name: str = "",
) -> dict[str, Any]:
    if client_public_key:
        check_public_key(client_public_key)
    if is_older(client_version, product.minimum_version):
        raise refusal("VERSION_TOO_OLD")
    async with db.connection() as conn:
        license_row = await licensing.find_license_for_start(conn, db.q, product, license_key, hardware_id)
        licensing.ensure_license_usable(license_row, now)
        await licensing.ensure_device(
            conn,
            db.q,
            product,
            license_row,
            hardware_id,
            machine_name=machine_name,
            client_version=client_version,
            ip=ip,
            now=now,
        )
    license_id = license_row["id"]
    max_sessions = license_row["max_sessions"] or product.max_sessions
    try:
        started = await live.start(
            license_id,
            max_sessions,
            product.session_policy,
            product.session_timeout,
            to_ms(now),
            product.id,
            mac=bool(client_public_key),
        )
    except live_errors.SessionLimitReached:
        raise refusal("SESSION_LIMIT_REACHED") from None
    try:
        async with db.connection() as conn:
            if started.replaced or started.expired:
                async with conn.transaction():
                    await record_start(
                        conn, db, started, license_id, hardware_id, ip, client_version, now, machine_name
                    )
                    for session_id in started.replaced:
                        await db.q.close_session_history(
                            conn, id=session_id, ended_at=now, end_reason="replaced"
                        )
                    await close_timed_out(conn, db, started.expired, product.session_timeout)
            else:
                await record_start(
                    conn, db, started, license_id, hardware_id, ip, client_version, now, machine_name
                )
    except BaseException:
        # No history row means no session: take the live one back rather than leave it unrecorded.
        await live.terminate(license_id, started.session_id, "forced", product.session_timeout)
        raise
    token = started.token
    answer: dict[str, Any] = {
        "session_id": started.session_id,
        "heartbeat_interval": product.heartbeat_interval,
        "session_timeout": product.session_timeout,
        "update": update_notice(product, client_version),
    }
    if client_public_key:
        answer["mac_key"] = crypto.sealed_mac_key(token, client_public_key)
        if function == "open":
            answer["content_key"] = crypto.sealed_content_key(product, client_public_key)
    answer["session_token"] = token
    return answer


async def record_start(
    conn: Any,
    db: Database,
    started: Any,
    license_id: int,
    hardware_id: str,
    ip: str | None,
    client_version: str,
    now: datetime,
    machine_name: str,
) -> None:
    await db.q.record_session_start(
        conn,
        id=started.session_id,
        license_id=license_id,
        hardware_id=hardware_id,
        ip=ip,
        client_version=client_version,
        started_at=now,
        machine_name=machine_name,
    )


async def close_timed_out(conn: Any, db: Database, expired: list[tuple[str, int]], timeout_s: int) -> None:
    if expired:
        await db.q.close_timed_out_sessions(
            conn,
            ids=[session_id for session_id, _ in expired],
            ended_ats=[from_ms(expiry) for _, expiry in expired],
            timeout_seconds=float(timeout_s),
        )


def session_of(live: LiveSessions, product: Product, token: str) -> tuple[int, str]:
    """(license id, session id) of a token, without Redis; a token that names no session is expired."""
    try:
        return live.tokens.parse(token, product.id)
    except live_errors.BadToken:
        HEARTBEAT_EXPIRED.inc()
        raise ApiError("SESSION_EXPIRED") from None


async def heartbeat(
    live: LiveSessions, product: Product, token: str, now_ms: int, session: tuple[int, str] | None = None
) -> None:
    """The hot path: one batched Redis script call, no PostgreSQL. `session` is the token already parsed."""
    license_id, session_id = session or session_of(live, product, token)
    try:
        await live.heartbeat_session(license_id, session_id, product.session_timeout, now_ms)
    except live_errors.SessionExpired:
        HEARTBEAT_EXPIRED.inc()
        raise ApiError("SESSION_EXPIRED") from None
    except live_errors.SessionTerminated as exc:
        HEARTBEAT_TERMINATED.inc()
        raise ApiError(CODE_BY_TOMBSTONE.get(exc.reason, "SESSION_TERMINATED")) from None
    HEARTBEAT_OK.inc()


async def end_session(db: Database, live: LiveSessions, product: Product, token: str, now: datetime) -> None:
    try:
        session_id = await live.end(token, to_ms(now), product.id)
    except (live_errors.SessionExpired, live_errors.BadToken):
        raise ApiError("SESSION_EXPIRED") from None
    except live_errors.SessionTerminated as exc:
        raise ApiError(CODE_BY_TOMBSTONE.get(exc.reason, "SESSION_TERMINATED")) from None
    try:
        async with db.transaction() as conn:
            await db.q.close_session_history(conn, id=session_id, ended_at=now, end_reason="normal")
    except (TimeoutError, OSError) as exc:
        # The session is over either way; its history is closed later as `timeout`.
        log.warning("session_end_history_failed", session_id=session_id, error=str(exc))


async def terminate_session(
    db: Database, live: LiveSessions, products: ProductCache, session_id: str, actor: Actor, now: datetime
) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    async with db.transaction() as conn:
        row = await db.q.get_session_history(conn, id=session_id)
        if row is None or row["ended_at"] is not None:
            raise ApiError("NOT_FOUND", "No live session with this id.")
        timeout = session_timeout_of(products, await db.q.get_license_product_id(conn, id=row["license_id"]))
        if not await live.terminate(row["license_id"], session_id, "forced", timeout):
            raise ApiError("NOT_FOUND", "No live session with this id.")
        await db.q.close_session_history(conn, id=session_id, ended_at=now, end_reason="forced")
        await record_change(
            conn,
            db.q,
            actor,
            "session.terminate",
            "session",
            session_id,
            before={"license_id": row["license_id"]},
        )
    return {"id": session_id, "end_reason": "forced"}


def session_timeout_of(products: ProductCache, product_id: int | None) -> int:
    product = products.by_id(product_id) if product_id is not None else None
    return (
        product.session_timeout if product else max((p.session_timeout for p in products.all()), default=60)
    )


async def live_sessions(
    db: Database, live: LiveSessions, products: ProductCache, now: datetime, license_id: int | None = None
) -> list[dict[str, Any]]:
    """Open history rows checked against Redis: live ones are returned, gone ones closed as timeout."""
    async with db.connection() as conn:
        rows = await db.q.open_sessions(conn, license_id=license_id)
    by_license: dict[int, list] = {}
    for row in rows:
        by_license.setdefault(row["license_id"], []).append(row)
    license_ids = list(by_license)
    expiries = await asyncio.gather(*(live.expiries(lid) for lid in license_ids))
    now_ms = to_ms(now)
    alive: list[dict[str, Any]] = []
    gone: list[tuple[str, int]] = []
    for lid, license_expiries in zip(license_ids, expiries, strict=True):
        for row in by_license[lid]:
            timeout = session_timeout_of(products, row["product_id"])
            expiry = license_expiries.get(row["id"])
            if expiry is not None and expiry > now_ms:
                alive.append(
                    {
                        "id": row["id"],
                        "license_id": lid,
                        "license_key": row["license_key"],
                        "customer_name": row["customer_name"],
                        "hardware_id": row["hardware_id"],
                        "ip": row["ip"],
                        "client_version": row["client_version"],
                        "started_at": row["started_at"],
                        "last_heartbeat_at": from_ms(expiry) - timedelta(seconds=timeout),
                        "expires_at": from_ms(expiry),
                    }
                )
            else:
                # Gone without a trace (Redis lost its data): it lived at least until its start + timeout.
                ended = expiry if expiry is not None else to_ms(row["started_at"]) + timeout * 1000
                gone.append((row["id"], min(ended, now_ms)))
    if gone:
        async with db.transaction() as conn:
            await close_timed_out(
                conn, db, gone, max((p.session_timeout for p in products.all()), default=60)
            )
    if license_id is None:
        LIVE_SESSIONS.set(len(alive))
    return alive


async def history(
    db: Database,
    live: LiveSessions,
    products: ProductCache,
    now: datetime,
    *,
    license_id: int | None,
    since: datetime | None,
    until: datetime | None = None,
    end_reason: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    await live_sessions(db, live, products, now, license_id)
    async with db.connection() as conn:
        rows = await db.q.query_history(
            conn,
            license_id=license_id,
            since=since or now - timedelta(hours=24),
            until=until,
            end_reason=end_reason,
            before_started=before[0] if before else None,
            before_id=before[1] if before else None,
            row_limit=limit,
        )
    return [dict(row) for row in rows]
