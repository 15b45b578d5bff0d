"""Card tiers (DESIGN §2 Card key, §7b): batches from a plan, perpetual and multi-device cards, codes printed
in groups, a card found by its code, one card voided — through the real management and client APIs."""

from __future__ import annotations

import asyncio
import csv
import io
import re
import subprocess
import sys
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from licsrv.codes import card_code_is_well_formed, format_card_code, new_card_code, normalise

from card_helpers import FEATURES, make_plan
from factories import make_license, make_product
from test_cli import cli_env


async def post(client, path, headers, body=None):
    response = await client.post(path, json=body, headers=headers)
    return response.status, await response.json()


async def make_batch(client, admin_headers, **body) -> dict:
    status, answer = await post(client, "/api/v1/admin/card-batches", admin_headers, {"count": 2, **body})
    assert status == 201, answer
    return answer["data"]


async def redeem(client, product, card, hardware_id="hw-1", **extra):
    body = {"card_key": card, "hardware_id": hardware_id, **extra}
    return await post(client, "/api/v1/cards/redeem", {"X-API-Key": product["api_key"]}, body)


async def find(client, admin_headers, code):
    response = await client.get(f"/api/v1/admin/cards/{code}", headers=admin_headers)
    return response.status, await response.json()


async def test_a_batch_from_a_plan_copies_the_plan_and_keeps_it_when_the_plan_changes(
    client, conn, admin_headers
):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product)
    batch = await make_batch(client, admin_headers, plan_id=plan["id"], note="Pro tier")
    assert batch["product_id"] == product["id"]  # the plan's product when none is named
    assert (batch["plan_id"], batch["duration_days"], batch["max_devices"], batch["max_sessions"]) == (
        plan["id"],
        30,
        2,
        3,
    )
    assert batch["features"] == FEATURES
    await conn.execute(
        "UPDATE plans SET max_devices = 9, duration_days = 365, features = '{}' WHERE id = $1", plan["id"]
    )
    stored = await conn.fetchrow("SELECT * FROM card_batches WHERE id = $1", batch["id"])
    assert (stored["max_devices"], stored["duration_days"], stored["features"]) == (2, 30, FEATURES)

    status, body = await redeem(client, product, batch["cards"][0])
    assert status == 200, body
    data = body["data"]
    assert data["features"] == FEATURES  # the client's answer shows the tier's features
    assert (data["max_devices"], data["max_sessions"], data["devices_used"]) == (2, 3, 1)
    license_row = await conn.fetchrow(
        "SELECT plan_id, expires_at FROM licenses WHERE key = $1", data["license_key"]
    )
    assert license_row["plan_id"] == plan["id"] and license_row["expires_at"] is not None


async def test_plan_refusals_have_clear_codes_and_write_nothing(client, conn, admin_headers):
    product, other = await make_product(conn, client.app), await make_product(conn, client.app)
    archived = await make_plan(conn, product, name="Old", archived_at=datetime.now(UTC))
    foreign = await make_plan(conn, other, name="Theirs")
    batches_before = await conn.fetchval("SELECT count(*) FROM card_batches")
    cases = [
        ({"plan_id": archived["id"]}, 409, "PLAN_ARCHIVED"),
        ({"plan_id": foreign["id"], "product_id": product["id"]}, 422, "PLAN_OF_ANOTHER_PRODUCT"),
        ({"plan_id": 2**60}, 404, "PLAN_NOT_FOUND"),
        ({"plan_id": foreign["id"], "duration_days": 5}, 400, "VALIDATION_ERROR"),
        ({"product_id": product["id"]}, 400, "VALIDATION_ERROR"),  # no duration and no plan
        ({"duration_days": 30, "max_devices": 0}, 400, "VALIDATION_ERROR"),
        ({"duration_days": 30, "features": {"x": [1, 2]}}, 400, "VALIDATION_ERROR"),
    ]
    for body, status, code in cases:
        got, answer = await post(client, "/api/v1/admin/card-batches", admin_headers, {"count": 3, **body})
        assert (got, answer["error"]["code"]) == (status, code), body
    await conn.execute("UPDATE products SET archived_at = now() WHERE id = $1", product["id"])
    got, answer = await post(
        client,
        "/api/v1/admin/card-batches",
        admin_headers,
        {"count": 3, "duration_days": 3, "product_id": product["id"]},
    )
    assert (got, answer["error"]["code"]) == (409, "PRODUCT_ARCHIVED")
    assert await conn.fetchval("SELECT count(*) FROM card_batches") == batches_before


