from __future__ import annotations

import asyncio
import base64

import pytest
from nacl.public import PrivateKey, SealedBox

from licsrv.live.keys import session_key
from licsrv.signing import mac_signature_header
from licsrv.state import REDIS

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def start(client, headers, license_key, hardware_id="hw-1", version="2.0.0", **extra):
    body = {"license_key": license_key, "hardware_id": hardware_id, "client_version": version, **extra}
    response = await client.post("/api/v1/sessions/start", json=body, headers=headers)
    return response.status, await response.json()


async def beat(client, headers, token):
    response = await client.post("/api/v1/sessions/heartbeat", json={"session_token": token}, headers=headers)
    return response.status, await response.json()


async def history_row(conn, session_id):
    return await conn.fetchrow("SELECT * FROM session_history WHERE id = $1", session_id)


async def test_start_heartbeat_end_records_a_normal_history(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=2)
    status, body = await start(client, headers, lic["key"])
    assert status == 200, body
    data = body["data"]
    assert data["heartbeat_interval"] == 1 and data["session_timeout"] == 2
    assert data["update"] is None
    status, body = await beat(client, headers, data["session_token"])
    subject = {"product": product["slug"], "session_id": data["session_id"]}
    assert (status, body["data"]) == (200, {"next_heartbeat": 1, **subject})
    assert (data["license_key"], data["hardware_id"], data["product"]) == (
        lic["key"],
        "hw-1",
        product["slug"],
    )
    response = await client.post(
        "/api/v1/sessions/end", json={"session_token": data["session_token"]}, headers=headers
    )
    assert response.status == 200
    row = await history_row(conn, data["session_id"])
    assert row["end_reason"] == "normal" and row["hardware_id"] == "hw-1"
    status, body = await beat(client, headers, data["session_token"])
    assert (status, body["error"]["code"]) == (404, "SESSION_EXPIRED")


async def test_a_start_on_a_known_device_marks_it_seen_without_a_second_slot(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product, max_devices=1)
    status, body = await start(client, headers, lic["key"], version="2.0.0", machine_name="Büro-PC")
    assert status == 200, body
    end = {"session_token": body["data"]["session_token"]}
    assert (await client.post("/api/v1/sessions/end", json=end, headers=headers)).status == 200
    first = await conn.fetchrow("SELECT * FROM devices WHERE license_id = $1", lic["id"])
    status, body = await start(client, headers, lic["key"], version="2.1.0")
    assert status == 200, body
    devices = await conn.fetch("SELECT * FROM devices WHERE license_id = $1", lic["id"])
    assert len(devices) == 1
    assert devices[0]["last_seen_at"] > first["last_seen_at"]
    assert (devices[0]["client_version"], devices[0]["machine_name"]) == ("2.1.0", "Büro-PC")
    assert (await start(client, headers, lic["key"], hardware_id="hw-2"))[1]["error"]["code"] == (
        "DEVICE_LIMIT_REACHED"
    )


async def test_session_key_ttl_is_the_session_timeout(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product)
    _, body = await start(client, headers, lic["key"])
    ttl = await client.app[REDIS].pttl(session_key(lic["id"], body["data"]["session_id"]))
    assert 1000 < ttl <= 2000


async def test_second_start_is_refused_with_a_generic_message(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=2)
    assert (await start(client, headers, lic["key"], "hw-1"))[0] == 200
    status, body = await start(client, headers, lic["key"], "hw-2")
    assert (status, body["error"]["code"]) == (409, "SESSION_LIMIT_REACHED")
    assert "hw-1" not in body["error"]["message"]


