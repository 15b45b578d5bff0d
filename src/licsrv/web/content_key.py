"""The product's content key (DESIGN §5) in the admin UI: set (pasted, base64), generate, clear; owner only.
A stored key is never shown again, only its fingerprint; a generated key is shown once, on the answer."""

from __future__ import annotations

import base64
import secrets

from aiohttp import web
from marshmallow import ValidationError

from licsrv.admin_api.schemas import ContentKeySchema
from licsrv.envelope import as_api_error
from licsrv.errors import ApiError
from licsrv.services import products
from licsrv.state import deps_of
from licsrv.web.flash import done
from licsrv.web.render import flash_error, form, requires
from licsrv.web.session import actor_of
from licsrv.web.settings import product_page

GENERATED_BYTES = 32


@requires("owner")
async def change_content_key(request: web.Request) -> web.Response:
    data = await form(request)
    product_id = int(request.match_info["id"])
    action = data.get("action", "set")
    generated = None
    try:
        if action == "clear":
            key = None
        elif action == "generate":
            key = secrets.token_bytes(GENERATED_BYTES)
            generated = base64.b64encode(key).decode()
        else:
            pasted = ContentKeySchema().load({"content_key": data.get("content_key", "").strip()})
            key = base64.b64decode(pasted["content_key"])
        await products.change_content_key(deps_of(request), product_id, key, actor_of(request))
    except (ApiError, ValidationError) as exc:
        error = as_api_error(exc, request)
        return await product_page(request, error=flash_error(error), status=error.status)
    if generated:
        return await product_page(
            request,
            message="A new content key is set. Copy it now: it is not shown again.",
            new_content_key=generated,
        )
    message = "The content key is cleared." if key is None else "The content key is set."
    raise done(request, f"/admin/products/{product_id}", message)


def routes() -> list[web.RouteDef]:
    return [web.post(r"/products/{id:\d{1,18}}/content-key", change_content_key)]