async def test_a_perpetual_card_makes_a_license_that_never_expires(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    batch = await make_batch(client, admin_headers, product_id=product["id"], duration_days=None)
    assert batch["duration_days"] is None
    status, body = await redeem(client, product, batch["cards"][0])
    assert status == 200 and body["data"]["expires_at"] is None
    row = await conn.fetchrow(
        "SELECT expires_at, duration FROM licenses WHERE key = $1", body["data"]["license_key"]
    )
    assert (row["expires_at"], row["duration"]) == (None, None)


async def test_recharging_with_a_perpetual_card_makes_the_license_perpetual(
    client, conn, queries, admin_headers
):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product, duration_days=10)
    headers = {"X-API-Key": product["api_key"]}
    await post(client, "/api/v1/licenses/activate", headers, {"license_key": lic["key"], "hardware_id": "a"})
    assert await conn.fetchval("SELECT expires_at FROM licenses WHERE id = $1", lic["id"]) is not None
    batch = await make_batch(client, admin_headers, product_id=product["id"], duration_days=None)
    status, body = await redeem(client, product, batch["cards"][0], "a", license_key=lic["key"])
    assert status == 200 and body["data"]["recharged"] is True and body["data"]["expires_at"] is None
    row = await conn.fetchrow("SELECT expires_at, duration FROM licenses WHERE id = $1", lic["id"])
    assert (row["expires_at"], row["duration"]) == (None, None)
    status, card = await find(client, admin_headers, batch["cards"][0])
    assert card["data"]["status"] == "redeemed"
    assert card["data"]["license"] == {"id": lic["id"], "key": lic["key"], "recharged": True}
    # A timed card on a perpetual license keeps it perpetual.
    status, body = await redeem(client, product, batch["cards"][1], "a", license_key=lic["key"])
    timed = await make_batch(client, admin_headers, product_id=product["id"], duration_days=30)
    status, body = await redeem(client, product, timed["cards"][0], "a", license_key=lic["key"])
    assert status == 200 and body["data"]["expires_at"] is None