async def test_expired_session_frees_the_slot_and_is_closed_lazily_as_timeout(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product)
    _, first = await start(client, headers, lic["key"])
    first = first["data"]
    # Expiry is the key vanishing; remove it instead of waiting for the TTL.
    await client.app[REDIS].delete(session_key(lic["id"], first["session_id"]))
    status, body = await beat(client, headers, first["session_token"])
    assert (status, body["error"]["code"]) == (404, "SESSION_EXPIRED")
    assert (await history_row(conn, first["session_id"]))["ended_at"] is None  # nothing swept it
    status, _ = await start(client, headers, lic["key"])
    assert status == 200
    row = await history_row(conn, first["session_id"])
    assert row["end_reason"] == "timeout" and row["ended_at"] is not None


async def test_replace_policy_ends_the_oldest_session(client, conn, queries):
    product = await make_product(conn, client.app, session_policy="replace")
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product, max_devices=2)
    _, first = await start(client, headers, lic["key"], "hw-1")
    status, second = await start(client, headers, lic["key"], "hw-2")
    assert status == 200
    status, body = await beat(client, headers, first["data"]["session_token"])
    assert (status, body["error"]["code"]) == (410, "SESSION_TERMINATED")
    assert (await beat(client, headers, second["data"]["session_token"]))[0] == 200
    assert (await history_row(conn, first["data"]["session_id"]))["end_reason"] == "replaced"


async def test_max_sessions_above_one(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_sessions=3)
    results = [await start(client, headers, lic["key"]) for _ in range(4)]
    assert [status for status, _ in results] == [200, 200, 200, 409]


async def test_version_gate_and_update_notice(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product)
    status, body = await start(client, headers, lic["key"], version="0.9.9")
    assert (status, body["error"]["code"]) == (426, "VERSION_TOO_OLD")
    status, body = await start(client, headers, lic["key"], version="1.10")
    assert status == 200
    assert body["data"]["update"] == {
        "current_version": "2.0.0",
        "download_url": "https://example.com/dl",
        "whats_new": "Neu: 更快",
    }


async def test_admin_lists_and_terminates_a_live_session(
    client, conn, queries, product, headers, admin_headers
):
    lic = await make_license(conn, queries, product, customer_name="Zoë Müller")
    _, body = await start(client, headers, lic["key"], "hw-admin")
    session = body["data"]
    response = await client.get(f"/api/v1/admin/sessions?license_id={lic['id']}", headers=admin_headers)
    listed = (await response.json())["data"]
    assert [s["id"] for s in listed] == [session["session_id"]]
    assert listed[0]["hardware_id"] == "hw-admin" and listed[0]["customer_name"] == "Zoë Müller"
    assert "session_token" not in listed[0] and session["session_token"] not in str(listed)
    response = await client.delete(f"/api/v1/admin/sessions/{session['session_id']}", headers=admin_headers)
    assert response.status == 200
    status, body = await beat(client, headers, session["session_token"])
    assert (status, body["error"]["code"]) == (410, "SESSION_TERMINATED")
    assert (await history_row(conn, session["session_id"]))["end_reason"] == "forced"
    audit = await conn.fetchval("SELECT count(*) FROM audit_log WHERE object_id = $1", session["session_id"])
    assert audit == 1
    response = await client.get(f"/api/v1/admin/history?license_id={lic['id']}", headers=admin_headers)
    assert [h["end_reason"] for h in (await response.json())["data"]] == ["forced"]


async def test_suspending_the_license_ends_its_sessions_as_suspended(
    client, conn, queries, product, headers, admin_headers
):
    lic = await make_license(conn, queries, product)
    _, body = await start(client, headers, lic["key"])
    response = await client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers)
    assert response.status == 200
    status, reply = await beat(client, headers, body["data"]["session_token"])
    assert (status, reply["error"]["code"]) == (403, "LICENSE_SUSPENDED")
    assert (await history_row(conn, body["data"]["session_id"]))["end_reason"] == "suspended"


