"""The portal API `/api/v1/portal`: what the vendor's site or program calls for its customers (DESIGN §7c).
The product comes from `X-API-Key` like the client API; a signed-in customer sends `Authorization: Bearer`."""

from __future__ import annotations

from aiohttp import web

from licsrv.api.rules import client_rules_middleware
from licsrv.portal_api import handlers


def create_portal_api_app() -> web.Application:
    portal = web.Application(middlewares=[client_rules_middleware])
    portal.add_routes(handlers.routes())
    return portal
