"""`GET /api/v1/keys`: the public keys that verify every signed answer and offline certificate."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from marshmallow import Schema, fields

from licsrv.api.rules import client_call
from licsrv.envelope import MAX_NONCE_LENGTH, Envelope
from licsrv.errors import ApiError
from licsrv.openapi import documented
from licsrv.signing import Keyring
from licsrv.state import CRYPTO, KEYRING, NONCE


class PublicKeySchema(Schema):
    id = fields.String(required=True)
    alg = fields.String(
        required=True,
        metadata={"description": "ed25519 (verifies answers) or x25519 (seal request bodies to it)"},
    )
    public_key = fields.String(required=True, metadata={"description": "base64 of the 32-byte Ed25519 key"})
    active = fields.Boolean(required=True, metadata={"description": "signs answers now"})
    next = fields.Boolean(required=True, metadata={"description": "published to be trusted, signs later"})


KEYS_SCHEMA = PublicKeySchema(many=True)


@client_call(public=True)
@documented("Public keys that verify signed answers", tag="client", answer=PublicKeySchema(many=True))
async def list_keys(request: web.Request) -> web.Response:
    """Signed like every client answer, and echoes `?nonce=` (a client learns keys only from a keys answer
    signed by a key it already trusts)."""
    nonce = request.query.get("nonce")
    if nonce is not None:
        if len(nonce) > MAX_NONCE_LENGTH:
            raise ApiError("VALIDATION_ERROR", "nonce must be a string of at most 128 characters.")
        request[NONCE] = nonce
    published = [*request.config_dict[KEYRING].published, request.config_dict[CRYPTO].sealing_key]
    return KeysEnvelope({"status": "ok", "data": KEYS_SCHEMA.dump(published)})


class KeysEnvelope(Envelope):
    """The keys answer also carries `X-Licsrv-Key-Signatures`: the same bytes signed by every published key
    the server holds, so a client pinned to a retired key still learns the active one."""

    def finish(self, nonce: Any, keyring: Keyring | None, *args: Any) -> None:
        super().finish(nonce, keyring, *args)
        if keyring is not None:
            self.headers["X-Licsrv-Key-Signatures"] = keyring.key_signatures_header(self.body)


def routes() -> list[web.RouteDef]:
    return [web.get("/keys", list_keys)]