async def test_five_hundred_concurrent_starts_give_exactly_one_session(client, conn, queries):
    # A session that outlives the race however slow the machine: a 2 s timeout could expire the winner
    # before the last of the 500 is answered, and a later start would then rightly succeed.
    product = await make_product(conn, client.app, session_timeout=120, heartbeat_interval=30)
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product, max_devices=1)
    results = await asyncio.gather(*(start(client, headers, lic["key"], "hw-race") for _ in range(500)))
    statuses = [status for status, _ in results]
    assert statuses.count(200) == 1
    assert statuses.count(409) == 499


async def test_session_with_client_key_gets_sealed_keys_and_mac_signed_heartbeats(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product)
    client_key = PrivateKey.generate()
    public = base64.b64encode(bytes(client_key.public_key)).decode()
    status, body = await start(client, headers, lic["key"], client_public_key=public, function="open")
    assert status == 200, body
    data = body["data"]
    mac_key = SealedBox(client_key).decrypt(base64.b64decode(data["mac_key"]))
    assert len(mac_key) == 32
    assert data["content_key"] is None  # this product has no content key
    response = await client.post(
        "/api/v1/sessions/heartbeat", json={"session_token": data["session_token"]}, headers=headers
    )
    raw = await response.read()
    assert response.status == 200
    assert response.headers["X-Licsrv-Signature"] == mac_signature_header(mac_key, raw)


async def test_bad_heartbeat_bodies_are_400(client, headers):
    for body in ({}, {"session_token": 5}, {"session_token": "abc"}, {"session_token": "x" * 50, "extra": 1}):
        response = await client.post("/api/v1/sessions/heartbeat", json=body, headers=headers)
        assert response.status == 400, body
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"


async def test_forged_token_for_another_license_is_just_expired(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product)
    _, body = await start(client, headers, lic["key"])
    license_id, secret = body["data"]["session_token"].split(".")
    status, reply = await beat(client, headers, f"{int(license_id) + 1}.{secret}")
    assert (status, reply["error"]["code"]) == (404, "SESSION_EXPIRED")


async def test_bad_client_public_key_is_refused_before_any_session_starts(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product)
    status, body = await start(client, headers, lic["key"], client_public_key="!" * 44)
    assert (status, body["error"]["code"]) == (400, "VALIDATION_ERROR")
    assert await conn.fetchval("SELECT count(*) FROM session_history WHERE license_id = $1", lic["id"]) == 0
    assert (await start(client, headers, lic["key"]))[0] == 200  # nothing live was left behind


async def test_access_log_skips_successful_heartbeats_but_not_refused_ones(
    aiohttp_client, settings, conn, queries, capsys
):
    from dataclasses import replace

    from licsrv.app import create_app

    client = await aiohttp_client(create_app(replace(settings, access_log=True)))
    product = await make_product(conn, client.app)
    headers = {"X-API-Key": product["api_key"]}
    lic = await make_license(conn, queries, product)
    _, body = await start(client, headers, lic["key"])
    capsys.readouterr()
    assert (await beat(client, headers, body["data"]["session_token"]))[0] == 200
    assert "/api/v1/sessions/heartbeat" not in capsys.readouterr().out
    assert (await beat(client, headers, "1.AAAAAAAAAAAAAAAAAAAAAAAAAAAA"))[0] == 404
    assert "/api/v1/sessions/heartbeat" in capsys.readouterr().out


async def test_a_token_sent_with_another_products_key_names_no_session(
    client, conn, queries, product, headers
):
    lic = await make_license(conn, queries, product)
    _, body = await start(client, headers, lic["key"])
    token = body["data"]["session_token"]
    other = await make_product(conn, client.app)
    foreign = {"X-API-Key": other["api_key"]}
    status, reply = await beat(client, foreign, token)
    assert (status, reply["error"]["code"]) == (404, "SESSION_EXPIRED")
    response = await client.post("/api/v1/sessions/end", json={"session_token": token}, headers=foreign)
    assert (await response.json())["error"]["code"] == "SESSION_EXPIRED"
    assert (await beat(client, headers, token))[0] == 200  # still alive for its own product
