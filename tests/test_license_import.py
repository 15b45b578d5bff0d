"""Licenses with a key from an older system, from a plan, and the CSV import of the management API."""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest

from licsrv.app import create_app

from factories import make_license, make_product

LICENSES = "/api/v1/admin/licenses"
IMPORT = "/api/v1/admin/licenses/import"
CSV = {"Content-Type": "text/csv"}


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


async def make_plan(conn, product_id: int, **values) -> dict:
    row = await conn.fetchrow(
        """INSERT INTO plans (product_id, name, max_devices, max_sessions, duration_days, features,
                              archived_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        product_id,
        values.get("name", unique("Pro")),
        values.get("max_devices", 3),
        values.get("max_sessions", 2),
        values.get("duration_days", 30),
        values.get("features", {"pro": True, "seats": 5}),
        values.get("archived_at"),
    )
    return dict(row)


async def import_csv(client, headers, text: str, **query) -> tuple[int, dict]:
    params = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in query.items()}
    response = await client.post(IMPORT, data=text.encode(), headers={**headers, **CSV}, params=params)
    return response.status, await response.json()


# -- POST /licenses with key and plan_id -------------------------------------------------------------------


async def test_a_license_is_created_with_the_key_it_had_and_found_by_the_client_api_as_given(
    client, conn, admin_headers
):
    product = await make_product(conn, client.app)
    key = unique("ABC12-xyz-2019")
    response = await client.post(
        LICENSES, json={"product_id": product["id"], "key": key}, headers=admin_headers
    )
    assert response.status == 201
    assert (await response.json())["data"]["key"] == key
    activate = await client.post(
        "/api/v1/licenses/activate",
        json={"license_key": key, "hardware_id": "hw-1"},
        headers={"X-API-Key": product["api_key"]},
    )
    assert activate.status == 200, await activate.text()
    assert (await activate.json())["data"]["license_key"] == key


async def test_a_generated_key_is_still_found_when_typed_in_lower_case(client, conn, queries):
    product = await make_product(conn, client.app)
    lic = await make_license(conn, queries, product)
    response = await client.post(
        "/api/v1/licenses/validate",
        json={"license_key": lic["key"].lower(), "hardware_id": "nope"},
        headers={"X-API-Key": product["api_key"]},
    )
    assert (await response.json())["error"]["code"] == "DEVICE_NOT_ACTIVATED"  # found, not LICENSE_NOT_FOUND


async def test_a_key_in_use_is_409_license_key_taken_and_writes_nothing(client, conn, admin_headers):
    key = unique("legacy-key")
    assert (await client.post(LICENSES, json={"key": key}, headers=admin_headers)).status == 201
    before = await conn.fetchval("SELECT count(*) FROM licenses")
    response = await client.post(LICENSES, json={"key": key, "customer_name": "x"}, headers=admin_headers)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "LICENSE_KEY_TAKEN"
    assert await conn.fetchval("SELECT count(*) FROM licenses") == before


@pytest.mark.parametrize("key", ["short", "with space inside", "x" * 101, "tab\there-long", "ümlaut-key"])
async def test_a_key_that_is_not_8_to_100_printable_ascii_is_refused(client, admin_headers, key):
    response = await client.post(LICENSES, json={"key": key}, headers=admin_headers)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"


async def test_a_license_from_a_plan_copies_its_values_unless_given(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product["id"], max_devices=3, max_sessions=2, duration_days=30)
    body = {"product_id": product["id"], "plan_id": plan["id"]}
    data = (await (await client.post(LICENSES, json=body, headers=admin_headers)).json())["data"]
    assert (data["max_devices"], data["max_sessions"], data["duration_days"]) == (3, 2, 30)
    assert data["features"] == {"pro": True, "seats": 5} and data["plan_id"] == plan["id"]
    given = {**body, "max_devices": 7, "features": {"basic": True}, "expires_at": "2030-01-01T00:00:00Z"}
    data = (await (await client.post(LICENSES, json=given, headers=admin_headers)).json())["data"]
    assert (data["max_devices"], data["max_sessions"], data["duration_days"]) == (7, 2, None)
    assert data["features"] == {"basic": True} and data["expires_at"].startswith("2030-01-01")
    await conn.execute("UPDATE plans SET max_devices = 9 WHERE id = $1", plan["id"])
    stored = await conn.fetchval(
        "SELECT max_devices FROM licenses WHERE plan_id = $1 ORDER BY id LIMIT 1", plan["id"]
    )
    assert stored == 3  # editing a plan never changes what was sold


async def test_a_perpetual_plan_makes_a_license_without_expiry(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product["id"], duration_days=None)
    body = {"product_id": product["id"], "plan_id": plan["id"]}
    data = (await (await client.post(LICENSES, json=body, headers=admin_headers)).json())["data"]
    assert data["duration_days"] is None and data["expires_at"] is None


async def test_an_archived_plan_or_another_products_plan_is_refused(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    other = await make_product(conn, client.app)
    archived = await make_plan(conn, product["id"], archived_at=await conn.fetchval("SELECT now()"))
    foreign = await make_plan(conn, other["id"])
    before = await conn.fetchval("SELECT count(*) FROM licenses")
    response = await client.post(
        LICENSES, json={"product_id": product["id"], "plan_id": archived["id"]}, headers=admin_headers
    )
    assert (response.status, (await response.json())["error"]["code"]) == (409, "PLAN_ARCHIVED")
    response = await client.post(
        LICENSES, json={"product_id": product["id"], "plan_id": foreign["id"]}, headers=admin_headers
    )
    assert (response.status, (await response.json())["error"]["code"]) == (422, "PLAN_OF_ANOTHER_PRODUCT")
    assert await conn.fetchval("SELECT count(*) FROM licenses") == before


# -- POST /licenses/import ---------------------------------------------------------------------------------


async def test_import_creates_good_lines_and_refuses_bad_ones_with_their_line_numbers(
    client, conn, admin_headers
):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product["id"], name=unique("Gold"), max_devices=2, duration_days=None)
    k = [unique(f"OLD{n}-key") for n in range(6)]
    text = (
        "key,customer,email,plan,max_devices,expires_at,features,hardware_ids,notes\n"
        f'{k[0]},Jürgen Groß,j@example.com,,3,2030-01-31T00:00:00Z,pro=true;seats=5,hw-a;hw-b,"a, b"\n'
        f"{k[1]},王小明,,{plan['name']},,,,,\n"
        f"{k[2]},bad email,nope,,,,,,\n"
        "\n"
        f"{k[3]},,,,1,,,hw-1|hw-2,\n"
        f"{k[4]},,,no-such-plan,,,,,\n"
        f"{k[5]},,,,,not-a-date,,,\n"
        f"{k[0]},again,,,,,,,\n"
        f"short,,,,,,,,\n"
    )
    status, body = await import_csv(client, admin_headers, text, product_id=product["id"])
    assert status == 200, body
    data = body["data"]
    assert (data["created"], data["updated"], data["unchanged"], data["refused"]) == (2, 0, 0, 6)
    refusals = {(r["line"], r["code"]) for r in data["refusals"]}
    assert refusals == {
        (4, "VALIDATION_ERROR"),
        (6, "DEVICE_LIMIT_REACHED"),
        (7, "UNKNOWN_REFERENCE"),
        (8, "VALIDATION_ERROR"),
        (9, "CONFLICT"),
        (10, "VALIDATION_ERROR"),
    }
    first = await conn.fetchrow("SELECT * FROM licenses WHERE key = $1", k[0])
    assert (first["customer_name"], first["max_devices"], first["notes"]) == ("Jürgen Groß", 3, "a, b")
    assert first["features"] == {"pro": True, "seats": 5} and first["expires_at"].year == 2030
    devices = await conn.fetch(
        "SELECT hardware_id FROM devices WHERE license_id = $1 ORDER BY id", first["id"]
    )
    assert [d["hardware_id"] for d in devices] == ["hw-a", "hw-b"]
    second = await conn.fetchrow("SELECT * FROM licenses WHERE key = $1", k[1])
    assert (second["plan_id"], second["max_devices"], second["customer_name"]) == (plan["id"], 2, "王小明")
    audit = await conn.fetchrow(
        "SELECT * FROM audit_log WHERE action = 'license.import' ORDER BY id DESC LIMIT 1"
    )
    assert audit["after"]["created"] == 2 and audit["after"]["refused"] == 6


async def test_a_dry_run_checks_everything_and_writes_nothing(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    keys = [unique("DRY-key") for _ in range(3)]
    text = "key,hardware_ids\n" + "".join(f"{key},hw-{n}\n" for n, key in enumerate(keys)) + "bad,\n"
    counts = (
        "SELECT (SELECT count(*) FROM licenses), (SELECT count(*) FROM devices),"
        " (SELECT count(*) FROM audit_log)"
    )
    before = tuple(await conn.fetchrow(counts))
    status, body = await import_csv(client, admin_headers, text, product_id=product["id"], dry_run=True)
    assert status == 200
    assert body["data"]["dry_run"] is True
    assert (body["data"]["created"], body["data"]["refused"]) == (3, 1)
    assert tuple(await conn.fetchrow(counts)) == before


async def test_the_same_file_again_changes_nothing_and_a_changed_line_updates(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    keys = [unique("IDEM-key") for _ in range(3)]
    text = "key,customer,max_devices,duration_days,status,features,hardware_ids\n" + "".join(
        f'{key},Kunde {n},2,365,active,{{"tier": "gold"}},hw-{n}\n' for n, key in enumerate(keys)
    )
    status, body = await import_csv(client, admin_headers, text, product_id=product["id"])
    assert (status, body["data"]["created"]) == (200, 3), body
    ids = [await conn.fetchval("SELECT id FROM licenses WHERE key = $1", key) for key in keys]
    _, body = await import_csv(client, admin_headers, text, product_id=product["id"])
    data = body["data"]
    assert (data["created"], data["updated"], data["unchanged"], data["refused"]) == (0, 0, 3, 0)
    assert [await conn.fetchval("SELECT id FROM licenses WHERE key = $1", key) for key in keys] == ids
    changed = text.replace("Kunde 1,2,365,active", "Kunde 1,2,365,suspended").replace("hw-2\n", "hw-2;hw-9\n")
    _, body = await import_csv(client, admin_headers, changed, product_id=product["id"])
    data = body["data"]
    assert (data["created"], data["updated"], data["unchanged"]) == (0, 2, 1)
    assert await conn.fetchval("SELECT status FROM licenses WHERE id = $1", ids[1]) == "suspended"
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", ids[2]) == 2


async def test_devices_beyond_max_devices_refuse_that_line_only(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    full, fine = unique("FULL-key"), unique("FINE-key")
    first = f"key,max_devices,hardware_ids\n{full},2,hw-1;hw-2\n{fine},1,\n"
    assert (await import_csv(client, admin_headers, first, product_id=product["id"]))[1]["data"][
        "created"
    ] == 2
    more = f"key,max_devices,hardware_ids\n{full},2,hw-3\n{fine},1,hw-x\n"
    _, body = await import_csv(client, admin_headers, more, product_id=product["id"])
    assert body["data"]["refusals"] == [
        {
            "line": 2,
            "key": full,
            "code": "DEVICE_LIMIT_REACHED",
            "message": body["data"]["refusals"][0]["message"],
        }
    ]
    assert body["data"]["updated"] == 1
    license_id = await conn.fetchval("SELECT id FROM licenses WHERE key = $1", full)
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", license_id) == 2


async def test_a_key_of_another_product_is_refused_as_taken(client, conn, queries, admin_headers):
    product = await make_product(conn, client.app)
    other = await make_product(conn, client.app)
    key = unique("OTHER-key")
    await make_license(conn, queries, other, key=key)
    _, body = await import_csv(client, admin_headers, f"key\n{key}\n", product_id=product["id"])
    assert [r["code"] for r in body["data"]["refusals"]] == ["LICENSE_KEY_TAKEN"]


async def test_lines_name_their_product_by_slug_and_their_plan_by_name_or_id(client, conn, admin_headers):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product["id"], max_devices=4)
    a, b = unique("SLUG-key"), unique("SLUG-key")
    slug = product["slug"]
    text = f"key,product,plan\n{a},{slug},{plan['name'].upper()}\n{b},{slug},{plan['id']}\n"
    _, body = await import_csv(client, admin_headers, text)  # default product 1: the lines name their own
    assert body["data"]["created"] == 2, body
    rows = await conn.fetch(
        "SELECT product_id, plan_id, max_devices FROM licenses WHERE key = ANY($1)", [a, b]
    )
    assert {tuple(r) for r in rows} == {(product["id"], plan["id"], 4)}


@pytest.mark.parametrize(
    ("text", "headers"),
    [
        ("key,colour\nABCDEFGH1,red\n", CSV),
        ("customer\nx\n", CSV),
        ("key,key\nABCDEFGH1,ABCDEFGH1\n", CSV),
        ("", CSV),
        ('key\n"unclosed\n', CSV),
        ("key\nABCDEFGH1\n", {"Content-Type": "application/json"}),
    ],
    ids=["unknown-column", "no-key-column", "repeated-column", "empty", "bad-quoting", "not-csv"],
)
async def test_a_file_that_is_not_a_license_csv_is_refused_whole(client, conn, admin_headers, text, headers):
    before = await conn.fetchval("SELECT count(*) FROM licenses")
    response = await client.post(IMPORT, data=text.encode(), headers={**admin_headers, **headers})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "VALIDATION_ERROR"
    assert await conn.fetchval("SELECT count(*) FROM licenses") == before


async def test_an_import_larger_than_the_limit_is_413_even_without_a_content_length(
    aiohttp_client, settings, admin_headers
):
    small = await aiohttp_client(create_app(replace(settings, max_import_bytes=1000)))
    text = "key\n" + "ABCDEFGH-1\n" * 200
    response = await small.post(IMPORT, data=text.encode(), headers={**admin_headers, **CSV})
    assert response.status == 413
    assert (await response.json())["error"]["code"] == "PAYLOAD_TOO_LARGE"

    async def streamed():
        for _ in range(200):
            yield b"ABCDEFGH-1\n"

    response = await small.post(IMPORT, data=streamed(), headers={**admin_headers, **CSV})
    assert response.status == 413


async def test_a_viewer_token_cannot_import(client, conn, queries):
    from licsrv.services.audit import CLI_ACTOR
    from licsrv.services.tokens import create_token

    _, token = await create_token(conn, queries, unique("viewer"), "viewer", CLI_ACTOR)
    status, body = await import_csv(client, {"Authorization": f"Bearer {token}"}, "key\nABCDEFGH-1\n")
    assert (status, body["error"]["code"]) == (403, "FORBIDDEN")


async def test_a_key_is_found_as_given_before_its_upper_case_twin(client, conn, queries, admin_headers):
    product = await make_product(conn, client.app)
    lower = unique("twin-key").lower()
    imported = await make_license(conn, queries, product, key=lower, customer_name="imported")
    generated = await make_license(conn, queries, product, key=lower.upper(), customer_name="generated")
    for key, wanted in ((lower, imported), (lower.upper(), generated)):
        response = await client.post(
            "/api/license/verify", json={"license_key": key}, headers={"X-API-Key": product["api_key"]}
        )
        assert response.status == 200
        found = await client.get(f"{LICENSES}?q={key}", headers=admin_headers)
        assert wanted["id"] in [lic["id"] for lic in (await found.json())["data"]]
    activate = await client.post(
        "/api/v1/licenses/activate",
        json={"license_key": lower, "hardware_id": "hw-twin"},
        headers={"X-API-Key": product["api_key"]},
    )
    assert (await activate.json())["data"]["license_key"] == lower
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", imported["id"]) == 1
    assert await conn.fetchval("SELECT count(*) FROM devices WHERE license_id = $1", generated["id"]) == 0
