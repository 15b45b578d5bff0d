from __future__ import annotations

import time

import pytest

from licsrv.api.request_signing import request_signature
from licsrv.services import licenses as license_service
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.tokens import create_token

from factories import make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


async def create(client, admin_headers, **body):
    response = await client.post("/api/v1/admin/licenses", json=body, headers=admin_headers)
    return response.status, await response.json()


async def test_create_get_update_and_audit(client, conn, product, admin_headers):
    status, body = await create(
        client,
        admin_headers,
        product_id=product["id"],
        customer_name="李雷",
        customer_email="li@example.cn",
        max_devices=3,
        duration_days=365,
        features={"pro": True},
    )
    assert status == 201, body
    lic = body["data"]
    assert lic["key"].count("-") == 4 and lic["duration_days"] == 365 and lic["expires_at"] is None
    response = await client.patch(
        f"/api/v1/admin/licenses/{lic['id']}", json={"notes": "VIP", "max_devices": 5}, headers=admin_headers
    )
    assert response.status == 200
    got = (await (await client.get(f"/api/v1/admin/licenses/{lic['id']}", headers=admin_headers)).json())[
        "data"
    ]
    assert (got["notes"], got["max_devices"], got["customer_name"], got["devices"]) == ("VIP", 5, "李雷", [])
    actions = [
        r["action"]
        for r in await conn.fetch(
            "SELECT action FROM audit_log WHERE object_type = 'license' AND object_id = $1 ORDER BY id",
            str(lic["id"]),
        )
    ]
    assert actions == ["license.create", "license.update"]


