"""The dashboard and its small JSON summary, which the page polls every 30 s."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from licsrv.services import sessions
from licsrv.state import DB, LIVE, PRODUCTS
from licsrv.web.render import page


async def summary_data(request: web.Request) -> dict:
    db = request.config_dict[DB]
    async with db.connection() as conn:
        counts = dict(await db.q.dashboard_counts(conn))
    live = await sessions.live_sessions(
        db, request.config_dict[LIVE], request.config_dict[PRODUCTS], datetime.now(UTC)
    )
    newest = sorted(live, key=lambda s: s["started_at"], reverse=True)[:5]
    return {
        **counts,
        "live_sessions": len(live),
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
    return page(request, "admin/dashboard.html", summary=await summary_data(request))


async def summary(request: web.Request) -> web.Response:
    return web.json_response(await summary_data(request))
