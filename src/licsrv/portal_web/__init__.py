"""The portal pages `/portal/<product slug>/…` (DESIGN §7c): for vendors who use the portal as it is."""

from __future__ import annotations

from aiohttp import web

from licsrv.portal_web import pages


def create_portal_web_app() -> web.Application:
    portal = web.Application()
    portal.add_routes(pages.routes())
    return portal
