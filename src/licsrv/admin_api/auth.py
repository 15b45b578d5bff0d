"""Bearer-token authentication of the management API; the token's role is the caller's role."""

from __future__ import annotations

from aiohttp import web

from licsrv.envelope import Handler
from licsrv.errors import ApiError
from licsrv.middlewares import get_client_ip
from licsrv.services.audit import Actor
from licsrv.services.tokens import authenticate_token
from licsrv.state import DB

ACTOR = web.RequestKey("actor", Actor)


def request_actor(request: web.Request) -> Actor:
    return request[ACTOR]


@web.middleware
async def bearer_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise ApiError("UNAUTHORIZED", "Send Authorization: Bearer <token>.")
    db = request.config_dict[DB]
    async with db.connection() as conn:
        actor = await authenticate_token(conn, db.q, token.strip(), get_client_ip(request))
    if actor is None:
        raise ApiError("UNAUTHORIZED", "The token is unknown or revoked.")
    if request.method not in ("GET", "HEAD") and not actor.can_change():
        raise ApiError("FORBIDDEN", "A viewer token changes nothing.")
    request[ACTOR] = actor
    return await handler(request)
