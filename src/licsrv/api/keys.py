"""`GET /api/v1/keys`: the public keys that verify every signed answer and offline certificate."""

from __future__ import annotations

from aiohttp import web
from marshmallow import Schema, fields

from licsrv.api.rules import client_call
from licsrv.envelope import ok
from licsrv.openapi import documented
from licsrv.state import KEYRING


class PublicKeySchema(Schema):
    id = fields.String(required=True)
    alg = fields.String(required=True)
    public_key = fields.String(required=True, metadata={"description": "base64 of the 32-byte Ed25519 key"})
    active = fields.Boolean(required=True)


KEYS_SCHEMA = PublicKeySchema(many=True)


@client_call(public=True)
@documented("Public keys that verify signed answers", tag="client", answer=PublicKeySchema(many=True))
async def list_keys(request: web.Request) -> web.Response:
    return ok(KEYS_SCHEMA.dump(request.config_dict[KEYRING].published))


def routes() -> list[web.RouteDef]:
    return [web.get("/keys", list_keys)]
