"""The management API `/api/v1/admin`: everything the admin UI changes, for shops and billing systems."""

from __future__ import annotations

from aiohttp import web

from licsrv.admin_api import (
    cards,
    customers,
    license_import,
    licenses,
    plans,
    products,
    records,
    sessions,
    webhooks,
)
from licsrv.admin_api.auth import bearer_middleware
from licsrv.no_store import no_store


def create_admin_api_app() -> web.Application:
    admin_api = no_store(web.Application(middlewares=[bearer_middleware]))
    admin_api.add_routes(products.routes())
    admin_api.add_routes(sessions.routes())
    admin_api.add_routes(licenses.routes())
    admin_api.add_routes(cards.routes())
    admin_api.add_routes(records.routes())
    admin_api.add_routes(customers.routes())
    admin_api.add_routes(webhooks.routes())
    admin_api.add_routes(plans.routes())
    admin_api.add_routes(license_import.routes())
    return admin_api
