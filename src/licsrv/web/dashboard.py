"""The dashboard and its small JSON summary, which the page polls every 30 s."""

from __future__ import annotations

from aiohttp import web

from licsrv.services import sessions
from licsrv.state import deps_of
from licsrv.web.render import page
from licsrv.web.scope import scoped_product_id


async def summary_data(request: web.Request) -> dict:
    deps = deps_of(request)
    scoped = scoped_product_id(request)
    async with deps.db.connection() as conn:
        counts = dict(await deps.q.dashboard_counts(conn, product_id=scoped))
    newest = (await sessions.live_sessions(deps, product_id=scoped, limit=5)).sessions
    return {
        **counts,
        "live_sessions": str(await sessions.count_live(deps, scoped)),
        "newest": [
            {
                "license_key": s["license_key"],
                "customer_name": s["customer_name"],
                "hardware_id": s["hardware_id"],
                "ip": s["ip"],
                "started_at": s["started_at"].strftime("%Y-%m-%d %H:%M:%S"),
                "last_heartbeat_at": s["last_heartbeat_at"].strftime("%H:%M:%S"),
            }
            for s in newest
        ],
    }


async def dashboard(request: web.Request) -> web.Response:
    return page(request, "admin/dashboard.html", summary=await summary_data(request), scoped_page=True)


async def summary(request: web.Request) -> web.Response:
    return web.json_response(await summary_data(request))
