"""The dashboard, its charts, and its small JSON summary, which the page polls every 30 s."""

from __future__ import annotations

from aiohttp import web
from markupsafe import Markup

from licsrv.services import sessions, usage
from licsrv.state import CHART_CACHE, deps_of
from licsrv.web.charts import Plot, chart
from licsrv.web.render import page
from licsrv.web.scope import scoped_product_id

SESSIONS, SOLD, ACTIVATED, REDEEMED = "#2457c5", "#9bb3e6", "#18794e", "#c4620f"


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


def usage_charts(data: usage.UsageCharts) -> list[Markup]:
    hours = [moment.strftime("%H:00") for moment, _ in data.sessions_per_hour]
    days = [moment.strftime("%m-%d") for moment, _ in data.sessions_per_day]

    def values(series: usage.Series) -> list[int]:
        return [value for _, value in series]

    return [
        chart(
            "chart-sessions-24h",
            "Concurrent sessions, last 24 hours (peak per hour, UTC)",
            "The highest number of live sessions seen in each hour.",
            hours,
            [Plot("Peak sessions", values(data.sessions_per_hour), "line", SESSIONS)],
        ),
        chart(
            "chart-sessions-30d",
            "Concurrent sessions and licenses sold, last 30 days (per day, UTC)",
            "The day's peak of live sessions as a line, the licenses created that day as bars.",
            days,
            [
                Plot("Licenses sold", values(data.licenses_per_day), "bar", SOLD),
                Plot("Peak sessions", values(data.sessions_per_day), "line", SESSIONS),
            ],
        ),
        chart(
            "chart-activations-30d",
            "Activations and card redemptions, last 30 days (per day, UTC)",
            "Devices activated for the first time and card keys redeemed, per day.",
            days,
            [
                Plot("Activations", values(data.activations_per_day), "bar", ACTIVATED),
                Plot("Card redemptions", values(data.redemptions_per_day), "bar", REDEEMED),
            ],
        ),
    ]


async def dashboard(request: web.Request) -> web.Response:
    data = await request.config_dict[CHART_CACHE].charts(deps_of(request), scoped_product_id(request))
    return page(
        request,
        "admin/dashboard.html",
        summary=await summary_data(request),
        charts=usage_charts(data),
        scoped_page=True,
    )


async def summary(request: web.Request) -> web.Response:
    return web.json_response(await summary_data(request))
