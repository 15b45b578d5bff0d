"""Run sessions: start, heartbeat, end and terminate over the live store, with their history in PostgreSQL.

Liveness is the Redis key's TTL; PostgreSQL only records history, closing expired sessions lazily as
`timeout` when a later start, a listing or the history finds them gone.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from licsrv.domain import PAGE_SIZE
from licsrv.errors import ApiError
from licsrv.live import sessions as live_errors
from licsrv.live.sessions import LiveSessions, StartResult
from licsrv.metrics import (
    HEARTBEAT_EXPIRED,
    HEARTBEAT_OK,
    HEARTBEAT_TERMINATED,
    LIVE_SESSIONS,
    START_REFUSALS,
)
from licsrv.paging import decode_time_cursor, encode_time_cursor
from licsrv.services import licensing
from licsrv.services.audit import Actor, record_change
from licsrv.services.portal.credential_files import license_key_for_credential
from licsrv.services.products import Product
from licsrv.services.session_crypto import check_public_key
from licsrv.services.versions import is_older
from licsrv.webhooks.outbox import event_type_if_wanted, wanted

if TYPE_CHECKING:
    from licsrv.deps import Deps

log = structlog.get_logger(__name__)

# An admin listing reads at most this many pages of open rows to fill one page of live sessions.
MAX_SCAN_PAGES = 5
LIVE_COUNT_CAP = 10_000

BLOCKED_CODE = {"suspended": "LICENSE_SUSPENDED", "revoked": "LICENSE_REVOKED"}

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
    deps: Deps,
    product: Product,
    *,
    license_key: str | None,
    hardware_id: str,
    client_version: str,
    ip: str | None,
    function: str | None = None,
    client_public_key: str | None = None,
    machine_name: str = "",
    credential: str | None = None,
) -> dict[str, Any]:
    """Every check that can refuse runs before anything is kept: a refused start leaves no session, no
    device and no history row (a new device's slot is taken in the transaction a refusal rolls back)."""
    if client_public_key:
        check_public_key(client_public_key)
    if is_older(client_version, product.minimum_version):
        raise refusal("VERSION_TOO_OLD")
    now = deps.now()
    device = {"machine_name": machine_name, "client_version": client_version, "ip": ip, "now": now}
    mac = bool(client_public_key)  # a MAC session: its token names it, so it is answered with MAC only
    async with deps.db.connection() as conn:
        if credential is not None:  # a customer's credential file (DESIGN §7c) names the license
            license_key = await license_key_for_credential(conn, deps, product, credential, license_key, ip)
        license_row = await licensing.find_license_for_start(conn, deps.q, product, license_key, hardware_id)
        licensing.ensure_license_usable(license_row, now)
        started = None
        if license_row["device_known"]:
            # A device removed while this start was under way (_DeviceGone) is activated again below.
            with contextlib.suppress(_DeviceGone):
                started = await _start_live(deps, product, license_row, hardware_id, device, conn, mac)
        if started is None:
            try:
                async with conn.transaction():
                    await licensing.activate_device(conn, deps.q, product, license_key, hardware_id, **device)
                    started = await _start_live(deps, product, license_row, hardware_id, device, conn, mac)
            except BaseException:
                if started is not None:  # the device's transaction did not commit: no session either
                    await deps.live.terminate(
                        license_row["id"], started.session_id, "forced", product.session_timeout
                    )
                raise
    token = started.token
    answer: dict[str, Any] = {
        "session_id": started.session_id,
        "heartbeat_interval": product.heartbeat_interval,
        "session_timeout": product.session_timeout,
        "update": update_notice(product, client_version),
    }
    if client_public_key:
        answer["mac_key"] = deps.crypto.sealed_mac_key(token, client_public_key)
        if function == "open":
            answer["content_key"] = deps.crypto.sealed_content_key(product, client_public_key)
    answer["session_token"] = token
    return answer


class _DeviceGone(Exception):
    """The device was removed while its start was under way; the session was taken back."""


async def _start_live(
    deps: Deps,
    product: Product,
    license_row: Any,
    hardware_id: str,
    device: dict[str, Any],
    conn: Any,
    mac: bool,
) -> StartResult:
    """The Redis session, then its history row on the caller's connection; a session whose history could
    not be written (or whose transaction does not commit) is taken back."""
    license_id, now = license_row["id"], device["now"]
    max_sessions = license_row["max_sessions"] or product.max_sessions
    try:
        started = await deps.live.start(
            license_id,
            max_sessions,
            product.session_policy,
            product.session_timeout,
            to_ms(now),
            product.id,
            mac=mac,
        )
    except live_errors.SessionLimitReached:
        raise refusal("SESSION_LIMIT_REACHED") from None
    except live_errors.LicenseBlocked as exc:
        raise refusal(BLOCKED_CODE.get(exc.reason, "LICENSE_SUSPENDED")) from None

    def record() -> Awaitable[Any]:
        return deps.q.record_session_start(
            conn,
            id=started.session_id,
            license_id=license_id,
            hardware_id=hardware_id,
            ip=device["ip"],
            client_version=device["client_version"],
            started_at=now,
            machine_name=device["machine_name"],
            event=wanted(
                deps, "session.started", _started_data(started.session_id, license_row, hardware_id, device)
            ),
        )

    try:
        if started.replaced or started.expired:
            async with conn.transaction():  # a savepoint when the caller already holds a transaction
                if not (await record())["recorded"]:
                    raise _DeviceGone
                for session_id in started.replaced:
                    await deps.q.close_session_history(
                        conn,
                        id=session_id,
                        ended_at=now,
                        end_reason="replaced",
                        event=event_type_if_wanted(deps, "session.replaced"),
                    )
                await close_timed_out(conn, deps, started.expired, product.session_timeout)
        elif not (await record())["recorded"]:  # one statement needs no transaction of its own
            raise _DeviceGone
    except BaseException:
        await deps.live.terminate(license_id, started.session_id, "forced", product.session_timeout)
        raise
    return started


def _started_data(session_id: str, license_row: Any, hardware_id: str, device: dict[str, Any]) -> dict:
    return {
        "session_id": session_id,
        "license_id": license_row["id"],
        "license_key": license_row["key"],
        "hardware_id": hardware_id,
        "ip": device["ip"],
        "client_version": device["client_version"],
        "started_at": device["now"],
    }


async def close_timed_out(conn: Any, deps: Deps, expired: list[tuple[str, int]], timeout_s: int) -> None:
    if expired:
        await deps.q.close_timed_out_sessions(
            conn,
            ids=[session_id for session_id, _ in expired],
            ended_ats=[from_ms(expiry) for _, expiry in expired],
            timeout_seconds=float(timeout_s),
            emit=event_type_if_wanted(deps, "session.timed_out") is not None,
        )


def session_of(live: LiveSessions, product: Product, token: str) -> tuple[int, bytes]:
    """(license id, 12-byte Redis member) of a token, without Redis (`keys.public_id` gives the session id);
    a token that names no session is expired."""
    try:
        return live.tokens.locate(token, product.id)
    except live_errors.BadToken:
        HEARTBEAT_EXPIRED.inc()
        raise ApiError("SESSION_EXPIRED") from None


async def heartbeat(
    live: LiveSessions, product: Product, token: str, now_ms: int, session: tuple[int, bytes] | None = None
) -> None:
    """The hot path: one batched Redis script call, no PostgreSQL. `session` is the token already located."""
    license_id, stored = session or session_of(live, product, token)
    reply = await live.queue_heartbeat(license_id, stored, product.session_timeout, now_ms)
    if reply != 1:
        await settle_heartbeat(live, product, (license_id, stored), now_ms, reply)
    HEARTBEAT_OK.inc()


async def settle_heartbeat(
    live: LiveSessions, product: Product, session: tuple[int, bytes], now_ms: int, reply: Any
) -> None:
    """Settles a heartbeat script's reply other than 1 (`live.queue_heartbeat`): a lost script is loaded and
    run again (returns if that succeeds); a session that is gone raises its refusal."""
    try:
        await live.settle_heartbeat(*session, product.session_timeout, now_ms, reply)
    except live_errors.SessionExpired:
        HEARTBEAT_EXPIRED.inc()
        raise ApiError("SESSION_EXPIRED") from None
    except live_errors.SessionTerminated as exc:
        HEARTBEAT_TERMINATED.inc()
        raise ApiError(CODE_BY_TOMBSTONE.get(exc.reason, "SESSION_TERMINATED")) from None


async def end_session(deps: Deps, product: Product, token: str) -> None:
    now = deps.now()
    try:
        session_id = await deps.live.end(token, to_ms(now), product.id)
    except (live_errors.SessionExpired, live_errors.BadToken):
        raise ApiError("SESSION_EXPIRED") from None
    except live_errors.SessionTerminated as exc:
        raise ApiError(CODE_BY_TOMBSTONE.get(exc.reason, "SESSION_TERMINATED")) from None
    try:
        async with deps.db.connection() as conn:
            await deps.q.close_session_history(
                conn,
                id=session_id,
                ended_at=now,
                end_reason="normal",
                event=event_type_if_wanted(deps, "session.ended"),
            )
    except (TimeoutError, OSError, ApiError) as exc:
        # The session is over either way; its history is closed later as `timeout`.
        log.warning("session_end_history_failed", session_id=session_id, error=str(exc))


async def terminate_session(deps: Deps, session_id: str, actor: Actor) -> dict[str, Any]:
    if not actor.can_change():
        raise ApiError("FORBIDDEN")
    now = deps.now()
    async with deps.db.transaction() as conn:
        row = await deps.q.get_session_history(conn, id=session_id)
        if row is None or row["ended_at"] is not None:
            raise ApiError("NOT_FOUND", "No live session with this id.")
        product_id = await deps.q.get_license_product_id(conn, id=row["license_id"])
        timeout = deps.session_timeout_of(product_id)
        if not await licensing.force_end_session(conn, deps, row["license_id"], session_id, timeout, now):
            raise ApiError("NOT_FOUND", "No live session with this id.")
        await record_change(
            conn,
            deps.q,
            actor,
            "session.terminate",
            "session",
            session_id,
            before={"license_id": row["license_id"]},
        )
    return {"id": session_id, "end_reason": "forced"}


@dataclass(frozen=True)
class LivePage:
    sessions: list[dict[str, Any]]
    next_cursor: str | None


def _live_view(row: Any, expiry_ms: int, timeout: int) -> dict[str, Any]:
    return {
        "id": row["id"],
        "license_id": row["license_id"],
        "license_key": row["license_key"],
        "customer_name": row["customer_name"],
        "hardware_id": row["hardware_id"],
        "ip": row["ip"],
        "client_version": row["client_version"],
        "started_at": row["started_at"],
        "last_heartbeat_at": from_ms(expiry_ms) - timedelta(seconds=timeout),
        "expires_at": from_ms(expiry_ms),
    }


async def _sort_out(deps: Deps, rows: list[Any], now_ms: int) -> tuple[list[dict[str, Any]], list]:
    """The page's rows checked against Redis in one round trip: (live views, gone (id, ended ms, timeout))."""
    expiries = await deps.live.expiry_of([(row["license_id"], row["id"]) for row in rows])
    alive, gone = [], []
    for row, expiry in zip(rows, expiries, strict=True):
        timeout = deps.session_timeout_of(row["product_id"])
        if expiry is not None and expiry > now_ms:
            alive.append(_live_view(row, expiry, timeout))
        else:
            # Gone without a trace (Redis lost its data): it lived at least until its start + timeout.
            ended = expiry if expiry is not None else to_ms(row["started_at"]) + timeout * 1000
            gone.append((row["id"], min(ended, now_ms), timeout))
    return alive, gone


async def _close_gone(deps: Deps, gone: list[tuple[str, int, int]]) -> None:
    if gone:
        async with deps.db.connection() as conn:
            for timeout in {t for _, _, t in gone}:
                same = [(sid, ended) for sid, ended, t in gone if t == timeout]
                await close_timed_out(conn, deps, same, timeout)


async def live_sessions(
    deps: Deps,
    *,
    license_id: int | None = None,
    product_id: int | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> LivePage:
    """Live sessions, newest first, a page at a time: open history rows from PostgreSQL checked against
    Redis page by page (one pipelined round trip each); rows found gone are closed as `timeout` on the way.
    Never one Redis call per license, never more than a few pages of rows in memory."""
    now_ms = to_ms(deps.now())
    before = decode_time_cursor(cursor)
    alive: list[dict[str, Any]] = []
    for _ in range(MAX_SCAN_PAGES):
        async with deps.db.connection() as conn:
            rows = await deps.q.open_sessions_page(
                conn,
                license_id=license_id,
                product_id=product_id,
                before_started=before[0] if before else None,
                before_id=before[1] if before else None,
                row_limit=limit,
            )
        if not rows:
            return LivePage(alive, None)
        found, gone = await _sort_out(deps, rows, now_ms)
        await _close_gone(deps, gone)
        live_by_id = {view["id"]: view for view in found}
        for row in rows:
            before = (row["started_at"], row["id"])
            if row["id"] in live_by_id:
                alive.append(live_by_id[row["id"]])
                if len(alive) == limit:
                    return LivePage(alive, encode_time_cursor(*before))
        if len(rows) < limit:
            return LivePage(alive, None)
    return LivePage(alive, encode_time_cursor(*before))


@dataclass(frozen=True)
class LiveCount:
    count: int
    exact: bool

    def __str__(self) -> str:
        return f"{self.count:,}" if self.exact else f"≈ {self.count:,}"


async def count_live(deps: Deps, product_id: int | None = None) -> LiveCount:
    """The badge: open sessions as last recorded, counted exactly up to a cap and estimated beyond it by
    the planner's statistics, so it stays cheap at a million (one product's: at least the cap)."""
    if product_id is not None:
        async with deps.db.connection() as conn:
            count = await deps.q.count_open_sessions_of_product(
                conn, product_id=product_id, cap=LIVE_COUNT_CAP
            )
        return LiveCount(count, exact=count < LIVE_COUNT_CAP)
    async with deps.db.connection() as conn:
        count = await deps.q.count_open_sessions(conn, cap=LIVE_COUNT_CAP)
        if count < LIVE_COUNT_CAP:
            found = LiveCount(count, exact=True)
        else:
            found = LiveCount(max(await deps.q.estimate_open_sessions(conn) or 0, count), exact=False)
    LIVE_SESSIONS.set(found.count)
    return found


async def _license_id_of(deps: Deps, conn: Any, text: str, key_or_id: bool) -> int:
    """The license a pasted key names (the query tries it as given, then upper-cased), or with `key_or_id`
    a license id."""
    text = text.strip()
    found = await deps.q.get_license_by_key(conn, key=text)
    if found is not None:
        return found["id"]
    if key_or_id and text.isdigit() and len(text) <= 18 and await deps.q.get_license(conn, id=int(text)):
        return int(text)
    raise ApiError("LICENSE_NOT_FOUND", f"No license with key {text[:100]}.")


async def history(
    deps: Deps,
    *,
    license_id: int | None,
    since: datetime | None,
    until: datetime | None = None,
    end_reason: str | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 100,
    license_key: str | None = None,
    product_id: int | None = None,
    key_or_id: bool = False,
) -> list[dict[str, Any]]:
    """A page of history; its rows still open are checked against Redis and closed if they are gone.
    `license_key` (with `key_or_id`: a key or a license id, as pasted in the admin UI) that names no license
    is refused with LICENSE_NOT_FOUND rather than ignored."""
    now = deps.now()
    async with deps.db.connection() as conn:
        if license_key is not None:
            license_id = await _license_id_of(deps, conn, license_key, key_or_id)
        rows = await deps.q.query_history(
            conn,
            product_id=product_id,
            license_id=license_id,
            since=since or now - timedelta(hours=24),
            until=until,
            end_reason=end_reason,
            before_started=before[0] if before else None,
            before_id=before[1] if before else None,
            row_limit=limit,
        )
        page = [dict(row) for row in rows]
    open_rows = [row for row in page if row["ended_at"] is None]
    if not open_rows:
        return page
    _, gone = await _sort_out(deps, open_rows, to_ms(now))
    await _close_gone(deps, gone)
    closed = {sid: (ended, timeout) for sid, ended, timeout in gone}
    for row in page:
        if row["id"] in closed:
            ended, timeout = closed[row["id"]]
            row["ended_at"], row["end_reason"] = from_ms(ended), "timeout"
            row["last_heartbeat_at"] = max(row["started_at"], from_ms(ended) - timedelta(seconds=timeout))
    return page
