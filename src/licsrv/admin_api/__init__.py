"""The management API `/api/v1/admin`: everything the admin UI changes, for shops and billing systems."""

from __future__ import annotations

from aiohttp import web

from licsrv.admin_api import products, sessions
from licsrv.admin_api.auth import bearer_middleware


def create_admin_api_app() -> web.Application:
    admin_api = web.Application(middlewares=[bearer_middleware])
    admin_api.add_routes(products.routes())
    admin_api.add_routes(sessions.routes())
    return admin_api
