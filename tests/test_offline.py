"""Offline activation (DESIGN §6): request codes, the API, the phone page, certificates, the clock guard."""

from __future__ import annotations

import base64
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from licsrv_client.offline import (
    ClockGuard,
    ClockMovedBackwards,
    OfflineError,
    OfflineRequest,
    check_certificate,
    make_request,
    read_certificate,
)

from factories import make_license, make_product

ACTIVATE = "/api/v1/offline/activate"


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def public_keys(client) -> dict[str, str]:
    keys = (await (await client.get("/api/v1/keys")).json())["data"]
    return {key["id"]: key["public_key"] for key in keys}


async def devices(conn, license_id: int) -> list[str]:
    rows = await conn.fetch("SELECT hardware_id FROM devices WHERE license_id = $1", license_id)
    return sorted(row["hardware_id"] for row in rows)


async def test_request_code_to_verified_certificate(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, duration_days=30, features={"pro": True})
    request = make_request(lic["key"].lower(), "hw-offline-1")
    response = await client.post(ACTIVATE, json={"request_code": request.code()}, headers=headers)
    body = await response.json()
    assert response.status == 200, body
    payload = check_certificate(body["data"]["certificate"], request, await public_keys(client))
    assert payload["hardware_id"] == "hw-offline-1" and payload["nonce"] == request.nonce
    assert payload["features"] == {"pro": True} and payload["product"] == product["slug"]
    # The clock started at this first activation: about 30 days from now.
    assert abs(payload["expires_at"] - (time.time() + 30 * 86400)) < 120
    assert body["data"]["license"]["devices_used"] == 1
    assert await devices(conn, lic["id"]) == ["hw-offline-1"]
    again = await client.post(ACTIVATE, json={"request_code": request.code()}, headers=headers)
    assert again.status == 200 and await devices(conn, lic["id"]) == ["hw-offline-1"]  # same slot


async def test_slots_and_license_state_are_enforced(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, max_devices=1)
    first = make_request(lic["key"], "hw-a").code()
    assert (await client.post(ACTIVATE, json={"request_code": first}, headers=headers)).status == 200
    second = await client.post(
        ACTIVATE, json={"request_code": make_request(lic["key"], "hw-b").code()}, headers=headers
    )
    assert (second.status, (await second.json())["error"]["code"]) == (409, "DEVICE_LIMIT_REACHED")
    await conn.execute("UPDATE licenses SET status = 'suspended' WHERE id = $1", lic["id"])
    refused = await client.post(ACTIVATE, json={"request_code": first}, headers=headers)
    assert (await refused.json())["error"]["code"] == "LICENSE_SUSPENDED"
    other = await make_product(conn, client.app)
    foreign = await make_license(conn, queries, other)
    stranger = await client.post(
        ACTIVATE, json={"request_code": make_request(foreign["key"], "hw-a").code()}, headers=headers
    )
    assert (stranger.status, (await stranger.json())["error"]["code"]) == (404, "LICENSE_NOT_FOUND")
    assert await devices(conn, foreign["id"]) == []


def _raw_code(document: bytes) -> str:
    return "LR1." + base64.urlsafe_b64encode(document).rstrip(b"=").decode()


async def test_bad_request_codes_are_400_and_write_nothing(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product)
    now = time.time()
    bad = [
        "",
        "hello",
        "LR1.!!!",
        _raw_code(b"[1, 2]"),
        _raw_code(b'{"k": "x"}'),
        _raw_code(b'{"k": "<script>", "h": "\' OR 1=1 --", "n": "n", "t": true}'),
        OfflineRequest(lic["key"], "hw", "n", int(now - 3 * 86400)).code(),  # days old
        OfflineRequest(lic["key"], "hw", "n", int(now + 3600)).code(),  # clock far ahead
        "LR1." + "A" * 5000,
    ]
    for code in bad:
        response = await client.post(ACTIVATE, json={"request_code": code}, headers=headers)
        assert response.status == 400, code
        assert (await response.json())["error"]["code"] == "VALIDATION_ERROR", code
    assert await devices(conn, lic["id"]) == []


async def test_certificates_are_checked_offline(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, duration_days=1)
    request = make_request(lic["key"], "hw-check")
    response = await client.post(ACTIVATE, json={"request_code": request.code()}, headers=headers)
    certificate = (await response.json())["data"]["certificate"]
    keys = await public_keys(client)
    assert check_certificate(certificate, request, keys)["license_key"] == lic["key"]
    # Pasted with line breaks still reads.
    assert read_certificate("\n".join(re.findall(".{1,40}", certificate)), keys)["nonce"] == request.nonce
    prefix, body, signature = certificate.split(".")
    tampered = f"{prefix}.{body[:-2]}{'A' if body[-2] != 'A' else 'B'}{body[-1]}.{signature}"
    with pytest.raises(OfflineError):
        read_certificate(tampered, keys)
    with pytest.raises(OfflineError, match="another machine"):
        check_certificate(certificate, make_request(lic["key"], "hw-other"), keys)
    with pytest.raises(OfflineError, match="another request"):
        check_certificate(certificate, OfflineRequest(lic["key"], "hw-check", "n2", 1), keys)
    with pytest.raises(OfflineError, match="expired"):
        check_certificate(certificate, request, keys, now=time.time() + 2 * 86400)
    with pytest.raises(OfflineError, match="clock is behind"):
        check_certificate(certificate, request, keys, now=time.time() - 86400)
    with pytest.raises(OfflineError, match="unknown key"):
        read_certificate(certificate, {"other": next(iter(keys.values()))})


