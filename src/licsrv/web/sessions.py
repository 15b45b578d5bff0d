"""Live sessions (with Terminate) and the session history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiohttp import web

from licsrv.domain import END_REASONS
from licsrv.errors import ApiError
from licsrv.services import sessions
from licsrv.state import deps_of
from licsrv.web.render import page, requires
from licsrv.web.scope import scoped_product_id
from licsrv.web.session import actor_of

REASONS = END_REASONS


async def live_list(request: web.Request) -> web.Response:
    deps = deps_of(request)
    scoped = scoped_product_id(request)
    try:
        found = await sessions.live_sessions(deps, product_id=scoped, cursor=request.query.get("cursor"))
    except ApiError:
        found = await sessions.live_sessions(deps, product_id=scoped)
    return page(
        request,
        "admin/sessions.html",
        sessions=found.sessions,
        next_cursor=found.next_cursor,
        live_count=await sessions.count_live(deps, scoped),
        scoped_page=True,
    )


@requires("operator")
async def terminate(request: web.Request) -> web.Response:
    try:
        await sessions.terminate_session(deps_of(request), request.match_info["id"], actor_of(request))
    except ApiError as exc:
        if exc.code != "NOT_FOUND":
            raise
    raise web.HTTPSeeOther("/admin/sessions")


def _time(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def history(request: web.Request) -> web.Response:
    now = datetime.now(UTC)
    query = request.query
    # `license` takes a pasted key or an id; `license_id` is the older spelling, kept for links.
    license_ref = (query.get("license") or query.get("license_id") or "").strip()[:100]
    reason = query.get("reason") if query.get("reason") in REASONS else None
    since = _time(query.get("since", "")) or now - timedelta(hours=24)
    until = _time(query.get("until", ""))
    error, rows = None, []
    try:
        rows = await sessions.history(
            deps_of(request),
            license_id=None,
            license_key=license_ref or None,
            key_or_id=True,
            product_id=scoped_product_id(request),
            since=since,
            until=until,
            end_reason=reason,
            limit=200,
        )
    except ApiError as exc:
        if exc.code != "LICENSE_NOT_FOUND":
            raise
        error = exc.message
    return page(
        request,
        "admin/history.html",
        status=404 if error else 200,
        error=error,
        rows=rows,
        reasons=REASONS,
        license_ref=license_ref,
        reason=reason or "",
        since=since.strftime("%Y-%m-%dT%H:%M"),
        until=until.strftime("%Y-%m-%dT%H:%M") if until else "",
    )
