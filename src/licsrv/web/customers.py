"""The admin UI's portal pages: Customers (search by email, licenses, verify, disable, erase) and the mail
Outbox (what was sent, and in `licsrv dev` without SMTP, what would have been)."""

from __future__ import annotations

from aiohttp import web

from licsrv.errors import ApiError
from licsrv.paging import decode_cursor, encode_cursor
from licsrv.services.portal import customers
from licsrv.state import deps_of
from licsrv.web.render import flash_error, form, page
from licsrv.web.session import actor_of

PAGE_SIZE = 50
MESSAGES = {"verify": "Marked as verified.", "disable": "Disabled.", "enable": "Enabled.", "erase": "Erased."}


async def customer_list(request: web.Request) -> web.Response:
    q = request.query.get("q", "")[:254]
    rows = await customers.search(deps_of(request), product_id=None, q=q, limit=PAGE_SIZE)
    return page(request, "admin/customers.html", rows=rows, q=q)


async def customer_detail(request: web.Request, error: str | None = None, status: int = 200) -> web.Response:
    found = await customers.detail(deps_of(request), int(request.match_info["id"]))
    message = MESSAGES.get(request.query.get("done", ""))
    return page(request, "admin/customer.html", status=status, c=found, error=error, message=message)


async def customer_action(request: web.Request) -> web.Response:
    account_id = int(request.match_info["id"])
    action = request.match_info["action"]
    await form(request)
    deps, actor = deps_of(request), actor_of(request)
    try:
        if action == "verify":
            await customers.set_verified(deps, account_id, actor)
        elif action in ("disable", "enable"):
            await customers.set_disabled(deps, account_id, action == "disable", actor)
        elif action == "erase":
            await customers.erase(deps, account_id, actor)
        else:
            raise web.HTTPNotFound()
    except ApiError as exc:
        return await customer_detail(request, error=flash_error(exc), status=exc.status)
    raise web.HTTPSeeOther(f"/admin/customers/{account_id}?done={action}")


async def outbox(request: web.Request) -> web.Response:
    try:
        after = decode_cursor(request.query.get("cursor"))
    except Exception:
        after = None
    deps = deps_of(request)
    async with deps.db.connection() as conn:
        rows = await deps.q.list_mail(conn, after_id=after, row_limit=PAGE_SIZE + 1)
    cursor = encode_cursor(rows[PAGE_SIZE - 1]["id"]) if len(rows) > PAGE_SIZE else None
    return page(
        request,
        "admin/outbox.html",
        rows=rows[:PAGE_SIZE],
        next_cursor=cursor,
        smtp=bool(deps.settings.smtp_url),
    )
