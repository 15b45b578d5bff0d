"""The audit log and the security events, newest first."""

from __future__ import annotations

from aiohttp import web

from licsrv.errors import ApiError
from licsrv.services import records
from licsrv.state import deps_of
from licsrv.web.audit_text import change_lines
from licsrv.web.render import page

PAGE_SIZE = 100


def _cursor(request: web.Request) -> str | None:
    return request.query.get("cursor")


async def audit(request: web.Request) -> web.Response:
    try:
        rows, cursor = await records.audit_page(deps_of(request), _cursor(request), PAGE_SIZE)
    except ApiError:  # a cursor that does not parse shows the first page
        rows, cursor = await records.audit_page(deps_of(request), None, PAGE_SIZE)
    for row in rows:
        row["changes"] = change_lines(row["before"], row["after"])
    return page(request, "admin/audit.html", rows=rows, next_cursor=cursor)


async def security(request: web.Request) -> web.Response:
    try:
        rows, cursor = await records.security_page(deps_of(request), None, _cursor(request), PAGE_SIZE)
    except ApiError:
        rows, cursor = await records.security_page(deps_of(request), None, None, PAGE_SIZE)
    return page(request, "admin/security.html", rows=rows, next_cursor=cursor)