async def test_search_and_cursor_pagination(client, conn, product, admin_headers):
    marker = f"Pagination-{time.time_ns()}"
    for i in range(5):
        await create(client, admin_headers, product_id=product["id"], customer_name=f"{marker} {i}")
    seen, cursor = [], None
    while True:
        url = f"/api/v1/admin/licenses?q={marker}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = await (await client.get(url, headers=admin_headers)).json()
        seen += [lic["customer_name"] for lic in body["data"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == [f"{marker} {i}" for i in (4, 3, 2, 1, 0)]
    response = await client.get("/api/v1/admin/licenses?cursor=%%%", headers=admin_headers)
    assert response.status == 400


@pytest.mark.parametrize("window", [1, 4, 1000])
async def test_search_finds_every_match_in_order_whatever_the_walked_window(
    client, conn, admin_headers, monkeypatch, window
):
    """A search walks the newest licenses first and asks the trigram indexes for the rest; the pages are the
    same wherever the matches lie: rare ones among old licenses, frequent ones among new ones."""
    monkeypatch.setattr(license_service, "SEARCH_WINDOW", window)
    product = await make_product(conn, client.app)
    marker = f"win{time.time_ns()}"
    names = []
    for i in range(24):
        kind = "rare" if i < 12 and i % 5 == 0 else "often" if i >= 12 and i % 2 else "other"
        names.append(f"{marker} {kind} {i}")
        await create(client, admin_headers, product_id=product["id"], customer_name=names[-1])
    for q in (f"{marker} rare", f"{marker} often", marker, f"{marker} none", f"{marker} other 1"):
        expected = [name for name in reversed(names) if q.lower() in name.lower()]
        for scope in ("", f"&product_id={product['id']}"):
            seen, cursor = [], None
            while True:
                url = f"/api/v1/admin/licenses?q={q}&limit=3{scope}" + (f"&cursor={cursor}" if cursor else "")
                body = await (await client.get(url, headers=admin_headers)).json()
                seen += [lic["customer_name"] for lic in body["data"]]
                if not (cursor := body["next_cursor"]):
                    break
            assert seen == expected, (q, scope)


async def test_suspend_resume_revoke_extend(client, conn, product, admin_headers):
    _, body = await create(client, admin_headers, product_id=product["id"], expires_at="2030-01-01T00:00:00Z")
    lic_id = body["data"]["id"]
    for action, expected in (("suspend", "suspended"), ("resume", "active"), ("revoke", "revoked")):
        response = await client.post(f"/api/v1/admin/licenses/{lic_id}/{action}", headers=admin_headers)
        assert (await response.json())["data"]["status"] == expected
    response = await client.post(f"/api/v1/admin/licenses/{lic_id}/resume", headers=admin_headers)
    assert response.status == 409
    response = await client.post(
        f"/api/v1/admin/licenses/{lic_id}/extend", json={"days": 10}, headers=admin_headers
    )
    assert (await response.json())["data"]["expires_at"].startswith("2030-01-11")


async def test_suspend_ends_live_sessions_and_remove_device_frees_the_slot(
    client, conn, product, admin_headers
):
    headers = {"X-API-Key": product["api_key"]}
    _, body = await create(client, admin_headers, product_id=product["id"])
    lic = body["data"]
    start = {"license_key": lic["key"], "hardware_id": "hw", "client_version": "2.0.0"}
    token = (await (await client.post("/api/v1/sessions/start", json=start, headers=headers)).json())["data"][
        "session_token"
    ]
    await client.post(f"/api/v1/admin/licenses/{lic['id']}/suspend", headers=admin_headers)
    reply = await (
        await client.post("/api/v1/sessions/heartbeat", json={"session_token": token}, headers=headers)
    ).json()
    assert reply["error"]["code"] == "LICENSE_SUSPENDED"
    await client.post(f"/api/v1/admin/licenses/{lic['id']}/resume", headers=admin_headers)
    device_id = (
        await (await client.get(f"/api/v1/admin/licenses/{lic['id']}", headers=admin_headers)).json()
    )["data"]["devices"][0]["id"]
    response = await client.delete(
        f"/api/v1/admin/licenses/{lic['id']}/devices/{device_id}", headers=admin_headers
    )
    assert (await response.json())["data"]["devices"] == []


async def test_product_settings_patch_validates_and_reaches_the_cache(client, conn, product, admin_headers):
    url = f"/api/v1/admin/products/{product['id']}"
    response = await client.patch(
        url, json={"heartbeat_interval": 40, "session_timeout": 60}, headers=admin_headers
    )
    assert response.status == 400
    response = await client.patch(
        url, json={"current_version": "3.1.0", "session_policy": "replace"}, headers=admin_headers
    )
    assert (await response.json())["data"]["session_policy"] == "replace"
    response = await client.patch(url, json={"session_policy": "sometimes"}, headers=admin_headers)
    assert response.status == 400


async def test_operator_token_cannot_change_product_settings(client, conn, queries, product):
    _, token = await create_token(conn, queries, "op", "operator", CLI_ACTOR)
    response = await client.patch(
        f"/api/v1/admin/products/{product['id']}",
        json={"whats_new": "x"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 403


async def test_signed_requests_are_checked_when_the_product_asks(client, conn, product, admin_headers):
    await client.patch(
        f"/api/v1/admin/products/{product['id']}",
        json={"require_signed_requests": True},
        headers=admin_headers,
    )
    from licsrv.state import PRODUCTS

    await client.app[PRODUCTS].reload()
    body = b'{"license_key": "NOPE", "hardware_id": "a"}'
    path = "/api/v1/licenses/validate"

    def signed(nonce: str, timestamp: int | None = None, key: str = product["api_key"]) -> dict:
        ts = str(timestamp or int(time.time()))
        return {
            "X-API-Key": product["api_key"],
            "Content-Type": "application/json",
            "X-Licsrv-Timestamp": ts,
            "X-Licsrv-Nonce": nonce,
            "X-Licsrv-Request-Signature": request_signature(key, "POST", path, ts, nonce, body),
        }

    nonce = f"nonce-{time.time_ns()}"
    response = await client.post(path, data=body, headers=signed(nonce))
    assert (await response.json())["error"]["code"] == "LICENSE_NOT_FOUND"  # signature accepted
    response = await client.post(path, data=body, headers=signed(nonce))
    assert (await response.json())["error"]["code"] == "REPLAYED_REQUEST"
    response = await client.post(path, data=body, headers=signed(nonce + "x", int(time.time()) - 400))
    assert (await response.json())["error"]["code"] == "BAD_SIGNATURE"
    response = await client.post(path, data=body, headers=signed(nonce + "y", key="wrong"))
    assert (await response.json())["error"]["code"] == "BAD_SIGNATURE"
    response = await client.post(path, data=body, headers={"X-API-Key": product["api_key"]})
    assert (await response.json())["error"]["code"] == "BAD_SIGNATURE"
    kinds = {
        r["kind"]
        for r in await conn.fetch("SELECT kind FROM security_events WHERE product_id = $1", product["id"])
    }
    assert kinds == {"bad_signature", "replayed_nonce"}


async def test_search_treats_like_wildcards_as_text(client, conn, product, admin_headers):
    marker = f"wild{time.time_ns()}"
    await create(client, admin_headers, product_id=product["id"], customer_name=f"{marker} 100% sure")
    await create(client, admin_headers, product_id=product["id"], customer_name=f"{marker} plain")
    body = await (
        await client.get(f"/api/v1/admin/licenses?q={marker}%20100%25", headers=admin_headers)
    ).json()
    assert [lic["customer_name"] for lic in body["data"]] == [f"{marker} 100% sure"]
    body = await (await client.get(f"/api/v1/admin/licenses?q={marker}_", headers=admin_headers)).json()
    assert body["data"] == []
