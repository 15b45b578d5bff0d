from __future__ import annotations

import orjson
from aiohttp import web
from marshmallow import RAISE, Schema, fields

from licsrv.envelope import load_body, ok
from licsrv.signing import verify_signature


async def public_key_of(client, key_id: str) -> str:
    keys = (await (await client.get("/api/v1/keys")).json())["data"]
    return next(key["public_key"] for key in keys if key["id"] == key_id)


def signed_key_id(response) -> str:
    header = response.headers["X-Licsrv-Signature"]
    fields_ = dict(part.strip().split("=", 1) for part in header.split(","))
    assert fields_["alg"] == "ed25519"
    return fields_["keyid"]


async def test_unknown_api_key_is_refused_in_a_signed_envelope(client):
    response = await client.get("/api/v1/nothing-here", headers={"X-API-Key": "lk_unknown"})
    body = await response.read()
    assert response.status == 401
    envelope = orjson.loads(body)
    assert envelope["status"] == "error"
    assert envelope["error"]["code"] == "INVALID_API_KEY"
    assert isinstance(envelope["server_time"], int)
    key_id = signed_key_id(response)
    assert verify_signature(await public_key_of(client, key_id), body, response.headers["X-Licsrv-Signature"])


async def test_refusals_before_the_body_is_read_still_echo_its_nonce(client):
    body = {"license_key": "X", "hardware_id": "h", "nonce": "n-before"}
    response = await client.post("/api/v1/licenses/validate", json=body, headers={"X-API-Key": "lk_unknown"})
    envelope = await response.json()
    assert (response.status, envelope["error"]["code"], envelope["nonce"]) == (
        401,
        "INVALID_API_KEY",
        "n-before",
    )
    broken = await client.post(
        "/api/v1/licenses/validate", data=b'{"nonce": "n', headers={"X-API-Key": "lk_unknown"}
    )
    assert broken.status == 401 and "nonce" not in await broken.json()


async def test_signature_does_not_verify_a_changed_body(client):
    response = await client.get("/api/v1/x", headers={"X-API-Key": "nope"})
    body = await response.read()
    public_key = await public_key_of(client, signed_key_id(response))
    tampered = body.replace(b"INVALID_API_KEY", b"INVALID_API_KEZ")
    assert not verify_signature(public_key, tampered, response.headers["X-Licsrv-Signature"])


async def test_missing_api_key_is_refused(client):
    response = await client.post("/api/v1/licenses/activate", json={})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "INVALID_API_KEY"


async def test_keys_are_published_with_the_active_one_marked(client):
    response = await client.get("/api/v1/keys")
    assert response.status == 200
    published = (await response.json())["data"]
    keys = [key for key in published if key["alg"] == "ed25519"]
    assert [key["active"] for key in keys].count(True) == 1
    assert all(len(key["public_key"]) == 44 for key in published)
    sealing = [key for key in published if key["alg"] == "x25519"]  # to seal request bodies to
    assert len(sealing) == 1 and len(published) == len(keys) + 1


async def test_unknown_route_with_valid_key_is_a_404_envelope(client, api_headers):
    response = await client.get("/api/v1/no-such-route", headers=api_headers)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "NOT_FOUND"


class EchoSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(required=True)
    count = fields.Integer(required=True)


async def echo(request: web.Request) -> web.Response:
    return ok(await load_body(request, EchoSchema()))


def echo_app(app: web.Application) -> web.Application:
    app.router.add_post("/api/v1/echo", echo)
    return app


async def test_body_is_validated_and_nonce_echoed(aiohttp_client, app, api_headers):
    client = await aiohttp_client(echo_app(app))
    response = await client.post(
        "/api/v1/echo", json={"name": "Müller 张", "count": 2, "nonce": "n-1"}, headers=api_headers
    )
    assert response.status == 200
    body = await response.json()
    assert body["data"] == {"name": "Müller 张", "count": 2}
    assert body["nonce"] == "n-1"


async def test_bad_bodies_get_clean_400s(aiohttp_client, app, api_headers):
    client = await aiohttp_client(echo_app(app))
    cases = [
        b"{not json",
        b"[1, 2]",
        orjson.dumps({"name": "x", "count": "many"}),
        orjson.dumps({"name": "x", "count": 1, "admin": True}),
        orjson.dumps({"name": "x", "count": 1, "nonce": {"nested": 1}}),
        b'{"name": "x\'; DROP TABLE licenses; --<script>", "count": 1e400}',
    ]
    for raw in cases:
        response = await client.post(
            "/api/v1/echo", data=raw, headers={**api_headers, "Content-Type": "application/json"}
        )
        assert response.status == 400, raw
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR", raw


