"""licsrv_client.sdk against a real server: trusted answers only, sessions with MACed heartbeats."""

from __future__ import annotations

import asyncio
import base64

import pytest
from nacl.signing import SigningKey

from licsrv_client.sdk import LicenseClient, LicsrvError, UntrustedAnswer

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app, heartbeat_interval=1, session_timeout=2)


@pytest.fixture
async def sdk(client, product):
    async with LicenseClient(
        str(client.make_url("")), product["api_key"], product=product["slug"]
    ) as licsrv_client:
        yield licsrv_client


async def test_activate_start_heartbeat_end(sdk, conn, queries, product):
    lic = await make_license(conn, queries, product, features={"pro": True})
    view = await sdk.activate(lic["key"], "hw-sdk", machine_name="Büro-PC", client_version="2.0.0")
    assert view["features"] == {"pro": True} and view["devices_used"] == 1
    assert (await sdk.validate(lic["key"], "hw-sdk"))["valid"] is True
    session = await sdk.start_session(lic["key"], "hw-sdk", "2.0.0", open_program=True)
    assert session.mac_key and len(session.mac_key) == 32
    assert await session.heartbeat() == 1  # a MACed answer, checked with the unsealed key
    with pytest.raises(LicsrvError) as refused:
        await sdk.start_session(lic["key"], "hw-sdk", "2.0.0")
    assert refused.value.code == "SESSION_LIMIT_REACHED" and refused.value.status == 409
    await session.end()
    with pytest.raises(LicsrvError) as gone:
        await session.heartbeat()
    assert gone.value.code == "SESSION_EXPIRED"
    assert isinstance(sdk.server_time, int)


async def test_keep_alive_stops_with_the_refusal_when_an_admin_terminates(
    sdk, client, conn, queries, product
):
    from licsrv.state import LIVE

    lic = await make_license(conn, queries, product)
    session = await sdk.start_session(lic["key"], "hw-kept", "2.0.0")
    keeper = asyncio.create_task(session.keep_alive(interval=0.01))  # no waiting in a test
    await asyncio.sleep(0.2)
    assert not keeper.done()  # alive and heartbeating
    await client.app[LIVE].terminate(lic["id"], session.session_id, "forced", 2)
    with pytest.raises(LicsrvError) as ended:
        await asyncio.wait_for(keeper, 5)
    assert ended.value.code == "SESSION_TERMINATED"


async def test_answers_signed_with_another_key_are_not_trusted(client, conn, queries, product):
    lic = await make_license(conn, queries, product)
    keys = (await (await client.get("/api/v1/keys")).json())["data"]
    forged = {key["id"]: base64.b64encode(bytes(SigningKey.generate().verify_key)).decode() for key in keys}
    async with LicenseClient(
        str(client.make_url("")), product["api_key"], product=product["slug"], public_keys=forged
    ) as pinned:
        with pytest.raises(UntrustedAnswer):
            await pinned.activate(lic["key"], "hw")
    genuine = {key["id"]: key["public_key"] for key in keys}
    async with LicenseClient(
        str(client.make_url("")), product["api_key"], product=product["slug"], public_keys=genuine
    ) as pinned:
        assert (await pinned.activate(lic["key"], "hw"))["devices_used"] == 1


async def test_refusals_carry_their_code_and_retry_after(sdk, conn, queries, product, client):
    from licsrv.state import PRODUCTS

    with pytest.raises(LicsrvError) as missing:
        await sdk.validate("NOPE-NOPE-NOPE", "hw")
    assert (missing.value.code, missing.value.status) == ("LICENSE_NOT_FOUND", 404)
    await conn.execute(
        "UPDATE products SET rate_limits = $2 WHERE id = $1", product["id"], {"validate": "1/minute"}
    )
    await client.app[PRODUCTS].reload()
    with pytest.raises(LicsrvError):
        await sdk.validate("NOPE-NOPE-NOPE", "hw")
    with pytest.raises(LicsrvError) as limited:
        await sdk.validate("NOPE-NOPE-NOPE", "hw")
    assert limited.value.code == "RATE_LIMITED" and limited.value.retry_after >= 1


async def test_keep_alive_starts_a_new_session_when_redis_lost_the_old_one(
    sdk, client, conn, queries, product
):
    from licsrv.live.keys import session_key, sessions_key
    from licsrv.state import REDIS

    lic = await make_license(conn, queries, product)
    session = await sdk.start_session(lic["key"], "hw-lost", "2.0.0")
    first_id = session.session_id
    # Redis loses the license's live keys (a restart without persistence, a failover).
    await client.app[REDIS].delete(session_key(lic["id"], first_id), sessions_key(lic["id"]))
    keeper = asyncio.create_task(session.keep_alive(interval=0.01))
    try:
        for _ in range(200):
            if session.restarts:
                break
            await asyncio.sleep(0.01)
        assert session.restarts == 1 and session.session_id != first_id
        assert not keeper.done()  # and it goes on heartbeating the new one
        assert await session.heartbeat() == 1
    finally:
        keeper.cancel()
    started = await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", lic["id"])
    assert started == 2
