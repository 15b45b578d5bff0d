"""The admin's product scope: the product every page shows (None: all products), chosen in the header."""

from __future__ import annotations

from aiohttp import web

SCOPE_COOKIE = "licsrv_product"


def scoped_product_id(request: web.Request) -> int | None:
    """The product id the admin chose with the header's switcher, or None for all products."""
    raw = request.cookies.get(SCOPE_COOKIE, "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None