async def test_a_multi_device_card_gives_its_license_n_slots(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    batch = await make_batch(client, admin_headers, product_id=product["id"], duration_days=7, max_devices=3)
    assert batch["max_devices"] == 3
    status, body = await redeem(client, product, batch["cards"][0])
    assert status == 200 and body["data"]["max_devices"] == 3
    headers = {"X-API-Key": product["api_key"]}
    for hardware_id in ("hw-2", "hw-3"):
        status, _ = await post(
            client,
            "/api/v1/licenses/activate",
            headers,
            {"license_key": body["data"]["license_key"], "hardware_id": hardware_id},
        )
        assert status == 200
    status, refused = await post(
        client,
        "/api/v1/licenses/activate",
        headers,
        {"license_key": body["data"]["license_key"], "hardware_id": "hw-4"},
    )
    assert refused["error"]["code"] == "DEVICE_LIMIT_REACHED"


async def test_codes_are_printed_in_groups_and_redeem_in_either_form(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    batch = await make_batch(client, admin_headers, product_id=product["id"], duration_days=7, count=2)
    grouped, other = batch["cards"]
    assert grouped == format_card_code(grouped) and len(grouped) == 39 and grouped.count("-") == 7
    stored = await conn.fetchval("SELECT code FROM card_keys WHERE code = $1", normalise(grouped))
    assert stored == normalise(grouped) and len(stored) == 32  # stored normalised
    status, first = await redeem(client, product, grouped)
    assert status == 200, first
    status, again = await redeem(client, product, normalise(grouped).lower())  # no dashes, lower case
    assert again["data"]["license_key"] == first["data"]["license_key"]
    spaced = " ".join(normalise(other)[i : i + 8] for i in range(0, 32, 8)).lower()
    status, body = await redeem(client, product, spaced, "hw-2")
    assert status == 200 and body["data"]["license_key"] != first["data"]["license_key"]
    response = await client.get(f"/api/v1/admin/card-batches/{batch['id']}/export", headers=admin_headers)
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert {r["code"] for r in rows} == {grouped, other}
    assert {r["status"] for r in rows} == {"redeemed"}


async def test_find_a_card_by_its_code_in_any_form(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product, name="Find me")
    batch = await make_batch(client, admin_headers, plan_id=plan["id"], note="Messe 展会")
    code = batch["cards"][0]
    for form in (code, normalise(code), code.lower(), normalise(code).lower()):
        status, body = await find(client, admin_headers, form)
        assert status == 200, form
        card = body["data"]
        assert (card["code"], card["status"], card["license"], card["redeemed_at"]) == (
            code,
            "new",
            None,
            None,
        )
    assert card["batch"]["id"] == batch["id"] and card["batch"]["note"] == "Messe 展会"
    assert (card["batch"]["plan_name"], card["batch"]["product_id"]) == ("Find me", product["id"])
    assert card["batch"]["duration_days"] == 30 and card["batch"]["max_devices"] == 2
    assert card["batch"]["created_by"] and card["batch"]["created_at"]
    _, redeemed = await redeem(client, product, code, "hw-find")
    status, body = await find(client, admin_headers, code)
    card = body["data"]
    assert (card["status"], card["hardware_id"], card["ip"]) == ("redeemed", "hw-find", "127.0.0.1")
    assert card["license"]["key"] == redeemed["data"]["license_key"] and card["license"]["recharged"] is False
    assert card["redeemed_at"] is not None
    unknown = new_card_code()
    for missing in (unknown, "NOT-A-CARD", code[:-1] + ("2" if code[-1] != "2" else "3")):
        status, body = await find(client, admin_headers, missing)
        assert (status, body["error"]["code"]) == (404, "CARD_NOT_FOUND"), missing


async def test_void_one_card_then_it_cannot_be_redeemed_and_a_redeemed_card_cannot_be_voided(
    client, conn, admin_headers
):
    product = await make_product(conn, client.app)
    batch = await make_batch(client, admin_headers, product_id=product["id"], duration_days=7, count=3)
    to_void, to_redeem, untouched = batch["cards"]
    status, body = await post(client, f"/api/v1/admin/cards/{normalise(to_void).lower()}/void", admin_headers)
    assert status == 200 and body["data"] == {
        "code": to_void,
        "status": "void",
        "batch_id": batch["id"],
        "voided": 1,
    }
    status, body = await redeem(client, product, to_void)
    assert (status, body["error"]["code"]) == (410, "CARD_VOID")
    await redeem(client, product, to_redeem)
    status, body = await post(client, f"/api/v1/admin/cards/{to_redeem}/void", admin_headers)
    assert (status, body["error"]["code"]) == (409, "CARD_NOT_NEW") and "redeemed" in body["error"]["message"]
    status, body = await post(client, f"/api/v1/admin/cards/{to_void}/void", admin_headers)
    assert (status, body["error"]["code"]) == (409, "CARD_NOT_NEW")
    status, body = await post(client, f"/api/v1/admin/cards/{new_card_code()}/void", admin_headers)
    assert (status, body["error"]["code"]) == (404, "CARD_NOT_FOUND")
    audit = await conn.fetchrow(
        "SELECT * FROM audit_log WHERE action = 'cards.void' AND object_id = $1", to_void
    )
    assert audit is not None and audit["after"] == {"status": "void"}
    # The batch's own listing and its cards use the same three words.
    response = await client.get(f"/api/v1/admin/card-batches/{batch['id']}", headers=admin_headers)
    detail = (await response.json())["data"]
    assert [c["status"] for c in detail["cards"]] == ["void", "redeemed", "new"]
    assert detail["cards"][2]["code"] == untouched
    listed = (await (await client.get("/api/v1/admin/card-batches", headers=admin_headers)).json())["data"]
    mine = next(b for b in listed if b["id"] == batch["id"])
    assert (mine["new"], mine["redeemed"], mine["void"]) == (1, 1, 1) and "unused" not in mine


async def test_batch_cards_are_paged(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    batch = await make_batch(client, admin_headers, product_id=product["id"], duration_days=7, count=5)
    seen, cursor = [], None
    while True:
        query = f"?limit=2{f'&cursor={cursor}' if cursor else ''}"
        response = await client.get(f"/api/v1/admin/card-batches/{batch['id']}{query}", headers=admin_headers)
        body = await response.json()
        seen += [c["code"] for c in body["data"]["cards"]]
        cursor = body["next_cursor"]
        if not cursor:
            break
    assert seen == batch["cards"]


@given(
    separators=st.lists(st.sampled_from(["", "-", " ", "  ", "-", "\t", "_"]), min_size=32, max_size=32),
    lower=st.lists(st.booleans(), min_size=32, max_size=32),
)
def test_any_grouping_or_case_of_a_valid_code_normalises_to_it(separators, lower):
    code = new_card_code()
    typed = "".join(
        (char.lower() if low else char) + sep for char, low, sep in zip(code, lower, separators, strict=True)
    )
    assert normalise(typed) == code and card_code_is_well_formed(normalise(typed))
    assert normalise(format_card_code(typed)) == code


def cards_cli(settings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "licsrv.cli", "cards", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_cli_generates_from_a_plan_or_perpetual_multi_device_and_shows_and_voids_a_card(
    settings, conn, tmp_path
):
    product = await make_product(conn)
    plan = await make_plan(conn, product, name="CLI tier")
    done = await asyncio.to_thread(cards_cli, settings, "generate", "-n", "3", "--plan", str(plan["id"]))
    assert done.returncode == 0, done.stderr
    codes = done.stdout.split()
    assert len(codes) == 3 and all(re.fullmatch(r"([2-9A-Z]{4}-){7}[2-9A-Z]{4}", code) for code in codes)
    batch = await conn.fetchrow(
        "SELECT b.* FROM card_batches b JOIN card_keys c ON c.batch_id = b.id WHERE c.code = $1",
        normalise(codes[0]),
    )
    assert (batch["plan_id"], batch["product_id"], batch["features"]) == (plan["id"], product["id"], FEATURES)

    out = tmp_path / "perpetual.csv"
    args = (
        "generate",
        "-n",
        "4",
        "--perpetual",
        "--devices",
        "2",
        "--product",
        product["slug"],
        "--out",
        str(out),
    )
    done = await asyncio.to_thread(cards_cli, settings, *args)
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 4 and {(r["status"], r["duration_days"], r["max_devices"]) for r in rows} == {
        ("new", "", "2")
    }

    shown = await asyncio.to_thread(cards_cli, settings, "show", normalise(codes[0]).lower())
    assert shown.returncode == 0, shown.stderr
    assert codes[0] in shown.stdout and "state       new" in shown.stdout and "CLI tier" in shown.stdout
    voided = await asyncio.to_thread(cards_cli, settings, "void", codes[0])
    assert voided.returncode == 0 and f"{codes[0]} void" in voided.stdout
    again = await asyncio.to_thread(cards_cli, settings, "void", codes[0])
    assert again.returncode == 1 and "this one is void" in again.stderr and "Traceback" not in again.stderr
    for wrong in (("-n", "1"), ("-n", "1", "-d", "3", "--perpetual"), ("-n", "1", "--plan", "1", "-d", "3")):
        refused = await asyncio.to_thread(cards_cli, settings, "generate", *wrong)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, wrong


async def test_a_void_racing_a_redemption_lets_exactly_one_win(client, conn, admin_headers):
    """The redemption locks the card row and the void only takes a `new` card: whichever comes first wins, the
    other is refused, and a voided card leaves no license behind."""
    product = await make_product(conn, client.app)
    batch = await make_batch(client, admin_headers, product_id=product["id"], count=20, duration_days=30)
    outcomes = set()
    for code in batch["cards"]:
        (void_status, voided), (redeem_status, redeemed) = await asyncio.gather(
            post(client, f"/api/v1/admin/cards/{code}/void", admin_headers),
            redeem(client, product, code, "hw-race"),
        )
        state = await conn.fetchrow(
            "SELECT status, license_id FROM card_keys WHERE code = $1", normalise(code)
        )
        if void_status == 200:
            assert redeem_status != 200 and redeemed["error"]["code"] == "CARD_VOID", redeemed
            assert (state["status"], state["license_id"]) == ("void", None)
            outcomes.add("void")
        else:
            assert (void_status, voided["error"]["code"]) == (409, "CARD_NOT_NEW"), voided
            assert redeem_status == 200, redeemed
            assert state["status"] == "redeemed" and state["license_id"] is not None
            outcomes.add("redeemed")
    # Licenses exist only for the redeemed cards.
    made = await conn.fetchval(
        "SELECT count(*) FROM card_keys WHERE batch_id = $1 AND license_id IS NOT NULL", batch["id"]
    )
    assert made == await conn.fetchval(
        "SELECT count(*) FROM card_keys WHERE batch_id = $1 AND status = 'redeemed'", batch["id"]
    )
    assert outcomes  # at least one outcome was seen; which ones depends on timing
