"""The audit log and the security events, newest first."""

from __future__ import annotations

from aiohttp import web

from licsrv.paging import decode_cursor, encode_cursor
from licsrv.state import DB
from licsrv.web.render import page

PAGE_SIZE = 100


def _cursor(request: web.Request) -> int | None:
    try:
        return decode_cursor(request.query.get("cursor"))
    except Exception:
        return None


async def audit(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        rows = await db.q.list_audit(conn, after_id=_cursor(request), row_limit=PAGE_SIZE + 1)
    cursor = encode_cursor(rows[PAGE_SIZE - 1]["id"]) if len(rows) > PAGE_SIZE else None
    return page(request, "admin/audit.html", rows=rows[:PAGE_SIZE], next_cursor=cursor)


async def security(request: web.Request) -> web.Response:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        rows = await db.q.list_security_events(
            conn, kind=None, after_id=_cursor(request), row_limit=PAGE_SIZE + 1
        )
    cursor = encode_cursor(rows[PAGE_SIZE - 1]["id"]) if len(rows) > PAGE_SIZE else None
    return page(request, "admin/security.html", rows=rows[:PAGE_SIZE], next_cursor=cursor)
