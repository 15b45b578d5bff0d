"""Rendering admin pages: the shared context (who is logged in, the CSRF token, the role's rights)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from licsrv.domain import ROLE_RANK
from licsrv.errors import ApiError
from licsrv.state import PRODUCTS
from licsrv.web.flash import forget_flash, take_flash
from licsrv.web.scope import scoped_product_id
from licsrv.web.session import ADMIN, CSRF, forbidden
from licsrv.web.words import in_words, page_title

RANK = ROLE_RANK


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """The page, with what every page shows: its title, and the message a change just left (see flash.py)."""
    admin = request.get(ADMIN)
    role = admin["role"] if admin else "viewer"
    context.setdefault("page_title", page_title(request.path))
    if not context.get("message") and not context.get("error"):
        context["message"] = take_flash(request)
    cache = request.config_dict[PRODUCTS]
    scoped = scoped_product_id(request)
    context.update(
        scope_products=[p for p in cache.all() if p.archived_at is None],
        scoped=cache.by_id(scoped) if scoped is not None else None,
        here=request.path_qs,
        admin=admin,
        csrf=request[CSRF],
        can_operate=RANK[role] >= RANK["operator"],
        is_owner=role == "owner",
        path=request.path,
    )
    response = aiohttp_jinja2.render_template(template, request, context, status=status)
    forget_flash(request, response)
    return response


def requires(role: str) -> Callable:
    """POST handlers that change something: a lower role gets 403 even if it crafted the form itself."""

    def wrap(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Callable:
        @wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            if RANK[request[ADMIN]["role"]] < RANK[role]:
                raise forbidden(request, f"this needs the {role} role.")
            return await handler(request)

        return checked

    return wrap


def flash_error(error: ApiError) -> str:
    """A refusal in words, with the form's labels instead of its field names."""
    return in_words(error)


async def form(request: web.Request) -> dict[str, str]:
    return {k: str(v) for k, v in (await request.post()).items() if k != "csrf"}
