"""The admin's product scope: the product every page shows (None: all products), chosen in the header."""

from __future__ import annotations

from aiohttp import web

from licsrv.state import PRODUCTS
from licsrv.web.session import set_cookie

SCOPE_COOKIE = "licsrv_product"
YEAR = 365 * 24 * 3600


def scoped_product_id(request: web.Request) -> int | None:
    """The product id the admin chose with the header's switcher, or None for all products."""
    raw = request.cookies.get(SCOPE_COOKIE, "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


def _back(target: str) -> str:
    """Where the switcher was used: an admin page of this site, never elsewhere."""
    if target.startswith("/admin") and not target.startswith("//") and "\\" not in target:
        return target
    return "/admin/"


async def set_scope(request: web.Request) -> web.Response:
    """The header's switcher (POST with the CSRF token): one product, or all (empty), then back."""
    data = await request.post()
    chosen = str(data.get("product_id", ""))
    response = web.HTTPSeeOther(_back(str(data.get("next", ""))))
    product = (
        request.config_dict[PRODUCTS].by_id(int(chosen)) if chosen.isdigit() and len(chosen) <= 18 else None
    )
    if product is None:
        response.del_cookie(SCOPE_COOKIE, path="/admin")
    else:
        set_cookie(request, response, SCOPE_COOKIE, str(product.id), YEAR)
    raise response
