"""The card pages of the admin UI over HTTP: batches from a plan or perpetual, the search box, a batch's
cards, a card's page, voiding one card, the product scope and the role checks."""

from __future__ import annotations

import re

import pytest

from licsrv.codes import format_card_code, normalise
from licsrv.services.audit import CLI_ACTOR
from licsrv.services.cards import generate_batch

from admin_helpers import login, make_admin, page_csrf
from card_helpers import FEATURES, make_plan
from factories import make_product


@pytest.fixture
async def owner(client, conn, queries):
    response = await login(client, await make_admin(conn, queries, "owner"))
    assert response.status == 303


async def submit(client, path, data, follow=False):
    token = await page_csrf(client, "/admin/cards")
    return await client.post(path, data={**data, "csrf": token}, allow_redirects=follow)


async def test_generate_a_batch_from_a_plan_in_the_form(client, conn, owner):
    product = await make_product(conn, client.app)
    plan = await make_plan(conn, product, name="Gold tier")
    client.session.cookie_jar.update_cookies({"licsrv_product": str(product["id"])})
    html = await (await client.get("/admin/cards")).text()
    assert "Gold tier · 30 days · 2 devices" in html
    # The fields for a batch without a plan are ignored, not mixed in, when a plan is chosen.
    form = {"product_id": str(product["id"]), "plan_id": str(plan["id"]), "count": "3", "duration_days": "5"}
    response = await submit(client, "/admin/cards", {**form, "note": "UI gold"})
    assert response.status == 303 and response.headers["Location"].startswith("/admin/cards?created=")
    batch = await conn.fetchrow("SELECT * FROM card_batches WHERE note = 'UI gold'")
    assert (batch["plan_id"], batch["duration_days"], batch["max_devices"], batch["features"]) == (
        plan["id"],
        30,
        2,
        FEATURES,
    )
    html = await (await client.get(response.headers["Location"])).text()
    assert f"Batch #{batch['id']} generated." in html and "Gold tier" in html


async def test_perpetual_multi_device_batch_and_refusals_keep_what_was_typed(client, conn, owner):
    product = await make_product(conn, client.app)
    form = {
        "product_id": str(product["id"]),
        "plan_id": "",
        "count": "2",
        "max_devices": "4",
        "max_sessions": "",
    }
    response = await submit(
        client, "/admin/cards", {**form, "duration_days": "", "perpetual": "1", "note": "forever"}
    )
    assert response.status == 303
    batch = await conn.fetchrow(
        "SELECT * FROM card_batches WHERE note = 'forever' AND product_id = $1", product["id"]
    )
    assert (batch["duration_days"], batch["max_devices"]) == (None, 4)
    html = await (await client.get("/admin/cards")).text()
    assert re.search(rf"#{batch['id']}</a>.*?perpetual", html, re.S)

    response = await submit(client, "/admin/cards", {**form, "duration_days": "", "note": "no days typed"})
    html = await response.text()
    assert response.status == 400 and "Give the days of validity, or tick Perpetual." in html
    assert (
        'value="no days typed"' in html
        and 'name="max_devices" type="number" min="1" max="100000" value="4"' in html
    )
    await conn.execute("UPDATE products SET archived_at = now() WHERE id = $1", product["id"])
    response = await submit(client, "/admin/cards", {**form, "duration_days": "9", "note": "archived"})
    assert response.status == 409 and "archived" in await response.text()
    assert await conn.fetchval("SELECT count(*) FROM card_batches WHERE product_id = $1", product["id"]) == 1


async def test_search_box_finds_a_card_in_any_form_and_the_card_page_names_its_batch(
    client, conn, queries, owner
):
    product = await make_product(conn, client.app)
    _, codes = await generate_batch(conn, queries, product["id"], 2, 14, "Suche 搜索", CLI_ACTOR)
    grouped = format_card_code(codes[0])
    for typed in (grouped, codes[0].lower(), " ".join(grouped.split("-"))):
        response = await client.get("/admin/cards", params={"q": typed}, allow_redirects=False)
        assert response.status == 303 and response.headers["Location"] == f"/admin/cards/code/{grouped}", (
            typed
        )
    html = await (await client.get(f"/admin/cards/code/{grouped}")).text()
    assert grouped in html and "Suche 搜索" in html and "14 days from redemption" in html and ">New<" in html
    response = await client.get("/admin/cards", params={"q": "ABCD-EFGH"})
    assert response.status == 404 and "No card has the code" in await response.text()
    response = await client.get(f"/admin/cards/code/{format_card_code(codes[1][::-1])}")
    assert response.status == 404


async def test_void_one_card_from_the_batch_page_and_from_the_card_page(client, conn, queries, owner):
    product = await make_product(conn, client.app)
    batch, codes = await generate_batch(conn, queries, product["id"], 3, 14, "void UI", CLI_ACTOR)
    html = await (await client.get(f"/admin/cards/{batch['id']}")).text()
    assert html.count(">Void</button>") == 3 and html.count(">New<") == 3
    first = format_card_code(codes[0])
    response = await submit(
        client, f"/admin/cards/code/{first}/void", {"back": f"/admin/cards/{batch['id']}"}
    )
    assert (
        response.status == 303 and response.headers["Location"] == f"/admin/cards/{batch['id']}?done=voided"
    )
    html = await (await client.get(response.headers["Location"])).text()
    assert "Card voided." in html and html.count(">Void</button>") == 2 and ">Void<" in html
    second = format_card_code(codes[1])
    response = await submit(client, f"/admin/cards/code/{second}/void", {"back": "https://evil.example/"})
    assert response.headers["Location"] == f"/admin/cards/code/{second}?done=voided"
    response = await submit(client, f"/admin/cards/code/{second}/void", {})
    assert response.status == 409 and "this one is void" in await response.text()
    statuses = await conn.fetch("SELECT status FROM card_keys WHERE batch_id = $1 ORDER BY id", batch["id"])
    assert [r["status"] for r in statuses] == ["void", "void", "new"]


async def test_the_card_list_is_scoped_to_the_chosen_product(client, conn, queries, owner):
    mine, theirs = await make_product(conn, client.app), await make_product(conn, client.app)
    await generate_batch(conn, queries, mine["id"], 1, 7, "scope mine", CLI_ACTOR)
    await generate_batch(conn, queries, theirs["id"], 1, 7, "scope theirs", CLI_ACTOR)
    await make_plan(conn, theirs, name="Their plan")
    client.session.cookie_jar.update_cookies({"licsrv_product": str(mine["id"])})
    html = await (await client.get("/admin/cards")).text()
    assert "scope mine" in html and "scope theirs" not in html and "Their plan" not in html


async def test_a_viewer_sees_cards_but_cannot_void_or_generate(client, conn, queries):
    product = await make_product(conn, client.app)
    batch, codes = await generate_batch(conn, queries, product["id"], 1, 7, "viewer", CLI_ACTOR)
    assert (await login(client, await make_admin(conn, queries, "viewer"))).status == 303
    html = await (await client.get(f"/admin/cards/{batch['id']}")).text()
    assert format_card_code(codes[0]) in html and ">Void</button>" not in html
    response = await submit(client, f"/admin/cards/code/{codes[0]}/void", {})
    assert response.status == 403
    assert await conn.fetchval("SELECT status FROM card_keys WHERE code = $1", normalise(codes[0])) == "new"
