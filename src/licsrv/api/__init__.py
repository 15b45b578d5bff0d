"""The client API `/api/v1`: what the vendor's program calls, authenticated by the product's API key."""

from __future__ import annotations

from aiohttp import web

from licsrv.api import keys, licenses, offline, sessions
from licsrv.api.rules import client_rules_middleware


def create_api_app() -> web.Application:
    api = web.Application(middlewares=[client_rules_middleware])
    api.add_routes(keys.routes())
    api.add_routes(sessions.routes())
    api.add_routes(licenses.routes())
    api.add_routes(offline.routes())
    return api
