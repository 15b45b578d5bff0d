from __future__ import annotations

import asyncio
import csv
import io
import re

import pytest

from licsrv.codes import card_code_is_well_formed, normalise
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import GENERATE_SLICE, generate_batch

from factories import make_license, make_product


@pytest.fixture
async def product(client, conn):
    return await make_product(conn, client.app)


@pytest.fixture
def headers(product):
    return {"X-API-Key": product["api_key"]}


async def new_card(conn, queries, product, days=30) -> str:
    _, codes = await generate_batch(conn, queries, product["id"], 1, days, "test", CLI_ACTOR)
    return codes[0]


async def redeem(client, headers, card, hardware_id="hw-1", ip=None, **extra):
    request_headers = {**headers, **({"X-Forwarded-For": ip} if ip else {})}
    body = {"card_key": card, "hardware_id": hardware_id, **extra}
    response = await client.post("/api/v1/cards/redeem", json=body, headers=request_headers)
    return response.status, await response.json()


async def test_new_card_makes_a_one_slot_license_bound_to_the_device(client, conn, queries, product, headers):
    card = await new_card(conn, queries, product, days=7)
    status, body = await redeem(client, headers, card)
    assert status == 200, body
    data = body["data"]
    assert (data["max_devices"], data["devices_used"], data["status"]) == (1, 1, "active")
    assert data["expires_at"] is not None
    row = await conn.fetchrow(
        "SELECT status, hardware_id, host(ip) AS ip FROM card_keys WHERE code = $1", card
    )
    assert (row["status"], row["hardware_id"], row["ip"]) == ("redeemed", "hw-1", "127.0.0.1")
    status, again = await redeem(client, headers, card.lower())
    assert again["data"]["license_key"] == data["license_key"]


async def test_card_from_a_wholly_different_environment_is_refused_and_recorded(
    aiohttp_client, settings, conn, queries
):
    from dataclasses import replace

    from licsrv.app import create_app

    client = await aiohttp_client(
        create_app(replace(settings, trusted_proxies=(__import__("ipaddress").ip_network("127.0.0.1/32"),)))
    )
    product = await make_product(conn, client.app)
    headers = {"X-API-Key": product["api_key"]}
    card = await new_card(conn, queries, product)
    assert (await redeem(client, headers, card, "hw-1", "198.51.100.1"))[0] == 200
    status, body = await redeem(client, headers, card, "hw-2", "198.51.100.2")
    assert (status, body["error"]["code"]) == (409, "CARD_BOUND_ELSEWHERE")
    event = await conn.fetchrow(
        "SELECT * FROM security_events WHERE kind = 'card_bound_elsewhere' ORDER BY id DESC LIMIT 1"
    )
    assert event["details"]["hardware_id"] == "hw-2" and str(event["ip"]) == "198.51.100.2"
    # Only the IP changed: accepted, and the new address recorded.
    status, body = await redeem(client, headers, card, "hw-1", "198.51.100.3")
    assert status == 200
    assert await conn.fetchval("SELECT host(ip) FROM card_keys WHERE code = $1", card) == "198.51.100.3"
    # Only the hardware changed: accepted, and the device moves with it.
    status, body = await redeem(client, headers, card, "hw-9", "198.51.100.3")
    assert status == 200
    license_id = await conn.fetchval("SELECT license_id FROM card_keys WHERE code = $1", card)
    assert await conn.fetchval("SELECT hardware_id FROM devices WHERE license_id = $1", license_id) == "hw-9"


async def test_recharge_extends_an_existing_license(client, conn, queries, product, headers):
    lic = await make_license(conn, queries, product, duration_days=10)
    await client.post(
        "/api/v1/licenses/activate", json={"license_key": lic["key"], "hardware_id": "a"}, headers=headers
    )
    before = await conn.fetchval("SELECT expires_at FROM licenses WHERE id = $1", lic["id"])
    card = await new_card(conn, queries, product, days=30)
    status, body = await redeem(client, headers, card, license_key=lic["key"])
    assert status == 200 and body["data"]["recharged"] is True
    after = await conn.fetchval("SELECT expires_at FROM licenses WHERE id = $1", lic["id"])
    assert (after - before).days == 30


async def test_void_unknown_and_mistyped_cards(client, conn, queries, product, headers, admin_headers):
    card = await new_card(conn, queries, product)
    response = await client.post(f"/api/v1/admin/cards/{card}/void", headers=admin_headers)
    assert response.status == 200
    assert (await redeem(client, headers, card))[1]["error"]["code"] == "CARD_VOID"
    mistyped = card[:5] + ("A" if card[5] != "A" else "B") + card[6:]
    assert (await redeem(client, headers, mistyped))[1]["error"]["code"] == "CARD_NOT_FOUND"
    assert (await redeem(client, headers, "X" * 32))[1]["error"]["code"] == "CARD_NOT_FOUND"


async def test_concurrent_redemptions_of_one_card_make_one_license(client, conn, queries, product, headers):
    card = await new_card(conn, queries, product)
    results = await asyncio.gather(*(redeem(client, headers, card) for _ in range(20)))
    assert {status for status, _ in results} == {200}
    assert len({body["data"]["license_key"] for _, body in results}) == 1


async def test_batch_api_generates_exports_and_voids(client, conn, product, admin_headers):
    body = {"product_id": product["id"], "count": 25, "duration_days": 90, "note": "Messe 2026 / 展会"}
    response = await client.post("/api/v1/admin/card-batches", json=body, headers=admin_headers)
    assert response.status == 201
    batch = (await response.json())["data"]
    assert len(batch["cards"]) == 25 and batch["note"] == "Messe 2026 / 展会"
    response = await client.get(f"/api/v1/admin/card-batches/{batch['id']}/export", headers=admin_headers)
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert sorted(r["code"] for r in rows) == sorted(batch["cards"])
    response = await client.post(f"/api/v1/admin/card-batches/{batch['id']}/void", headers=admin_headers)
    assert (await response.json())["data"]["voided"] == 25
    listed = (await (await client.get("/api/v1/admin/card-batches", headers=admin_headers)).json())["data"]
    assert next(b for b in listed if b["id"] == batch["id"])["void"] == 25


def test_cli_generates_a_batch_into_a_csv(settings, tmp_path):
    import subprocess
    import sys

    from test_cli import cli_env

    out = tmp_path / "cards.csv"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "licsrv.cli",
            "cards",
            "generate",
            "-n",
            "500",
            "-d",
            "30",
            "--note",
            "cli",
            "--out",
            str(out),
        ],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 500 and len({r["code"] for r in rows}) == 500
    assert all(re.fullmatch(r"([2-9A-Z]{4}-){7}[2-9A-Z]{4}", r["code"]) for r in rows)  # printed in groups
    assert all(card_code_is_well_formed(normalise(r["code"])) and r["status"] == "new" for r in rows)


async def test_a_large_batch_lets_the_event_loop_serve_others_while_it_is_made(conn, queries, product):
    """A worker making 100 000 cards keeps answering heartbeats: generation yields slice by slice."""
    turns = 0
    done = asyncio.Event()

    async def other_requests() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_requests())
    try:
        _, codes = await generate_batch(conn, queries, product["id"], 100_000, 30, "large", CLI_ACTOR)
    finally:
        done.set()
        await ticker
    assert len(set(codes)) == 100_000
    assert turns >= 100_000 // GENERATE_SLICE  # the loop ran others at least once per slice