async def test_oversized_body_is_413_payload_too_large(aiohttp_client, app, api_headers):
    client = await aiohttp_client(echo_app(app))
    response = await client.post(
        "/api/v1/echo", data=b'{"name": "' + b"x" * 200_000 + b'", "count": 1}', headers=api_headers
    )
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_redis_down_outside_the_live_layer_is_a_503_not_a_500(aiohttp_client, app, api_headers):
    from redis.exceptions import ConnectionError as RedisConnectionError

    async def redis_gone(request: web.Request) -> web.Response:
        raise RedisConnectionError("Connection refused")

    app.router.add_post("/api/v1/redis-gone", redis_gone)
    client = await aiohttp_client(app)
    response = await client.post("/api/v1/redis-gone", json={}, headers=api_headers)
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert "Retry-After" in response.headers


async def test_a_deadlock_victim_is_told_to_retry_not_given_a_500(aiohttp_client, app, api_headers, settings):
    import asyncio

    import asyncpg

    async def deadlock(request: web.Request) -> web.Response:
        # A real deadlock: two transactions lock two rows in opposite order.
        first, second = (
            await asyncpg.connect(settings.database_url),
            await asyncpg.connect(settings.database_url),
        )
        try:
            a, b = first.transaction(), second.transaction()
            await a.start()
            await b.start()
            await first.execute("SELECT pg_advisory_xact_lock(4201)")
            await second.execute("SELECT pg_advisory_xact_lock(4202)")
            await asyncio.gather(
                first.execute("SELECT pg_advisory_xact_lock(4202)"),
                second.execute("SELECT pg_advisory_xact_lock(4201)"),
            )
        finally:
            await first.close()
            await second.close()
        return web.json_response({})

    app.router.add_post("/api/v1/deadlock", deadlock)
    client = await aiohttp_client(app)
    response = await client.post("/api/v1/deadlock", json={}, headers=api_headers)
    assert response.status == 503
    assert (await response.json())["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response.headers["Retry-After"] == "1"


async def test_a_rotated_signing_key_is_used_without_a_restart(client, conn, queries, settings):
    import asyncio

    from licsrv.services.signing_keys import rotate_signing_key
    from licsrv.state import KEYRING

    before = client.app[KEYRING].key_id
    new_id = await rotate_signing_key(conn, queries, settings.secret_key)
    for _ in range(100):  # the NOTIFY reaches the app's listener within moments
        if client.app[KEYRING].key_id == new_id:
            break
        await asyncio.sleep(0.05)
    assert client.app[KEYRING].key_id == new_id != before
    response = await client.get("/api/v1/nothing-here", headers={"X-API-Key": "lk_unknown"})
    body = await response.read()
    assert signed_key_id(response) == new_id
    assert verify_signature(await public_key_of(client, new_id), body, response.headers["X-Licsrv-Signature"])
    published = {
        key["id"]: key["active"] for key in (await (await client.get("/api/v1/keys")).json())["data"]
    }
    assert published[new_id] is True and published[before] is False  # the old key still verifies old answers


async def test_a_key_rotated_under_another_secret_keeps_the_working_keyring(client, conn, queries, settings):
    from licsrv.services.signing_keys import rotate_signing_key
    from licsrv.state import KEYRING, PRODUCTS

    before = client.app[KEYRING].key_id
    await rotate_signing_key(conn, queries, "a-different-secret-key-of-another-host")
    try:
        await client.app[PRODUCTS].reload()  # what the NOTIFY and the periodic refresh run
        assert client.app[KEYRING].key_id == before  # still signing with the key it can use
        response = await client.get("/api/v1/nothing-here", headers={"X-API-Key": "lk_unknown"})
        assert signed_key_id(response) == before
        assert response.status == 401
    finally:
        # An active key this suite's secret decrypts again, for the tests after this one.
        await rotate_signing_key(conn, queries, settings.secret_key)


async def test_errors_of_list_items_answer_400_with_text_keys(client, admin_headers):
    """marshmallow keys a list item's errors by its index; the answer must still be JSON, not a 500."""
    response = await client.post(
        "/api/v1/admin/webhooks",
        json={"events": [None], "url": "https://example.com/hook"},
        headers=admin_headers,
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"]["code"] == "VALIDATION_ERROR" and "events" in body["error"]["details"]