def test_clock_guard_refuses_a_clock_set_back(tmp_path):
    guard = ClockGuard(tmp_path / "seen", tolerance_s=60)
    assert guard.check(now=1_000_000) == 1_000_000
    assert guard.check(now=1_000_500) == 1_000_500
    assert guard.check(now=1_000_450) == 1_000_450  # within the tolerance
    with pytest.raises(ClockMovedBackwards):
        guard.check(now=999_000)
    assert ClockGuard(tmp_path / "seen").last_seen() == 1_000_500  # kept across restarts


async def test_phone_page_shows_then_activates(client, conn, queries, product):
    lic = await make_license(conn, queries, product)
    request = make_request(lic["key"], "hw-phone")
    page = await client.get("/offline", params={"r": request.code()})
    html = await page.text()
    assert page.status == 200 and "hw-phone" in html and lic["key"] not in html  # key shown masked
    assert await devices(conn, lic["id"]) == []  # showing the page binds nothing
    done = await client.post("/offline", data={"r": request.code()})
    html = await done.text()
    assert done.status == 200 and "<svg" in html
    assert page.headers["Cache-Control"] == "no-store"
    certificate = re.search(r'<textarea id="certificate" readonly>([^<]+)</textarea>', html)[1]
    assert check_certificate(certificate, request, await public_keys(client))["hardware_id"] == "hw-phone"
    assert await devices(conn, lic["id"]) == ["hw-phone"]


async def test_phone_page_explains_refusals(client, conn, queries, product):
    lic = await make_license(conn, queries, product, expires_at=datetime.now(UTC) - timedelta(days=1))
    damaged = await client.get("/offline", params={"r": "LR1.<script>"})
    assert damaged.status == 400 and "<script>" not in await damaged.text()
    expired = await client.post("/offline", data={"r": make_request(lic["key"], "hw").code()})
    assert expired.status == 403 and "expired" in (await expired.text()).lower()
    unknown = await client.post("/offline", data={"r": make_request("NOPE-NOPE", "hw").code()})
    assert unknown.status == 404 and "not found" in (await unknown.text()).lower()
    empty = await client.get("/offline")
    assert empty.status == 200 and 'name="r"' in await empty.text()


async def test_a_saved_request_and_certificate_check_again_at_the_next_start(
    client, conn, queries, product, headers, tmp_path
):
    from licsrv_client.offline import parse_request_code

    lic = await make_license(conn, queries, product)
    request = make_request(lic["key"], "hw-saved")
    response = await client.post(ACTIVATE, json={"request_code": request.code()}, headers=headers)
    saved = tmp_path / "license.cert"
    saved.write_text(request.code() + "\n" + (await response.json())["data"]["certificate"])
    # Later, at a program start:
    now = ClockGuard(tmp_path / "last-seen").check()
    code, certificate = saved.read_text().split("\n", 1)
    assert parse_request_code(code) == request
    payload = check_certificate(certificate, parse_request_code(code), await public_keys(client), now=now)
    assert payload["hardware_id"] == "hw-saved"


async def test_certificates_carry_valid_until_and_are_renewed_online_until_revoked(
    client, conn, queries, product, headers
):
    from licsrv.state import PRODUCTS
    from licsrv_client.offline import CertificateExpired
    from licsrv_client.sdk import LicenseClient, LicsrvError

    keys = await public_keys(client)
    expiring = await make_license(conn, queries, product, duration_days=30)
    request = make_request(expiring["key"], "hw-valid")
    body = await (await client.post(ACTIVATE, json={"request_code": request.code()}, headers=headers)).json()
    payload = check_certificate(body["data"]["certificate"], request, keys)
    assert payload["valid_until"] == payload["expires_at"]  # an expiring license: until it expires

    perpetual = await make_license(conn, queries, product)
    request = make_request(perpetual["key"], "hw-valid")
    body = await (await client.post(ACTIVATE, json={"request_code": request.code()}, headers=headers)).json()
    certificate = body["data"]["certificate"]
    payload = check_certificate(certificate, request, keys)
    assert payload["expires_at"] is None
    assert abs(payload["valid_until"] - (payload["issued_at"] + 90 * 86400)) <= 1  # the default period

    await conn.execute("UPDATE products SET offline_renewal_days = 7 WHERE id = $1", product["id"])
    await client.app[PRODUCTS].reload()
    later = payload["valid_until"] + 1
    with pytest.raises(CertificateExpired):
        check_certificate(certificate, request, keys, now=later)
    url = str(client.make_url(""))
    async with LicenseClient(url, product["api_key"], product=product["slug"], public_keys=keys) as sdk:
        renewed, fresh = await sdk.renew_certificate(perpetual["key"], "hw-valid")
        assert renewed != certificate and abs(fresh["valid_until"] - (time.time() + 7 * 86400)) < 120
        await conn.execute("UPDATE licenses SET status = 'revoked' WHERE id = $1", perpetual["id"])
        with pytest.raises(LicsrvError) as refused:
            await sdk.renew_certificate(perpetual["key"], "hw-valid")
        assert refused.value.code == "LICENSE_REVOKED"
