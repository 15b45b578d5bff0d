"""The client API `/api/v1`: what the vendor's program calls, authenticated by the product's API key."""

from __future__ import annotations

from aiohttp import web

from licsrv.api import keys, licenses, offline, sessions
from licsrv.api.auth import api_key_middleware
from licsrv.api.rate_limiting import rate_limit_middleware
from licsrv.api.request_signing import request_signing_middleware


def create_api_app() -> web.Application:
    api = web.Application(middlewares=[api_key_middleware, request_signing_middleware, rate_limit_middleware])
    api.add_routes(keys.routes())
    api.add_routes(sessions.routes())
    api.add_routes(licenses.routes())
    api.add_routes(offline.routes())
    return api
