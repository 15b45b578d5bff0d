"""Signing keys rotate in two steps without an outage: a client pinned before the rotation keeps working."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from nacl.encoding import RawEncoder
from nacl.signing import SigningKey

from licsrv.services.signing_keys import UnknownNextKey, activate_signing_key, add_signing_key
from licsrv.state import KEYRING, PRODUCTS
from licsrv_client.sdk import LicenseClient, UntrustedAnswer

from factories import make_license, make_product


async def published(client) -> list[dict]:
    return (await (await client.get("/api/v1/keys")).json())["data"]


async def test_a_client_pinned_before_add_and_activate_keeps_working(client, conn, queries, settings):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product)
    pinned = {key["id"]: key["public_key"] for key in await published(client) if key["active"]}
    old_id = client.app[KEYRING].key_id
    next_id = await add_signing_key(conn, queries, settings.secret_key)
    await client.app[PRODUCTS].reload()
    keys = {key["id"]: key for key in await published(client)}
    assert keys[next_id]["next"] and not keys[next_id]["active"]
    assert client.app[KEYRING].key_id == old_id  # published, not signing
    url = str(client.make_url(""))
    async with LicenseClient(url, product["api_key"], product=product["slug"], public_keys=pinned) as sdk:
        await sdk.activate(lic["key"], "hw-1")
        await activate_signing_key(conn, queries, next_id)
        await client.app[PRODUCTS].reload()
        assert client.app[KEYRING].key_id == next_id
        keys = {key["id"]: key for key in await published(client)}
        assert keys[old_id] == {**keys[old_id], "active": False, "next": False}  # retired, still published
        # Signed with a key it never pinned: the SDK fetches GET /keys, whose answer the retired (pinned) key
        # signs too, and learns the new key from it.
        assert (await sdk.validate(lic["key"], "hw-1"))["valid"] is True
        assert next_id in sdk.public_keys


async def test_a_client_that_saw_the_next_key_trusts_it_after_activation(client, conn, queries, settings):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product)
    pinned = {key["id"]: key["public_key"] for key in await published(client) if key["active"]}
    url = str(client.make_url(""))
    async with LicenseClient(url, product["api_key"], product=product["slug"], public_keys=pinned) as sdk:
        next_id = await add_signing_key(conn, queries, settings.secret_key)
        await client.app[PRODUCTS].reload()
        learned = await sdk.fetch_keys()  # signed by the pinned key: the next key is learned
        assert next_id in learned and next_id in sdk.public_keys
        await activate_signing_key(conn, queries, next_id)
        await client.app[PRODUCTS].reload()
        assert (await sdk.activate(lic["key"], "hw-1"))["devices_used"] == 1
    with pytest.raises(UnknownNextKey):
        await activate_signing_key(conn, queries, next_id)  # already active: not a next key


async def test_a_keys_answer_signed_by_an_unknown_key_teaches_nothing(client, conn):
    product = await make_product(conn, client.app)
    genuine = {key["id"]: key["public_key"] for key in await published(client)}
    impostor = SigningKey.generate()
    impostor_public = base64.b64encode(bytes(impostor.verify_key)).decode()

    async def forged_keys(request: web.Request) -> web.Response:
        document = {
            "status": "ok",
            "data": [{"id": "evil", "alg": "ed25519", "public_key": impostor_public, "active": True}],
            "nonce": request.query.get("nonce"),
        }
        body = orjson.dumps(document)
        signature = base64.b64encode(impostor.sign(body, encoder=RawEncoder).signature).decode()
        headers = {"X-Licsrv-Signature": f"keyid=evil, alg=ed25519, sig={signature}"}
        return web.Response(body=body, headers=headers, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v1/keys", forged_keys)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url(""))
        async with LicenseClient(
            url, product["api_key"], product=product["slug"], public_keys=genuine
        ) as sdk:
            with pytest.raises(UntrustedAnswer):
                await sdk.fetch_keys()
            assert sdk.public_keys == genuine
    finally:
        await server.close()
